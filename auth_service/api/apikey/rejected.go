package apikey

import (
	"sync"
	"time"
)

// rejectedCache remembers, in process and briefly, keys the store did not
// know. A client sending random keys would otherwise cost a store query per
// request; remembering them in Redis instead would let it fill Redis. It is
// bounded (a full cache drops expired entries, then arbitrary ones) and
// holds key hashes only, never the keys.
type rejectedCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	now  func() time.Time
	seen map[string]time.Time // hash -> expiry
}

func newRejectedCache(ttl time.Duration, size int, now func() time.Time) *rejectedCache {
	if now == nil {
		now = time.Now
	}
	return &rejectedCache{ttl: ttl, max: max(1, size), now: now, seen: make(map[string]time.Time)}
}

func (c *rejectedCache) has(hash string) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.seen[hash]
	if ok && !c.now().Before(exp) {
		delete(c.seen, hash)
		return false
	}
	return ok
}

func (c *rejectedCache) add(hash string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		for k := range c.seen {
			if len(c.seen) < c.max {
				break
			}
			delete(c.seen, k)
		}
	}
	c.seen[hash] = now.Add(c.ttl)
}

func (c *rejectedCache) remove(hash string) {
	c.mu.Lock()
	delete(c.seen, hash)
	c.mu.Unlock()
}

func (c *rejectedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
