package blogcache

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/metrics"
	"blogplatform/devkit/embedded"
)

// TestOnRedisCluster: the blog cache on a real three-primary Redis Cluster.
// The server refuses any script or command whose keys span slots, and the
// cache hides such errors from readers, so every step also checks that no
// Redis call failed (the error counters stay 0).
func TestOnRedisCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, err := embedded.StartRedisCluster(ctx, embedded.RedisClusterOptions{})
	if err != nil {
		t.Fatal(err) // a missing redis-server fails here, with the install line
	}
	t.Cleanup(func() { _ = cluster.Close() })
	rdb := cache.NewRedis(cache.RedisOptions{ClusterAddrs: cluster.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	m := metrics.New("test")
	c := New(cache.New(rdb, "blog", slog.New(slog.DiscardHandler), m), Options{
		TTLs: TTLs{Blog: time.Minute, Similar: time.Minute, List: time.Minute}, RetryInterval: retryInterval,
		Metrics: m, Name: "blog_lists", Logger: slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	noErrors := func(t *testing.T) {
		t.Helper()
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, metric := range mf.GetMetric() {
				for _, l := range metric.GetLabel() {
					if mf.GetName() == "cache_lookups_total" && l.GetName() == "result" && l.GetValue() == "error" && metric.GetCounter().GetValue() > 0 {
						t.Fatalf("%v Redis errors on the cluster: %v", metric.GetCounter().GetValue(), metric.GetLabel())
					}
				}
			}
		}
		if c.Pending() {
			t.Fatal("an invalidation is pending: it failed on the cluster")
		}
	}

	t.Run("blogs by id and slug, guarded and invalidated", func(t *testing.T) {
		for _, slug := range []string{"plain-slug", "braces{in}the-slug", "}{", "66a1f0c2e4b0a1b2c3d4e5f6"} {
			b := blog(bson.NewObjectID())
			b.Slug = slug
			byID, bySlug := c.BlogByID(b.ID.Hex()), c.BlogBySlug(slug)
			v := func(n int) Loader {
				return func(context.Context) (any, error) {
					return rawJSON(`{"_id":"` + b.ID.Hex() + `","v":` + strconv.Itoa(n) + `}`), nil
				}
			}
			for _, e := range []Entry{byID, bySlug} {
				fetch(t, c, e, v(1))
				if got := fetch(t, c, e, v(2)); !strings.HasSuffix(got, `"v":1}`) {
					t.Fatalf("slug %q: second read %s, want the cached v1", slug, got)
				}
			}
			// A reader that read the store before the write must not store
			// what it read (its generation, in the key's slot, changed).
			started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			c.Changed(ctx, b)
			go func() {
				defer close(done)
				_, _ = c.Fetch(ctx, byID, func(context.Context) (any, error) {
					close(started)
					<-release
					return rawJSON(`{"_id":"` + b.ID.Hex() + `","v":2}`), nil
				})
			}()
			<-started
			c.Changed(ctx, b)
			close(release)
			<-done
			for _, e := range []Entry{byID, bySlug} {
				if got := fetch(t, c, e, v(3)); !strings.HasSuffix(got, `"v":3}`) {
					t.Fatalf("slug %q: read after the writes served %s, want v3", slug, got)
				}
			}
			noErrors(t)
		}
	})

	t.Run("list pages spread and are all dropped by a write", func(t *testing.T) {
		page := model.Page{Number: 2, Size: 10} // not a first page: no background refresh
		author := bson.NewObjectID()
		var entries []Entry
		for i := 0; i < 60; i++ {
			entries = append(entries, c.Tag("T"+strconv.Itoa(i), page), c.Similar(bson.NewObjectID().Hex()))
		}
		entries = append(entries, c.Latest(page), c.AuthorList(author.Hex(), model.PublishedBlogs, page),
			c.EditorList(model.PublishedBlogs, page))
		for _, e := range entries {
			fetch(t, c, e, value("page"))
		}
		cc := rdb.(*redis.ClusterClient)
		nodes, slots := map[string]bool{}, map[int64]bool{}
		var mu sync.Mutex // ForEachMaster calls back from one goroutine per node
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			keys, err := node.Keys(ctx, Prefix+"*").Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				slot, err := node.ClusterKeySlot(ctx, k).Result()
				if err != nil {
					return err
				}
				mu.Lock()
				slots[slot] = true
				mu.Unlock()
			}
			if len(keys) > 0 {
				mu.Lock()
				nodes[node.Options().Addr] = true
				mu.Unlock()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 3 || len(slots) < publicShards {
			t.Fatalf("list pages on %d nodes in %d slots, want all 3 nodes and at least %d slots", len(nodes), len(slots), publicShards)
		}
		b := blog(bson.NewObjectID())
		b.Author = author
		b.Submitted = true
		c.Changed(ctx, b)
		for _, e := range entries {
			if got := fetch(t, c, e, value("new")); got != `"new"` {
				t.Fatalf("%s served %s after the write", e.Key("…"), got)
			}
		}
		noErrors(t)
	})
}
