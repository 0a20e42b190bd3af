// Package apikey verifies the gateway's x-api-key (GET /verify/apikey) and
// manages api_keys. Every gateway request asks for a verdict, so verdicts are
// cached in Redis, shared by all replicas: a change made through this
// service overwrites the shared verdict at once, and the TTL bounds how long
// an out-of-band database edit can go unnoticed. Keys the store does not
// know are remembered only in process, briefly and in bounded number (see
// rejectedCache); a key created through any replica overrides that at once,
// because the shared verdict is read first. In front of Redis each replica
// may keep the verdicts it read (Options.Local), dropped on every replica
// by the change event a create, disable or enable announces.
package apikey

import (
	"bytes"
	"context"
	"errors"
	"time"

	"blogplatform/auth_service/api/apikey/model"
	"blogplatform/auth_service/api/changes"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/localcache"
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
func CacheKey(key string) string { return cacheKeyOf(authwire.APIKeyHash(key)) }

// cacheKeyOf is CacheKey of a key whose hash (authwire.APIKeyHash) is known.
func cacheKeyOf(hash string) string { return "auth_apikey_" + hash }

type Service struct {
	store    Storer
	cache    *cache.Cache
	local    *localcache.Cache[bool]
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
	// Local is this replica's first-level copy of verdicts read from Redis
	// or the store, by key hash (nil: none). Its entries carry the key's tag
	// (authwire.APIKeyTag), so it must be invalidated by Changes and follow
	// the other replicas' change events. Keys nobody created are not kept
	// there (see rejectedCache): anyone can invent them, and they would
	// push the hot keys out.
	Local *localcache.Cache[bool]
}

func NewService(store Storer, c *cache.Cache, o Options) *Service {
	return &Service{store: store, cache: c, local: o.Local, changes: o.Changes, ttl: o.CacheTTL,
		rejected: newRejectedCache(o.RejectedTTL, o.RejectedSize, nil)}
}

// IsActive reports whether key exists with status true.
//
// This replica's copy of the verdict comes first: a change through any
// replica drops it everywhere before that change is answered. Then the
// shared verdict, so a key created or disabled through any replica counts
// at once. Then the in-process memory of unknown keys: a key sent again
// within its TTL costs neither a store query nor a Redis write. A verdict
// read from the store is cached with SETNX: a concurrent Create or Disable
// writes its verdict with SET, which a slower reader therefore cannot
// overwrite with what it read before the change. Unknown keys are not
// written to Redis: anyone can invent them, without bound.
func (s *Service) IsActive(ctx context.Context, key string) (bool, error) {
	hash := authwire.APIKeyHash(key)
	if active, ok := s.local.Get(hash); ok {
		return active, nil
	}
	gen := s.local.Generation() // before Redis: see localcache
	ck := cacheKeyOf(hash)
	if cached, ok := s.cache.GetRaw(ctx, ck); ok {
		active := bytes.Equal(cached, activeVerdict)
		s.local.Set(hash, active, gen, authwire.APIKeyTag(hash))
		return active, nil
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
	s.local.Set(hash, true, gen, authwire.APIKeyTag(hash))
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
