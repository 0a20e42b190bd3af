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
	"time"

	"blogplatform/auth_service/api/apikey/model"
	"blogplatform/auth_service/api/changes"
	"blogplatform/chassis/cache"
)

// Storer is what the service needs from storage. A look-up that finds
// nothing answers model.ErrNotFound; inserting an existing value
// model.ErrDuplicate.
type Storer interface {
	Active(ctx context.Context, key string) (*model.ApiKey, error)
	Insert(ctx context.Context, k *model.ApiKey) error
	// InsertIfMissing leaves an existing key with k's value as it is.
	InsertIfMissing(ctx context.Context, k *model.ApiKey) error
	Disable(ctx context.Context, key string, now time.Time) (matched bool, err error)
}

// activeVerdict is how an active key's cached verdict (JSON true) reads back.
var activeVerdict = []byte("true")

// CacheKey is the Redis key of a key's verdict. The key itself is hashed: it
// is a secret, and it may be up to 1024 characters long.
func CacheKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "auth_apikey_" + hex.EncodeToString(sum[:])
}

type Service struct {
	store    Storer
	cache    *cache.Cache
	changes  *changes.Feed
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
	// Changes announces created, disabled and re-enabled keys to every
	// replica (nil: to none).
	Changes *changes.Feed
}

func NewService(store Storer, c *cache.Cache, o Options) *Service {
	return &Service{store: store, cache: c, changes: o.Changes, ttl: o.CacheTTL,
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
	active, err := s.stored(ctx, key)
	if err != nil {
		return false, err
	}
	if !active {
		s.rejected.add(ck)
		return false, nil
	}
	s.cache.SetNXJSON(ctx, ck, true, s.ttl)
	return true, nil
}

// stored reports whether the store holds key as active.
func (s *Service) stored(ctx context.Context, key string) (bool, error) {
	switch _, err := s.store.Active(ctx, key); {
	case errors.Is(err, model.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Create stores an active key and publishes its verdict to every replica.
// An existing value is model.ErrDuplicate.
func (s *Service) Create(ctx context.Context, key string, comments []string) (*model.ApiKey, error) {
	k := model.New(key, comments, time.Now().UTC())
	if err := s.store.Insert(ctx, k); err != nil {
		return nil, err
	}
	s.rejected.remove(CacheKey(key))
	s.cache.SetJSON(ctx, CacheKey(key), true, s.ttl)
	s.changes.APIKey(ctx, key)
	return k, nil
}

// Disable sets the key's status to false and publishes the negative verdict,
// so every replica refuses it from now on. It reports whether a key matched.
func (s *Service) Disable(ctx context.Context, key string) (bool, error) {
	matched, err := s.store.Disable(ctx, key, time.Now().UTC())
	if err != nil {
		return false, err
	}
	s.cache.SetJSON(ctx, CacheKey(key), false, s.ttl)
	if matched {
		s.changes.APIKey(ctx, key)
	}
	return matched, nil
}

// Ensure creates key when missing and leaves an existing one as it is (an
// operator who disabled it keeps it disabled). A concurrent bootstrap that
// inserted first counts as success.
func (s *Service) Ensure(ctx context.Context, key string, comments []string) error {
	if err := s.store.InsertIfMissing(ctx, model.New(key, comments, time.Now().UTC())); err != nil {
		return err
	}
	// Replace any verdict cached before the key existed with the stored truth.
	active, err := s.stored(ctx, key)
	if err != nil {
		return err
	}
	s.rejected.remove(CacheKey(key))
	s.cache.SetJSON(ctx, CacheKey(key), active, s.ttl)
	s.changes.APIKey(ctx, key)
	return nil
}
