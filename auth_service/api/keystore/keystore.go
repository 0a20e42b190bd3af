// Package keystore owns the keystores collection: one document per token
// pair (§6.2), whose pKey is the access token's jti and sKey the refresh
// token's. A pair is valid exactly while its keystore exists.
//
// Session state is mirrored in Redis under auth_session_<pKey>, shared by all
// replicas, so authenticating a request does not query the store: an entry
// is either active (with the keystore id) or revoked. Revocation (sign-out,
// refresh) deletes the keystore first and then writes the revoked entry with
// SET; readers fill the cache with SETNX, so a reader that saw the keystore
// just before it was deleted can never overwrite the revocation.
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
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/mongox"
)

const Collection = "keystores"

// ErrNotFound: no active keystore matches.
var ErrNotFound = errors.New("keystore not found")

// Keystore is a document of keystores.
type Keystore struct {
	ID        bson.ObjectID `bson:"_id,omitempty"`
	Client    bson.ObjectID `bson:"client"`
	PKey      string        `bson:"pKey"`
	SKey      string        `bson:"sKey"`
	Status    bool          `bson:"status"`
	CreatedAt time.Time     `bson:"createdAt"`
	UpdatedAt time.Time     `bson:"updatedAt"`
}

// Indexes: the reference's two lookups, plus a TTL index that removes a
// keystore once its refresh token has expired. Stores without TTL indexes
// (FerretDB) refuse that one; the sweeper does the same job there.
func Indexes(refreshValidity time.Duration) []mongox.Index {
	return []mongox.Index{
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "sKey", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: Collection, Optional: true, Model: mongo.IndexModel{
			Keys:    bson.D{{Key: "createdAt", Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(int32(refreshValidity / time.Second)),
		}},
	}
}

// SessionKey is the Redis key of the session of an access token's jti.
func SessionKey(pKey string) string { return "auth_session_" + pKey }

// Session is the cached state of one access token's keystore.
type Session struct {
	Revoked    bool   `json:"revoked,omitempty"`
	KeystoreID string `json:"keystoreId,omitempty"`
}

type Service struct {
	db    *mongox.DB
	coll  *mongo.Collection
	cache *cache.Cache
	log   *slog.Logger
	// ttl bounds an active entry, i.e. how long a keystore deleted out of
	// band (not through this service) may still be honoured.
	ttl time.Duration
}

func NewService(db *mongox.DB, c *cache.Cache, log *slog.Logger, ttl time.Duration) *Service {
	return &Service{db: db, coll: db.Database.Collection(Collection), cache: c, log: log, ttl: ttl}
}

// Create stores a new keystore with fresh random keys for client.
func (s *Service) Create(ctx context.Context, client bson.ObjectID) (*Keystore, error) {
	pKey, err := randomKey()
	if err != nil {
		return nil, err
	}
	sKey, err := randomKey()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	ks := &Keystore{Client: client, PKey: pKey, SKey: sKey, Status: true, CreatedAt: now, UpdatedAt: now}
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.InsertOne(qctx, ks)
	if err != nil {
		return nil, fmt.Errorf("insert keystore: %w", err)
	}
	ks.ID, _ = res.InsertedID.(bson.ObjectID)
	// Nobody can have revoked a pKey that did not exist a moment ago.
	s.cache.SetNXJSON(ctx, SessionKey(pKey), Session{KeystoreID: ks.ID.Hex()}, s.ttl)
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

// Session resolves the session of (client, pKey). cached is the value read
// from Redis by the caller (nil on a miss); on a miss the store decides and
// the answer is cached. A revoked or unknown session is ErrNotFound.
func (s *Service) Session(ctx context.Context, client bson.ObjectID, pKey string, cached []byte, tokenExpiry time.Time) (Session, error) {
	if cached != nil {
		var sess Session
		if err := json.Unmarshal(cached, &sess); err == nil {
			if sess.Revoked {
				return Session{}, ErrNotFound
			}
			return sess, nil
		}
	}
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var ks Keystore
	err := s.coll.FindOne(qctx, bson.M{"client": client, "pKey": pKey, "status": true}).Decode(&ks)
	switch {
	case mongox.IsNotFound(err):
		// Keys are random and never reused: an unknown pKey stays unknown,
		// so the negative answer is as durable as a revocation.
		s.remember(ctx, pKey, Session{Revoked: true}, tokenExpiry, false)
		return Session{}, ErrNotFound
	case err != nil:
		return Session{}, fmt.Errorf("find keystore: %w", err)
	}
	sess := Session{KeystoreID: ks.ID.Hex()}
	s.remember(ctx, pKey, sess, tokenExpiry, false)
	return sess, nil
}

// remember caches a session state until the token expires (capped by ttl for
// active ones). Revocations overwrite; reads only fill an empty slot.
func (s *Service) remember(ctx context.Context, pKey string, sess Session, tokenExpiry time.Time, overwrite bool) {
	life := time.Until(tokenExpiry) + time.Second
	if life <= time.Second {
		return // the token no longer verifies anyway
	}
	if !sess.Revoked {
		life = min(life, s.ttl)
	}
	if overwrite {
		s.cache.SetJSON(ctx, SessionKey(pKey), sess, life)
	} else {
		s.cache.SetNXJSON(ctx, SessionKey(pKey), sess, life)
	}
}

// FindPair returns the active keystore of a token pair.
func (s *Service) FindPair(ctx context.Context, client bson.ObjectID, pKey, sKey string) (*Keystore, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var ks Keystore
	err := s.coll.FindOne(qctx, bson.M{"client": client, "pKey": pKey, "sKey": sKey, "status": true}).Decode(&ks)
	if mongox.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find keystore pair: %w", err)
	}
	return &ks, nil
}

// Revoke deletes the keystore and marks its session revoked on every
// replica. It reports whether this call deleted it: of concurrent revokers
// of one keystore exactly one gets true, which makes refresh single-use.
//
// The delete is by _id alone and its DeletedCount decides the winner. That
// is atomic on MongoDB and on FerretDB alike, whereas FerretDB's
// findAndModify (FindOneAndDelete) reads and then deletes without checking
// that its delete removed anything, so two callers could both "win".
func (s *Service) Revoke(ctx context.Context, keystoreID bson.ObjectID, pKey string, accessExpiry time.Time) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.DeleteOne(qctx, bson.M{"_id": keystoreID})
	if err != nil {
		return false, fmt.Errorf("delete keystore: %w", err)
	}
	// Written even when another caller deleted first: the tombstone is the
	// same, and writing it twice is harmless.
	s.remember(ctx, pKey, Session{Revoked: true}, accessExpiry, true)
	return res.DeletedCount == 1, nil
}

// Sweep deletes keystores created before cutoff (their refresh tokens have
// expired, so they can never be used again).
func (s *Service) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.DeleteMany(qctx, bson.M{"createdAt": bson.M{"$lt": cutoff}})
	if err != nil {
		return 0, fmt.Errorf("sweep keystores: %w", err)
	}
	return res.DeletedCount, nil
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
