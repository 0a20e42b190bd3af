// Package keystore states the rules of sessions: one keystore per token
// pair, whose pKey is the access token's jti and sKey the refresh token's. A
// pair is valid exactly while its keystore exists. Storage is behind Storer
// (package store).
//
// Session state is mirrored in Redis under auth_session_<pKey>, shared by all
// replicas, so authenticating a request does not query the store: an entry
// is either active (with the keystore id) or revoked. Revocation (sign-out,
// refresh) first writes the revoked entry with SET and only then deletes the
// keystore; readers fill the cache with SETNX, so a reader that saw the
// keystore just before it was deleted can never overwrite the revocation.
// When the revoked entry cannot be written, nothing is deleted and the
// caller is told (ErrRevocationUnavailable): otherwise other replicas would
// keep honouring a cached active entry for up to the cache TTL after the
// client was told its session had ended.
//
// The keystores that refreshes chain together share a family (the session
// as the user sees it). Each refresh records the refresh token it consumed;
// a consumed refresh token presented again means a copy of it exists
// somewhere else, so the whole family is revoked (RevokeFamily).
package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/changes"
	"blogplatform/auth_service/api/keystore/model"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/localcache"
)

// ErrRevocationUnavailable: the revocation could not be published to the
// shared cache, so it was not done.
var ErrRevocationUnavailable = errors.New("revocation marker could not be written")

// Storer is what the service needs from storage. Look-ups that find nothing
// answer model.ErrNotFound.
type Storer interface {
	Insert(ctx context.Context, ks *model.Keystore) error
	Active(ctx context.Context, client bson.ObjectID, pKey string) (*model.Keystore, error)
	ActivePair(ctx context.Context, client bson.ObjectID, pKey, sKey string) (*model.Keystore, error)
	// Delete reports whether this call removed the keystore: of concurrent
	// callers exactly one gets true.
	Delete(ctx context.Context, id bson.ObjectID) (bool, error)
	InsertRotation(ctx context.Context, r model.Rotation) error
	Rotation(ctx context.Context, client bson.ObjectID, sKey string) (*model.Rotation, error)
	MarkFamilyRevoked(ctx context.Context, family string, now time.Time) error
	FamilyRevoked(ctx context.Context, family string) (bool, error)
	FamilyMembers(ctx context.Context, family string) ([]model.Keystore, error)
	DeleteCreatedBefore(ctx context.Context, cutoff time.Time) (int64, error)
}

// SessionKey is the Redis key of the session of an access token's jti.
func SessionKey(pKey string) string { return "auth_session_" + pKey }

// Session is the cached state of one access token's keystore.
type Session struct {
	Revoked    bool   `json:"revoked,omitempty"`
	KeystoreID string `json:"keystoreId,omitempty"`
}

type Service struct {
	store   Storer
	cache   *cache.Cache
	local   *localcache.Cache[Session]
	log     *slog.Logger
	changes *changes.Feed
	// ttl bounds an active entry, i.e. how long a keystore deleted out of
	// band (not through this service) may still be honoured.
	ttl time.Duration
}

// Options configure a Service.
type Options struct {
	// CacheTTL bounds a shared active entry (see Service.ttl).
	CacheTTL time.Duration
	Log      *slog.Logger
	// Changes announces ended sessions to every replica (nil: to none).
	Changes *changes.Feed
	// Local is this replica's first-level copy of sessions by pKey, in
	// front of Redis (nil: none). Its entries carry the session's and the
	// user's tags (authwire.SessionTag, authwire.UserTag), so it must be
	// invalidated by Changes and follow the other replicas' change events.
	Local *localcache.Cache[Session]
}

func NewService(store Storer, c *cache.Cache, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{store: store, cache: c, local: o.Local, log: o.Log, changes: o.Changes, ttl: o.CacheTTL}
}

