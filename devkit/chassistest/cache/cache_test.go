package cache_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/metrics"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

var env *testinfra.Env

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

func newCache(t *testing.T) (*cache.Cache, redis.UniversalClient, *metrics.Metrics) {
	t.Helper()
	rdb := cache.NewRedis(cache.RedisOptions{Host: env.Redis.Host(), Port: env.Redis.Port(), Password: env.RedisPassword(), DB: env.NextRedisDB()})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	m := metrics.New("test")
	return cache.New(rdb, "blog", slog.New(slog.DiscardHandler), m), rdb, m
}

type blog struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
}

func TestJSONRoundTripAndMetrics(t *testing.T) {
	c, _, m := newCache(t)
	ctx := context.Background()
	var got blog
	if c.GetJSON(ctx, "blog_1", &got) {
		t.Fatal("hit on an empty cache")
	}
	c.SetJSON(ctx, "blog_1", blog{ID: "1", Title: "Quantum"}, time.Minute)
	if !c.GetJSON(ctx, "blog_1", &got) || got.Title != "Quantum" {
		t.Fatalf("round trip: %+v", got)
	}
	hits := testCounter(t, m, "hit")
	misses := testCounter(t, m, "miss")
	if hits != 1 || misses != 1 {
		t.Fatalf("hits %v misses %v, want 1 and 1", hits, misses)
	}
}

func testCounter(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cache_lookups_total" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return metric.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Pre-encoded JSON is stored byte for byte, as SetJSON of the value would.
func TestRawJSONStoredAsIs(t *testing.T) {
	c, _, _ := newCache(t)
	ctx := context.Background()
	raw := json.RawMessage(`{"_id":"1","title":"Raw"}`)
	gen, _ := c.Generation(ctx, "blog_cache_gen")
	c.SetIfGeneration(ctx, "blog_cache_gen", gen, "blog_raw", raw, time.Minute)
	c.SetJSON(ctx, "blog_val", blog{ID: "1", Title: "Raw"}, time.Minute)
	a, okA := c.GetRaw(ctx, "blog_raw")
	b, okB := c.GetRaw(ctx, "blog_val")
	if !okA || !okB || string(a) != string(raw) || string(a) != string(b) {
		t.Fatalf("raw %q (%v), encoded %q (%v)", a, okA, b, okB)
	}
}

// A reader that read the store before a write must not put its stale value
// back after the write invalidated the cache.
func TestGenerationGuardRejectsStaleWrite(t *testing.T) {
	c, rdb, _ := newCache(t)
	ctx := context.Background()
	gen, ok := c.Generation(ctx, "blog_cache_gen")
	if !ok || gen != "0" {
		t.Fatalf("initial generation %q %v", gen, ok)
	}
	// Writer invalidates while the reader is "reading the store".
	if err := c.Invalidate(ctx, "blog_cache_gen", []string{"blog_1"}); err != nil {
		t.Fatal(err)
	}
	c.SetIfGeneration(ctx, "blog_cache_gen", gen, "blog_1", blog{ID: "1", Title: "stale"}, time.Minute)
	if n, _ := rdb.Exists(ctx, "blog_1").Result(); n != 0 {
		t.Fatal("stale value written after an invalidation")
	}
	// A fresh reader's write lands.
	gen, _ = c.Generation(ctx, "blog_cache_gen")
	c.SetIfGeneration(ctx, "blog_cache_gen", gen, "blog_1", blog{ID: "1", Title: "fresh"}, time.Minute)
	var got blog
	if !c.GetJSON(ctx, "blog_1", &got) || got.Title != "fresh" {
		t.Fatalf("fresh write missing: %+v", got)
	}
	if ttl := rdb.PTTL(ctx, "blog_1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %s", ttl)
	}
}

func TestTombstoneBeatsSlowReader(t *testing.T) {
	c, _, _ := newCache(t)
	ctx := context.Background()
	c.SetJSON(ctx, "session_1", "revoked", time.Minute) // sign-out writes a tombstone
	c.SetNXJSON(ctx, "session_1", "valid", time.Minute) // a reader that read before the delete
	var got string
	if !c.GetJSON(ctx, "session_1", &got) || got != "revoked" {
		t.Fatalf("tombstone overwritten: %q", got)
	}
}

func TestRedisDownIsAMissNotAFailure(t *testing.T) {
	private := testinfra.NewEnv(t)
	rdb := cache.NewRedis(cache.RedisOptions{Host: private.Redis.Host(), Port: private.Redis.Port(), Password: private.RedisPassword()})
	defer rdb.Close()
	m := metrics.New("test")
	c := cache.New(rdb, "blog", slog.New(slog.DiscardHandler), m)
	ctx := context.Background()
	c.SetJSON(ctx, "k", "v", time.Minute)
	if err := private.Redis.Stop(); err != nil {
		t.Fatal(err)
	}
	var got string
	start := time.Now()
	if c.GetJSON(ctx, "k", &got) {
		t.Fatal("hit while Redis is down")
	}
	c.SetJSON(ctx, "k", "v2", time.Minute) // must not panic or block
	if _, ok := c.Generation(ctx, "g"); ok {
		t.Fatal("generation reported while Redis is down")
	}
	if err := c.Invalidate(ctx, "g", []string{"k"}); err == nil {
		t.Fatal("invalidate must report failure so the caller can retry")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Redis outage made calls slow")
	}
	if testCounter(t, m, "error") == 0 {
		t.Fatal("errors not counted")
	}
	if err := private.Redis.Start(); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, "Redis answers again", func() bool { return c.Ping(ctx) == nil })
	c.SetJSON(ctx, "k", "v3", time.Minute)
	if !c.GetJSON(ctx, "k", &got) || got != "v3" {
		t.Fatalf("after restart: %q", got)
	}
}
