// Package apikey verifies the gateway's x-api-key (GET /verify/apikey) and
// manages api_keys. Every gateway request asks for a verdict, so verdicts are
// cached in Redis, shared by all replicas: a change made through this
// service overwrites the shared verdict at once, and the TTL bounds how long
// an out-of-band database edit can go unnoticed. Keys the store does not
// know are remembered only in process, briefly and in bounded number (see
// rejectedCache); a key created through any replica overrides that at once,
// because the shared verdict is read first.
package apikey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/mongox"
)

// ErrDuplicate: a key with that value exists already.
var ErrDuplicate = errors.New("api key exists")

// activeVerdict is how an active key's cached verdict (JSON true) reads back.
var activeVerdict = []byte("true")

// CacheKey is the Redis key of a key's verdict. The key itself is hashed: it
// is a secret, and it may be up to 1024 characters long.
func CacheKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "auth_apikey_" + hex.EncodeToString(sum[:])
}

type Service struct {
	db       *mongox.DB
	coll     *mongo.Collection
	cache    *cache.Cache
	ttl      time.Duration
	rejected *rejectedCache
}

// Options configure a Service.
type Options struct {
	// CacheTTL bounds a shared verdict's life in Redis.
	CacheTTL time.Duration
	// RejectedTTL and RejectedSize bound the in-process memory of unknown
	// keys (0 TTL disables it).
	RejectedTTL  time.Duration
	RejectedSize int
}

func NewService(db *mongox.DB, c *cache.Cache, o Options) *Service {
	return &Service{db: db, coll: db.Database.Collection(Collection), cache: c, ttl: o.CacheTTL,
		rejected: newRejectedCache(o.RejectedTTL, o.RejectedSize, nil)}
}

// IsActive reports whether key exists with status true.
//
// The shared verdict comes first, so a key created or disabled through any
// replica counts at once. Then the in-process memory of unknown keys: a key
// sent again within its TTL costs neither a store query nor a Redis write.
// A verdict read from the store is cached with SETNX: a concurrent Create or
// Disable writes its verdict with SET, which a slower reader therefore cannot
// overwrite with what it read before the change. Unknown keys are not
// written to Redis: anyone can invent them, without bound.
func (s *Service) IsActive(ctx context.Context, key string) (bool, error) {
	ck := CacheKey(key)
	if cached, ok := s.cache.GetRaw(ctx, ck); ok {
		return bytes.Equal(cached, activeVerdict), nil
	}
	if s.rejected.has(ck) {
		return false, nil
	}
	found, err := s.find(ctx, key)
	if err != nil {
		return false, err
	}
	if found == nil {
		s.rejected.add(ck)
		return false, nil
	}
	s.cache.SetNXJSON(ctx, ck, true, s.ttl)
	return true, nil
}

func (s *Service) find(ctx context.Context, key string) (*ApiKey, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var k ApiKey
	if err := s.coll.FindOne(qctx, bson.M{"key": key, "status": true}).Decode(&k); err != nil {
		if mongox.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("find api key: %w", err)
	}
	return &k, nil
}

// Create stores an active key and publishes its verdict to every replica.
func (s *Service) Create(ctx context.Context, key string, comments []string) (*ApiKey, error) {
	now := time.Now().UTC()
	k := &ApiKey{Key: key, Version: 1, Permissions: []string{PermissionGeneral}, Comments: comments, Status: true, CreatedAt: now, UpdatedAt: now}
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.InsertOne(qctx, k)
	if err != nil {
		if mongox.IsDuplicateKey(err) {
			return nil, ErrDuplicate
		}
		return nil, fmt.Errorf("insert api key: %w", err)
	}
	k.ID, _ = res.InsertedID.(bson.ObjectID)
	s.rejected.remove(CacheKey(key))
	s.cache.SetJSON(ctx, CacheKey(key), true, s.ttl)
	return k, nil
}

// Disable sets the key's status to false and publishes the negative verdict,
// so every replica refuses it from now on. It reports whether a key matched.
func (s *Service) Disable(ctx context.Context, key string) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.coll.UpdateOne(qctx, bson.M{"key": key}, bson.M{"$set": bson.M{"status": false, "updatedAt": time.Now().UTC()}})
	if err != nil {
		return false, fmt.Errorf("disable api key: %w", err)
	}
	s.cache.SetJSON(ctx, CacheKey(key), false, s.ttl)
	return res.MatchedCount > 0, nil
}

// Ensure creates key when missing and leaves an existing one as it is (an
// operator who disabled it keeps it disabled). A concurrent bootstrap that
// inserted first counts as success.
func (s *Service) Ensure(ctx context.Context, key string, comments []string) error {
	now := time.Now().UTC()
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	_, err := s.coll.UpdateOne(qctx, bson.M{"key": key}, bson.M{"$setOnInsert": bson.M{
		"version": 1, "permissions": []string{PermissionGeneral}, "comments": comments,
		"status": true, "createdAt": now, "updatedAt": now,
	}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("ensure api key: %w", err)
	}
	// Replace any verdict cached before the key existed with the stored truth.
	found, err := s.find(ctx, key)
	if err != nil {
		return err
	}
	s.rejected.remove(CacheKey(key))
	s.cache.SetJSON(ctx, CacheKey(key), found != nil, s.ttl)
	return nil
}
