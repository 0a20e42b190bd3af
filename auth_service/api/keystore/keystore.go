// Package keystore owns the keystores collection: one document per token
// pair (§6.2), whose pKey is the access token's jti and sKey the refresh
// token's. A pair is valid exactly while its keystore exists.
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
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/mongox"
)

const (
	Collection = "keystores"
	// RotationsCollection records the refresh tokens refreshes consumed.
	RotationsCollection = "keystore_rotations"
	// RevokedFamiliesCollection marks families revoked for refresh-token
	// reuse, so a refresh racing the revocation cannot leave a live pair.
	RevokedFamiliesCollection = "keystore_revoked_families"
)

var (
	// ErrNotFound: no active keystore matches.
	ErrNotFound = errors.New("keystore not found")
	// ErrRevocationUnavailable: the revocation could not be published to the
	// shared cache, so it was not done.
	ErrRevocationUnavailable = errors.New("revocation marker could not be written")
)

// Keystore is a document of keystores.
type Keystore struct {
	ID     bson.ObjectID `bson:"_id,omitempty"`
	Client bson.ObjectID `bson:"client"`
	PKey   string        `bson:"pKey"`
	SKey   string        `bson:"sKey"`
	Status bool          `bson:"status"`
	// Family is shared by the keystores that refreshes chained together.
	// Keystores stored before families existed have none: their family is
	// their own id (see FamilyOf).
	Family    string    `bson:"family,omitempty"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// FamilyOf is the keystore's family.
func (k *Keystore) FamilyOf() string {
	if k.Family != "" {
		return k.Family
	}
	return k.ID.Hex()
}

// rotation records that a refresh consumed the refresh token sKey of family.
type rotation struct {
	Client    bson.ObjectID `bson:"client"`
	SKey      string        `bson:"sKey"`
	Family    string        `bson:"family"`
	CreatedAt time.Time     `bson:"createdAt"`
}

// Indexes: the reference's two lookups and the family lookup, plus TTL
// indexes that remove a keystore (and the records of its family) once its
// refresh token has expired: a consumed refresh token past its expiry is
// refused by its signature check anyway. Stores without TTL indexes
// (FerretDB) refuse those; the sweeper does the same job there.
func Indexes(refreshValidity time.Duration) []mongox.Index {
	ttl := func(coll string) mongox.Index {
		return mongox.Index{Collection: coll, Optional: true, Model: mongo.IndexModel{
			Keys:    bson.D{{Key: "createdAt", Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(int32(refreshValidity / time.Second)),
		}}
	}
	return []mongox.Index{
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "pKey", Value: 1}, {Key: "sKey", Value: 1}, {Key: "status", Value: 1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "family", Value: 1}}}},
		{Collection: RotationsCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "client", Value: 1}, {Key: "sKey", Value: 1}}}},
		ttl(Collection), ttl(RotationsCollection), ttl(RevokedFamiliesCollection),
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
	db        *mongox.DB
	coll      *mongo.Collection
	rotations *mongo.Collection
	revoked   *mongo.Collection
	cache     *cache.Cache
	log       *slog.Logger
	// ttl bounds an active entry, i.e. how long a keystore deleted out of
	// band (not through this service) may still be honoured.
	ttl time.Duration
}

func NewService(db *mongox.DB, c *cache.Cache, log *slog.Logger, ttl time.Duration) *Service {
	return &Service{
		db: db, coll: db.Database.Collection(Collection),
		rotations: db.Database.Collection(RotationsCollection), revoked: db.Database.Collection(RevokedFamiliesCollection),
		cache: c, log: log, ttl: ttl,
	}
}

// Create stores a new keystore with fresh random keys for client, in family
// (a refresh continues its session's family; "" starts a new one).
func (s *Service) Create(ctx context.Context, client bson.ObjectID, family string) (*Keystore, error) {
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
	ks := &Keystore{Client: client, PKey: pKey, SKey: sKey, Status: true, Family: family, CreatedAt: now, UpdatedAt: now}
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
		s.remember(ctx, pKey, Session{Revoked: true}, tokenExpiry)
		return Session{}, ErrNotFound
	case err != nil:
		return Session{}, fmt.Errorf("find keystore: %w", err)
	}
	sess := Session{KeystoreID: ks.ID.Hex()}
	s.remember(ctx, pKey, sess, tokenExpiry)
	return sess, nil
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

// Revoke marks the keystore's session revoked on every replica and then
// deletes the keystore. It reports whether this call deleted it: of
// concurrent revokers of one keystore exactly one gets true, which makes
// refresh single-use. When the mark cannot be written the keystore is left
// alone and the error is ErrRevocationUnavailable: the session stays exactly
// as valid as it was, which is what the caller's failure answer says.
//
// The delete is by _id alone and its DeletedCount decides the winner. That
// is atomic on MongoDB and on FerretDB alike, whereas FerretDB's
// findAndModify (FindOneAndDelete) reads and then deletes without checking
// that its delete removed anything, so two callers could both "win".
func (s *Service) Revoke(ctx context.Context, keystoreID bson.ObjectID, pKey string, accessExpiry time.Time) (bool, error) {
	// Written even when another caller revokes at the same time: the mark
	// is the same, and writing it twice is harmless.
	if err := s.markRevoked(ctx, pKey, accessExpiry); err != nil {
		return false, err
	}
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.DeleteOne(qctx, bson.M{"_id": keystoreID})
	if err != nil {
		return false, fmt.Errorf("delete keystore: %w", err)
	}
	return res.DeletedCount == 1, nil
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
func (s *Service) RecordRotation(ctx context.Context, ks *Keystore) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	r := rotation{Client: ks.Client, SKey: ks.SKey, Family: ks.FamilyOf(), CreatedAt: time.Now().UTC()}
	if _, err := s.rotations.InsertOne(qctx, r); err != nil {
		return fmt.Errorf("record rotation: %w", err)
	}
	return nil
}

// ConsumedFamily returns the family of a refresh token (the refresh token's
// jti, sKey) that a refresh has already consumed, and when it was consumed;
// found is false for a token never seen consumed.
func (s *Service) ConsumedFamily(ctx context.Context, client bson.ObjectID, sKey string) (family string, consumedAt time.Time, found bool, err error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var r rotation
	switch err := s.rotations.FindOne(qctx, bson.M{"client": client, "sKey": sKey}).Decode(&r); {
	case mongox.IsNotFound(err):
		return "", time.Time{}, false, nil
	case err != nil:
		return "", time.Time{}, false, fmt.Errorf("find rotation: %w", err)
	}
	return r.Family, r.CreatedAt, true, nil
}

// RevokeFamily ends every session of a family: each keystore is marked
// revoked in the shared cache and deleted. The family is first marked
// revoked in the store, so a refresh that is creating the family's next
// keystore at this moment either sees the mark (FamilyRevoked) or created
// its keystore early enough to be found and deleted here.
func (s *Service) RevokeFamily(ctx context.Context, family string) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	_, err := s.revoked.UpdateOne(qctx, bson.M{"_id": family},
		bson.M{"$setOnInsert": bson.M{"createdAt": time.Now().UTC()}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("mark family revoked: %w", err)
	}
	filter := bson.M{"family": family}
	if id, err := bson.ObjectIDFromHex(family); err == nil {
		filter = bson.M{"$or": bson.A{filter, bson.M{"_id": id}}} // a keystore from before families
	}
	cur, err := s.coll.Find(qctx, filter)
	if err != nil {
		return fmt.Errorf("find family: %w", err)
	}
	var members []Keystore
	if err := cur.All(qctx, &members); err != nil {
		return fmt.Errorf("read family: %w", err)
	}
	for _, ks := range members {
		// The mark only has to outlive cached active entries (the cache
		// TTL); after that the store answers, and the keystore is gone.
		if _, err := s.Revoke(ctx, ks.ID, ks.PKey, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// FamilyRevoked reports whether RevokeFamily ran for family.
func (s *Service) FamilyRevoked(ctx context.Context, family string) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	n, err := s.revoked.CountDocuments(qctx, bson.M{"_id": family})
	if err != nil {
		return false, fmt.Errorf("check family: %w", err)
	}
	return n > 0, nil
}

// Sweep deletes keystores, rotation records and family marks created before
// cutoff (their refresh tokens have expired, so they can never be used
// again) and returns how many documents went.
func (s *Service) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var total int64
	for _, coll := range []*mongo.Collection{s.coll, s.rotations, s.revoked} {
		res, err := coll.DeleteMany(qctx, bson.M{"createdAt": bson.M{"$lt": cutoff}})
		if err != nil {
			return total, fmt.Errorf("sweep %s: %w", coll.Name(), err)
		}
		total += res.DeletedCount
	}
	return total, nil
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