// Create stores a new keystore with fresh random keys for client, in family
// (a refresh continues its session's family; "" starts a new one).
func (s *Service) Create(ctx context.Context, client bson.ObjectID, family string) (*model.Keystore, error) {
	pKey, err := randomKey()
	if err != nil {
		return nil, err
	}
	sKey, err := randomKey()
	if err != nil {
		return nil, err
	}
	if family == "" {
		if family, err = randomKey(); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	ks := &model.Keystore{Client: client, PKey: pKey, SKey: sKey, Status: true, Family: family, CreatedAt: now, UpdatedAt: now}
	gen := s.local.Generation()
	if err := s.store.Insert(ctx, ks); err != nil {
		return nil, err
	}
	// Nobody can have revoked a pKey that did not exist a moment ago.
	sess := Session{KeystoreID: ks.ID.Hex()}
	s.cache.SetNXJSON(ctx, SessionKey(pKey), sess, s.ttl)
	s.keep(pKey, client, sess, gen)
	return ks, nil
}

// randomKey is 32 random bytes in lowercase hex (64 characters).
func randomKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Peek returns the session of pKey held by this replica, without any
// round trip; a revoked or unknown session is model.ErrNotFound. ok is
// false when this replica holds nothing.
func (s *Service) Peek(pKey string) (sess Session, ok bool, err error) {
	sess, ok = s.local.Get(pKey)
	if ok && sess.Revoked {
		return Session{}, true, model.ErrNotFound
	}
	return sess, ok, nil
}

// Generation is to be read before asking Redis for the value then passed
// to Session: a change announced in between keeps what was read out of
// this replica's copy.
func (s *Service) Generation() uint64 { return s.local.Generation() }

// Session resolves the session of (client, pKey) for a caller that found
// nothing with Peek. cached is the value read from Redis by the caller (nil
// on a miss) after reading generation (Generation); on a miss the store
// decides and the answer is cached. A revoked or unknown session is
// model.ErrNotFound.
func (s *Service) Session(ctx context.Context, client bson.ObjectID, pKey string, cached []byte, tokenExpiry time.Time, generation uint64) (Session, error) {
	if cached != nil {
		var sess Session
		if err := json.Unmarshal(cached, &sess); err == nil {
			s.keep(pKey, client, sess, generation)
			if sess.Revoked {
				return Session{}, model.ErrNotFound
			}
			return sess, nil
		}
	}
	ks, err := s.store.Active(ctx, client, pKey)
	switch {
	case errors.Is(err, model.ErrNotFound):
		// Keys are random and never reused: an unknown pKey stays unknown,
		// so the negative answer is as durable as a revocation.
		s.remember(ctx, pKey, Session{Revoked: true}, tokenExpiry)
		s.keep(pKey, client, Session{Revoked: true}, generation)
		return Session{}, model.ErrNotFound
	case err != nil:
		return Session{}, err
	}
	sess := Session{KeystoreID: ks.ID.Hex()}
	s.remember(ctx, pKey, sess, tokenExpiry)
	s.keep(pKey, client, sess, generation)
	return sess, nil
}

// keep stores sess in this replica's copy, unless a change was announced
// since generation was read. A revoked session is kept too: revocations
// are final.
func (s *Service) keep(pKey string, client bson.ObjectID, sess Session, generation uint64) {
	if s.local == nil {
		return
	}
	s.local.Set(pKey, sess, generation, authwire.SessionTag(pKey), authwire.UserTag(client.Hex()))
}

// remember caches what the store said about a session, until the token
// expires (capped by ttl for active ones). It only fills an empty slot, so a
// revocation written meanwhile (markRevoked) is never overwritten.
func (s *Service) remember(ctx context.Context, pKey string, sess Session, tokenExpiry time.Time) {
	life := time.Until(tokenExpiry) + time.Second
	if life <= time.Second {
		return // the token no longer verifies anyway
	}
	if !sess.Revoked {
		life = min(life, s.ttl)
	}
	s.cache.SetNXJSON(ctx, SessionKey(pKey), sess, life)
}

// FindPair returns the active keystore of a token pair.
func (s *Service) FindPair(ctx context.Context, client bson.ObjectID, pKey, sKey string) (*model.Keystore, error) {
	return s.store.ActivePair(ctx, client, pKey, sKey)
}

// Revoke marks the keystore's session revoked on every replica, deletes the
// keystore and announces the ended session (a session change event). It
// reports whether this call deleted it: of concurrent revokers of one
// keystore exactly one gets true, which makes refresh single-use. When the
// mark cannot be written the keystore is left alone, nothing is announced
// and the error is ErrRevocationUnavailable: the session stays exactly as
// valid as it was, which is what the caller's failure answer says.
func (s *Service) Revoke(ctx context.Context, client, keystoreID bson.ObjectID, pKey string, accessExpiry time.Time) (bool, error) {
	won, err := s.revoke(ctx, keystoreID, pKey, accessExpiry)
	if err == nil || !errors.Is(err, ErrRevocationUnavailable) {
		// Once the mark is written the session is over for every reader of
		// the shared cache, whatever the delete did.
		s.changes.Session(ctx, client.Hex(), pKey)
	}
	return won, err
}

func (s *Service) revoke(ctx context.Context, keystoreID bson.ObjectID, pKey string, accessExpiry time.Time) (bool, error) {
	// Written even when another caller revokes at the same time: the mark
	// is the same, and writing it twice is harmless.
	if err := s.markRevoked(ctx, pKey, accessExpiry); err != nil {
		return false, err
	}
	return s.store.Delete(ctx, keystoreID)
}

// markRevoked writes the revoked entry of pKey, overwriting an active one,
// and reports failure (unlike the cache's fill-in writes, which may fail
// silently because the store stays authoritative for them). It lives at
// least as long as a cached active entry could, and until the access token
// expires; after that the store answers (the keystore is gone).
func (s *Service) markRevoked(ctx context.Context, pKey string, accessExpiry time.Time) error {
	life := max(time.Until(accessExpiry), s.ttl) + time.Second
	b, _ := json.Marshal(Session{Revoked: true})
	if err := s.cache.Client().Set(ctx, SessionKey(pKey), b, life).Err(); err != nil {
		s.log.Warn("revocation marker not written; the revocation is refused", "error", err.Error())
		return fmt.Errorf("%w: %w", ErrRevocationUnavailable, err)
	}
	return nil
}

// RecordRotation notes that a refresh consumed ks's refresh token, so that
// presenting it again is recognised as reuse (ConsumedFamily).
func (s *Service) RecordRotation(ctx context.Context, ks *model.Keystore) error {
	return s.store.InsertRotation(ctx, model.Rotation{Client: ks.Client, SKey: ks.SKey, Family: ks.FamilyOf(), CreatedAt: time.Now().UTC()})
}

// ConsumedFamily returns the family of a refresh token (the refresh token's
// jti, sKey) that a refresh has already consumed, and when it was consumed;
// found is false for a token never seen consumed.
func (s *Service) ConsumedFamily(ctx context.Context, client bson.ObjectID, sKey string) (family string, consumedAt time.Time, found bool, err error) {
	switch r, err := s.store.Rotation(ctx, client, sKey); {
	case errors.Is(err, model.ErrNotFound):
		return "", time.Time{}, false, nil
	case err != nil:
		return "", time.Time{}, false, err
	default:
		return r.Family, r.CreatedAt, true, nil
	}
}

// RevokeFamily ends every session of client's family: each keystore is
// marked revoked in the shared cache and deleted, and one user change event
// tells every replica to drop whatever it holds about the user's sessions
// (their ids are not all known here). The family is first marked revoked in
// the store, so a refresh that is creating the family's next keystore at
// this moment either sees the mark (FamilyRevoked) or created its keystore
// early enough to be found and deleted here.
func (s *Service) RevokeFamily(ctx context.Context, client bson.ObjectID, family string) error {
	if err := s.store.MarkFamilyRevoked(ctx, family, time.Now().UTC()); err != nil {
		return err
	}
	members, err := s.store.FamilyMembers(ctx, family)
	if err != nil {
		return err
	}
	revoked := false
	defer func() {
		if revoked {
			s.changes.User(ctx, client.Hex())
		}
	}()
	for _, ks := range members {
		// The mark only has to outlive cached active entries (the cache
		// TTL); after that the store answers, and the keystore is gone.
		if _, err := s.revoke(ctx, ks.ID, ks.PKey, time.Time{}); err != nil {
			if !errors.Is(err, ErrRevocationUnavailable) {
				revoked = true
			}
			return err
		}
		revoked = true
	}
	return nil
}

// FamilyRevoked reports whether RevokeFamily ran for family.
func (s *Service) FamilyRevoked(ctx context.Context, family string) (bool, error) {
	return s.store.FamilyRevoked(ctx, family)
}

// Sweep deletes keystores, rotation records and family marks created before
// cutoff (their refresh tokens have expired, so they can never be used
// again) and returns how many documents went.
func (s *Service) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.store.DeleteCreatedBefore(ctx, cutoff)
}

// RunSweeper sweeps every interval until ctx ends, deleting keystores older
// than maxAge. It sweeps once at start, so a replica that restarts often
// still cleans up.
func (s *Service) RunSweeper(ctx context.Context, interval, maxAge time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Sweep(ctx, time.Now().Add(-maxAge))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("keystore sweep failed; retrying at the next interval", "error", err.Error())
		case n > 0:
			s.log.Info("expired keystores removed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
