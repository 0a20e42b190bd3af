// Package localcache is a replica's first-level cache: a bounded, in-process
// map in front of Redis (or of a NATS round trip) for the hottest answers.
//
// It is only correct together with invalidation events that reach every
// replica (package changefeed): each entry carries tags (a user id, a blog
// id, a list family) and an event drops every entry holding one of its tags.
// Three guards keep a replica from serving what another replica has already
// changed:
//   - generation-guarded fills: a caller notes Generation before asking the
//     slower tier and its Set lands only if no invalidation happened since,
//     so an answer computed before an event cannot be stored after it;
//   - a TTL on every entry, the bound on staleness if an event is ever lost;
//   - Suspend/Resume: while the replica is cut off from the event stream
//     (NATS disconnected) the cache neither serves nor stores, and it starts
//     empty when the stream is back, because events may have been missed.
package localcache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"blogplatform/chassis/metrics"
)

// Options configure a Cache.
type Options struct {
	// Name labels the cache_lookups_total series ("l1_<name>").
	Name string
	// MaxEntries bounds the memory held (default 10,000). When full, an
	// arbitrary entry makes room: the hot keys come straight back, and the
	// bound matters more than the hit ratio.
	MaxEntries int
	// TTL bounds how long an entry lives (default 5s) whatever the events
	// say.
	TTL     time.Duration
	Metrics *metrics.Metrics
	// Now is the clock (tests); time.Now by default.
	Now func() time.Time
}

type entry[V any] struct {
	value   V
	expires int64 // Unix nanoseconds
	tags    []string
}

// Cache maps keys to values of type V. It is safe for concurrent use. A nil
// *Cache is a cache that is turned off: it never serves and never stores.
type Cache[V any] struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]entry[V]
	byTag   map[string]map[string]struct{}

	// generation is bumped by every invalidation; see Set.
	generation atomic.Uint64
	suspended  atomic.Bool

	hits, misses prometheus.Counter
}

// New returns an empty, serving cache.
func New[V any](o Options) *Cache[V] {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache[V]{max: o.MaxEntries, ttl: o.TTL, now: o.Now,
		entries: make(map[string]entry[V]), byTag: make(map[string]map[string]struct{})}
	if o.Metrics != nil {
		c.hits = o.Metrics.CacheLookups.WithLabelValues("l1_"+o.Name, "hit")
		c.misses = o.Metrics.CacheLookups.WithLabelValues("l1_"+o.Name, "miss")
	}
	return c
}

// Get returns the live value under key.
func (c *Cache[V]) Get(key string) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	var zero V
	if c.suspended.Load() {
		return zero, false
	}
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || c.now().UnixNano() >= e.expires {
		if c.misses != nil {
			c.misses.Inc()
		}
		return zero, false
	}
	if c.hits != nil {
		c.hits.Inc()
	}
	return e.value, true
}

// Generation is the invalidation count to pass to Set: read it before
// asking the slower tier for the value.
func (c *Cache[V]) Generation() uint64 {
	if c == nil {
		return 0
	}
	return c.generation.Load()
}

// Set stores value under key with tags, unless an invalidation happened
// since generation was read or the cache is suspended. It reports whether
// the value was stored.
func (c *Cache[V]) Set(key string, value V, generation uint64, tags ...string) bool {
	if c == nil {
		return false
	}
	if c.suspended.Load() {
		return false
	}
	expires := c.now().Add(c.ttl).UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Checked under the lock: invalidations bump the generation while
	// holding it, so no invalidation can fall between this check and the
	// write below.
	if c.generation.Load() != generation || c.suspended.Load() {
		return false
	}
	if old, ok := c.entries[key]; ok {
		c.untagLocked(key, old.tags)
	} else if len(c.entries) >= c.max {
		for victim, e := range c.entries {
			c.deleteLocked(victim, e)
			break
		}
	}
	c.entries[key] = entry[V]{value: value, expires: expires, tags: tags}
	for _, t := range tags {
		keys := c.byTag[t]
		if keys == nil {
			keys = make(map[string]struct{}, 1)
			c.byTag[t] = keys
		}
		keys[key] = struct{}{}
	}
	return true
}

// Invalidate drops every entry carrying one of tags.
func (c *Cache[V]) Invalidate(tags ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	for _, t := range tags {
		for key := range c.byTag[t] {
			if e, ok := c.entries[key]; ok {
				c.deleteLocked(key, e)
			}
		}
	}
}

// Clear drops every entry.
func (c *Cache[V]) Clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	clear(c.entries)
	clear(c.byTag)
}

// Suspend empties the cache and stops it serving and storing until Resume.
func (c *Cache[V]) Suspend() {
	if c == nil {
		return
	}
	c.suspended.Store(true)
	c.Clear()
}

// Resume empties the cache and lets it serve again.
func (c *Cache[V]) Resume() {
	if c == nil {
		return
	}
	c.Clear()
	c.suspended.Store(false)
}

// Suspended reports whether the cache is suspended.
func (c *Cache[V]) Suspended() bool { return c == nil || c.suspended.Load() }

// Len is the number of entries held, expired ones included.
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *Cache[V]) deleteLocked(key string, e entry[V]) {
	delete(c.entries, key)
	c.untagLocked(key, e.tags)
}

func (c *Cache[V]) untagLocked(key string, tags []string) {
	for _, t := range tags {
		if keys := c.byTag[t]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(c.byTag, t)
			}
		}
	}
}
