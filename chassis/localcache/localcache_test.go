package localcache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(max int, ttl time.Duration) (*Cache[string], *clock) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	return New[string](Options{Name: "test", MaxEntries: max, TTL: ttl, Now: clk.now}), clk
}

func TestCache(t *testing.T) {
	t.Run("HitThenExpired", func(t *testing.T) {
		c, clk := newTest(10, time.Second)
		if !c.Set("k", "v", c.Generation()) {
			t.Fatal("Set refused on a fresh cache")
		}
		if v, ok := c.Get("k"); !ok || v != "v" {
			t.Fatalf("Get = %q, %v; want v, true", v, ok)
		}
		clk.add(time.Second)
		if _, ok := c.Get("k"); ok {
			t.Fatal("entry served after its TTL")
		}
	})
	t.Run("StaleFillRefused", func(t *testing.T) {
		c, _ := newTest(10, time.Minute)
		gen := c.Generation()  // a reader starts asking the slower tier
		c.Invalidate("user:1") // a change lands meanwhile, whatever its tag
		if c.Set("k", "old", gen, "user:1") {
			t.Fatal("a fill that began before an invalidation was stored")
		}
		if _, ok := c.Get("k"); ok {
			t.Fatal("stale fill served")
		}
	})
	t.Run("InvalidateByTag", func(t *testing.T) {
		c, _ := newTest(10, time.Minute)
		c.Set("a", "1", c.Generation(), "user:1", "session:a")
		c.Set("b", "2", c.Generation(), "user:1", "session:b")
		c.Set("c", "3", c.Generation(), "user:2")
		c.Invalidate("session:a")
		if _, ok := c.Get("a"); ok {
			t.Fatal("a survived its tag")
		}
		if _, ok := c.Get("b"); !ok {
			t.Fatal("b dropped by another entry's tag")
		}
		c.Invalidate("user:1")
		if _, ok := c.Get("b"); ok {
			t.Fatal("b survived its user tag")
		}
		if v, ok := c.Get("c"); !ok || v != "3" {
			t.Fatal("c dropped by another user's tag")
		}
		if c.Len() != 1 {
			t.Fatalf("Len = %d, want 1", c.Len())
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		c, _ := newTest(100, time.Minute)
		for i := range 1000 {
			c.Set(fmt.Sprint(i), "v", c.Generation(), fmt.Sprint("tag", i))
		}
		if n := c.Len(); n != 100 {
			t.Fatalf("Len = %d, want the bound 100", n)
		}
		c.mu.RLock()
		tags := len(c.byTag)
		c.mu.RUnlock()
		if tags != 100 {
			t.Fatalf("tag index holds %d tags for 100 entries", tags)
		}
	})
	t.Run("SuspendedNeitherServesNorStores", func(t *testing.T) {
		c, _ := newTest(10, time.Minute)
		c.Set("k", "v", c.Generation())
		c.Suspend()
		if _, ok := c.Get("k"); ok {
			t.Fatal("served while suspended")
		}
		if c.Set("k2", "v", c.Generation()) {
			t.Fatal("stored while suspended")
		}
		c.Resume()
		if _, ok := c.Get("k"); ok {
			t.Fatal("an entry from before the suspension came back")
		}
		if !c.Set("k", "v", c.Generation()) {
			t.Fatal("Set refused after Resume")
		}
	})
	t.Run("OverwriteRetags", func(t *testing.T) {
		c, _ := newTest(10, time.Minute)
		c.Set("k", "v1", c.Generation(), "old")
		c.Set("k", "v2", c.Generation(), "new")
		c.Invalidate("old")
		if v, ok := c.Get("k"); !ok || v != "v2" {
			t.Fatalf("Get = %q, %v after invalidating a tag the entry no longer has", v, ok)
		}
	})
}

func TestCacheConcurrent(t *testing.T) {
	c, _ := newTest(64, time.Minute)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				key := fmt.Sprint((w + i) % 128)
				if _, ok := c.Get(key); !ok {
					c.Set(key, key, c.Generation(), "t"+key)
				}
				if i%97 == 0 {
					c.Invalidate("t" + key)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("Len = %d beyond the bound", c.Len())
	}
}
