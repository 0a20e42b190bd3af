package token

import (
	"hash/maphash"
	"sync"
)

// verifiedCache remembers tokens whose signature and claims verified, so a
// token presented again skips the RSA operation. Only successes are stored
// (garbage cannot fill it) and the entries are immutable facts about the
// token string, so the cache needs no invalidation: revocation is decided
// per request by the session check, and times by checkTimes.
//
// It is split into shards to keep lock contention low; a full shard drops an
// arbitrary entry (Go's map iteration order), which bounds memory without
// bookkeeping.
type verifiedCache struct {
	seed   maphash.Seed
	shards [16]verifiedShard
	limit  int // per shard
}

type verifiedShard struct {
	mu sync.RWMutex
	m  map[string]Claims
}

func newVerifiedCache(size int) *verifiedCache {
	c := &verifiedCache{seed: maphash.MakeSeed(), limit: max(1, size/16)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]Claims)
	}
	return c
}

func (c *verifiedCache) shard(token string) *verifiedShard {
	return &c.shards[maphash.String(c.seed, token)%uint64(len(c.shards))]
}

func (c *verifiedCache) get(token string) (Claims, bool) {
	s := c.shard(token)
	s.mu.RLock()
	claims, ok := s.m[token]
	s.mu.RUnlock()
	return claims, ok
}

func (c *verifiedCache) put(token string, claims Claims) {
	s := c.shard(token)
	s.mu.Lock()
	if len(s.m) >= c.limit {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[token] = claims
	s.mu.Unlock()
}
