package cache_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/metrics"
	"blogplatform/devkit/embedded"
)

func TestSlotTag(t *testing.T) {
	tests := []struct{ key, tag string }{
		{"blog_1", "blog_1"},
		{"{user1000}.following", "user1000"},
		{"foo{}{bar}", "foo{}{bar}"}, // an empty first tag: the whole key
		{"foo{{bar}}zap", "{bar"},
		{"foo{bar}{zap}", "bar"},
		{"a}b", "a}b"},
		{"{", "{"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := cache.SlotTag(tt.key); got != tt.tag {
			t.Errorf("SlotTag(%q) = %q, want %q", tt.key, got, tt.tag)
		}
	}
	if got := cache.SameSlot("gen:", "blog_1"); got != "gen:{blog_1}" {
		t.Errorf("SameSlot = %q", got)
	}
}

// The cache's contract on a real three-primary Redis Cluster: plain reads
// and writes, reads of many keys spread over every node, deletes of several
// keys, tombstones, and generation-guarded writes and invalidation whose
// keys share a slot (SameSlot). The server itself checks the slots: a
// multi-key command or script across slots fails, so a pass proves none is
// issued.
func TestCacheOnRedisCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, err := embedded.StartRedisCluster(ctx, embedded.RedisClusterOptions{Password: "cluster-cache"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	rdb := cache.NewRedis(cache.RedisOptions{ClusterAddrs: cluster.Addrs()[:1], Password: cluster.Password(), DB: 2})
	defer rdb.Close()
	if !cache.IsCluster(rdb) {
		t.Fatalf("client %T, want a cluster client", rdb)
	}
	cc := rdb.(*redis.ClusterClient)
	m := metrics.New("test")
	c := cache.New(rdb, "blog", slog.New(slog.DiscardHandler), m)

	t.Run("get and set", func(t *testing.T) {
		var got blog
		if c.GetJSON(ctx, "c_blog_1", &got) {
			t.Fatal("hit on an empty cluster")
		}
		c.SetJSON(ctx, "c_blog_1", blog{ID: "1", Title: "Cluster"}, time.Minute)
		if !c.GetJSON(ctx, "c_blog_1", &got) || got.Title != "Cluster" {
			t.Fatalf("round trip: %+v", got)
		}
	})

	t.Run("many keys on every node", func(t *testing.T) {
		var keys []string
		nodes := map[string]bool{}
		for i := 0; i < 30; i++ {
			k := fmt.Sprintf("c_many_%d", i)
			keys = append(keys, k)
			if i%3 != 2 { // every third stays a miss
				c.SetJSON(ctx, k, i, time.Minute)
			}
			node, err := cc.MasterForKey(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			nodes[node.Options().Addr] = true
		}
		if len(nodes) != 3 {
			t.Fatalf("keys on %d nodes, want 3", len(nodes))
		}
		errorsBefore := testCounter(t, m, "error")
		got := c.GetManyRaw(ctx, keys...)
		for i, b := range got {
			want := ""
			if i%3 != 2 {
				want = fmt.Sprint(i)
			}
			if string(b) != want {
				t.Fatalf("key %s: %q, want %q", keys[i], b, want)
			}
		}
		if testCounter(t, m, "error") != errorsBefore {
			t.Fatal("reading many keys counted an error")
		}
		if err := c.Delete(ctx, keys...); err != nil {
			t.Fatalf("delete across slots: %v", err)
		}
		for _, b := range c.GetManyRaw(ctx, keys...) {
			if b != nil {
				t.Fatalf("deleted key still read: %q", b)
			}
		}
	})

	t.Run("tombstone", func(t *testing.T) {
		c.SetJSON(ctx, "c_session_1", "revoked", time.Minute)
		c.SetNXJSON(ctx, "c_session_1", "valid", time.Minute)
		var got string
		if !c.GetJSON(ctx, "c_session_1", &got) || got != "revoked" {
			t.Fatalf("tombstone overwritten: %q", got)
		}
	})

	t.Run("generation guard in the key's slot", func(t *testing.T) {
		// Entries of different blogs have their generations in their own
		// slots, so the guarded writes spread over the nodes.
		nodes := map[string]bool{}
		for i := 0; i < 12; i++ {
			key := fmt.Sprintf("c_guarded_%d", i)
			genKey := cache.SameSlot("c_gen:", key)
			gen, ok := c.Generation(ctx, genKey)
			if !ok || gen != "0" {
				t.Fatalf("initial generation %q %v", gen, ok)
			}
			if err := c.Invalidate(ctx, genKey, []string{key}); err != nil {
				t.Fatalf("invalidate in one slot: %v", err)
			}
			c.SetIfGeneration(ctx, genKey, gen, key, blog{ID: "1", Title: "stale"}, time.Minute)
			if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Fatalf("stale value written after an invalidation (%d, %v)", n, err)
			}
			gen, _ = c.Generation(ctx, genKey)
			c.SetIfGeneration(ctx, genKey, gen, key, blog{ID: "1", Title: "fresh"}, time.Minute)
			var got blog
			if !c.GetJSON(ctx, key, &got) || got.Title != "fresh" {
				t.Fatalf("fresh guarded write missing: %+v", got)
			}
			node, _ := cc.MasterForKey(ctx, key)
			nodes[node.Options().Addr] = true
		}
		if len(nodes) < 2 {
			t.Fatalf("guarded keys all on %v", nodes)
		}
	})

	t.Run("a script across slots fails loudly", func(t *testing.T) {
		// The guard cannot span slots; the server says so rather than
		// silently skipping the guard, and the cache reports the error.
		err := c.Invalidate(ctx, "c_gen_global", []string{"c_guarded_0", "c_guarded_1"})
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Fatalf("invalidate across slots: %v, want CROSSSLOT", err)
		}
	})

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
