package tests

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/internal/testkit"
	"blogplatform/devkit/testinfra"
)

// TestCacheHit: the first read stores blog_<id>, the second is a hit.
func TestCacheHit(t *testing.T) {
	app, _ := newApp(t)
	b := app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("hit"))
	app.Publish(t, testkit.AuthorToken, b.ID)
	ctx := context.Background()
	// A hit in either tier: Redis, or this replica's first-level cache.
	redisHits := app.Runtime.Metrics.CacheLookups.WithLabelValues("blog", "hit")
	localHits := app.Runtime.Metrics.CacheLookups.WithLabelValues("l1_blog", "hit")
	hits := func() float64 { return testutil.ToFloat64(redisHits) + testutil.ToFloat64(localHits) }

	first := app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success")
	cached, err := app.Redis.Get(ctx, blogcache.BlogKey(b.ID)).Bytes()
	if err != nil {
		t.Fatalf("blog_<id> not cached: %v", err)
	}
	if !bytes.Equal(cached, first.Data) {
		t.Errorf("cached %s, served %s", cached, first.Data)
	}
	h := hits()
	second := app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success")
	if hits() != h+1 {
		t.Error("second read was not a cache hit")
	}
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Errorf("hit differs from miss:\n%s\n%s", first.Raw, second.Raw)
	}

	app.Do(t, http.MethodGet, "/slug/"+b.Slug, "", nil).Want(t, 200, "success")
	app.Do(t, http.MethodGet, "/list/similar/id/"+b.ID, "", nil).Want(t, 200, "success")
	app.Do(t, http.MethodGet, "/list/latest?page=1&limit=10", "", nil).Want(t, 200, "success")
	app.Do(t, http.MethodGet, "/list/tag/SCIENCE?page=1&limit=10", "", nil).Want(t, 200, "success")
	app.Do(t, http.MethodGet, "/author/drafts?page=1&limit=10", testkit.AuthorToken, nil).Want(t, 200, "success")
	app.Do(t, http.MethodGet, "/editor/published?page=1&limit=10", testkit.EditorToken, nil).Want(t, 200, "success")
	if n, err := app.Redis.Exists(ctx, blogcache.SlugKey(b.Slug)).Result(); err != nil || n != 1 {
		t.Errorf("%s not cached (%d, %v)", blogcache.SlugKey(b.Slug), n, err)
	}
	// List keys embed their family's version: one key of each kind.
	for _, pattern := range []string{
		"blogcache:similar:*:" + b.ID, "blogcache:latest:*:1:10", "blogcache:tag:*:" + hex.EncodeToString([]byte("SCIENCE")) + ":1:10",
		"blogcache:author:*:" + testkit.Author.ID + ":drafts:1:10", "blogcache:editor:*:published:1:10",
	} {
		if keys := redisKeys(t, app, pattern); len(keys) != 1 {
			t.Errorf("%s: cached keys %v, want one", pattern, keys)
		}
	}
}

// redisKeys lists the keys of the app's Redis database matching pattern.
func redisKeys(t *testing.T, app *testkit.App, pattern string) []string {
	t.Helper()
	var keys []string
	iter := app.Redis.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan %s: %v", pattern, err)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// coherence compares every endpoint of app with a second app that reads
// the same database without any cache (its Redis address refuses
// connections, so it always answers from the store): whatever app serves
// from its cache must be what the store says now.
type coherence struct {
	app, truth *testkit.App
	paths      []probe
}

type probe struct{ path, token string }

func newCoherence(t *testing.T, e *testinfra.Env, dbs *testkit.RedisDBs, app *testkit.App) *coherence {
	truth := testkit.NewApp(t, e, dbs, testkit.Settings{
		"DB_NAME": app.DBName, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": strconv.Itoa(closedPort(t)),
		// After the first refused call it stops trying Redis at all.
		"CACHE_RETRY_INTERVAL": "1m",
	})
	return &coherence{app: app, truth: truth}
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func (c *coherence) watch(blogs ...testkit.Blog) {
	page := "?page=1&limit=100"
	c.paths = []probe{
		{"/list/latest" + page, ""}, {"/list/tag/SCIENCE" + page, ""}, {"/list/tag/EDITED" + page, ""},
		{"/author/drafts" + page, testkit.AuthorToken}, {"/author/submitted" + page, testkit.AuthorToken},
		{"/author/published" + page, testkit.AuthorToken},
		{"/editor/submitted" + page, testkit.EditorToken}, {"/editor/published" + page, testkit.EditorToken},
	}
	for _, b := range blogs {
		c.paths = append(c.paths, probe{"/id/" + b.ID, ""}, probe{"/slug/" + b.Slug, ""},
			probe{"/list/similar/id/" + b.ID, ""})
	}
}

// check reads everything twice through app (filling its cache) and
// compares with the truth.
func (c *coherence) check(t *testing.T, stage string) {
	t.Helper()
	for _, p := range c.paths {
		want := c.truth.Do(t, http.MethodGet, p.path, p.token, nil)
		for i := 0; i < 2; i++ {
			got := c.app.Do(t, http.MethodGet, p.path, p.token, nil)
			if got.Status != want.Status || !bytes.Equal(got.Data, want.Data) {
				t.Errorf("after %s: GET %s served %d %s\nthe store says %d %s", stage, p.path, got.Status, got.Data, want.Status, want.Data)
			}
		}
	}
}

// TestCacheCoherence: after every kind of write, no endpoint serves the
// state from before it (the cache is filled before each write).
func TestCacheCoherence(t *testing.T) {
	app, _ := newApp(t)
	c := newCoherence(t, env, redisDBs, app)
	author, editor := testkit.AuthorToken, testkit.EditorToken

	a := app.Create(t, author, testkit.NewBlogBody("coh-a"))
	b := app.Create(t, author, testkit.NewBlogBody("coh-b"))
	renamed := "coh-b-renamed"
	c.watch(a, b, testkit.Blog{ID: b.ID, Slug: renamed})
	c.check(t, "creates")

	steps := []struct {
		name                string
		method, path, token string
		body                any
	}{
		{"publish a", http.MethodPut, "/editor/publish/id/" + a.ID, editor, nil}, // not submitted: 400, nothing changes
		{"submit a", http.MethodPut, "/author/submit/id/" + a.ID, author, nil},
		{"publish a", http.MethodPut, "/editor/publish/id/" + a.ID, editor, nil},
		{"submit b", http.MethodPut, "/author/submit/id/" + b.ID, author, nil},
		{"withdraw b", http.MethodPut, "/author/withdraw/id/" + b.ID, author, nil},
		{"submit b again", http.MethodPut, "/author/submit/id/" + b.ID, author, nil},
		{"publish b", http.MethodPut, "/editor/publish/id/" + b.ID, editor, nil},
		{"update published b: title, tags, slug", http.MethodPut, "/author", author,
			map[string]any{"_id": b.ID, "title": "Quantum Gardening Tools", "tags": []string{"EDITED"}, "slug": renamed}},
		{"update published a: description", http.MethodPut, "/author", author,
			map[string]any{"_id": a.ID, "description": "Quantum tools for every garden"}},
		{"unpublish a", http.MethodPut, "/editor/unpublish/id/" + a.ID, editor, nil},
		{"update draft a", http.MethodPut, "/author", author, map[string]any{"_id": a.ID, "draftText": "new draft"}},
		{"create c", http.MethodPost, "/author", author, testkit.NewBlogBody("coh-c")},
		{"delete published b", http.MethodDelete, "/author/id/" + b.ID, author, nil},
		{"delete draft a", http.MethodDelete, "/author/id/" + a.ID, author, nil},
	}
	for _, s := range steps {
		app.Do(t, s.method, s.path, s.token, s.body)
		c.check(t, s.name)
	}
}

// TestRedisOutage: with Redis stopped mid-test every endpoint still answers
// correctly (from the store), writes succeed, and once Redis is back
// nothing stale is served.
func TestRedisOutage(t *testing.T) {
	penv := testinfra.NewEnv(t)
	dbs := testkit.NewRedisDBs()
	testkit.StartFakeAuth(t, penv.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(t, penv, dbs, nil)
	c := newCoherence(t, penv, dbs, app)
	author, editor := testkit.AuthorToken, testkit.EditorToken

	a := app.Create(t, author, testkit.NewBlogBody("out-a"))
	app.Publish(t, author, a.ID)
	b := app.Create(t, author, testkit.NewBlogBody("out-b"))
	c.watch(a, b)
	c.check(t, "setup") // fills the cache

	if err := penv.Redis.Stop(); err != nil {
		t.Fatal(err)
	}
	c.check(t, "Redis stopped")
	app.Do(t, http.MethodPut, "/editor/unpublish/id/"+a.ID, editor, nil).Want(t, 200, "blog unpublished successfully")
	app.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": b.ID, "title": "Renamed while Redis was down"}).
		Want(t, 200, "blog updated successfully")
	app.Publish(t, author, b.ID)
	c.check(t, "writes while Redis was down")

	if err := penv.Redis.Start(); err != nil {
		t.Fatal(err)
	}
	c.check(t, "Redis back")
	app.Do(t, http.MethodPut, "/editor/unpublish/id/"+b.ID, editor, nil).Want(t, 200, "blog unpublished successfully")
	c.check(t, "write after Redis came back")
}

// TestCacheCoherenceWithSlowRedis: Redis is made to stall for a few
// milliseconds at a time while the app's Redis timeout is 1ms, so many cache
// calls time out on the client and some of them still run on the server
// later. No endpoint may serve a state older than the last write anyway.
func TestCacheCoherenceWithSlowRedis(t *testing.T) {
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(t, env, redisDBs, testkit.Settings{"REDIS_TIMEOUT": "1ms", "CACHE_RETRY_INTERVAL": "10ms"})
	c := newCoherence(t, env, redisDBs, app)
	stall := stallRedis(t, app)
	defer stall()

	author, editor := testkit.AuthorToken, testkit.EditorToken
	a := app.Create(t, author, testkit.NewBlogBody("slow-a"))
	b := app.Create(t, author, testkit.NewBlogBody("slow-b"))
	c.watch(a, b)
	c.check(t, "creates")
	for round := 0; round < 2; round++ {
		for _, s := range []struct {
			method, path, token string
			body                any
		}{
			{http.MethodPut, "/author/submit/id/" + a.ID, author, nil},
			{http.MethodPut, "/editor/publish/id/" + a.ID, editor, nil},
			{http.MethodPut, "/author", author, map[string]any{"_id": a.ID, "title": "Quantum title " + strconv.Itoa(round)}},
			{http.MethodPut, "/editor/unpublish/id/" + a.ID, editor, nil},
			{http.MethodPut, "/author/submit/id/" + b.ID, author, nil},
			{http.MethodPut, "/author/withdraw/id/" + b.ID, author, nil},
		} {
			app.Do(t, s.method, s.path, s.token, s.body)
			c.check(t, s.method+" "+s.path)
		}
	}
	errors := testutil.ToFloat64(app.Runtime.Metrics.CacheLookups.WithLabelValues("blog", "error"))
	t.Logf("cache calls that failed: %v", errors)
}

// stallRedis keeps Redis busy with a short Lua loop every few milliseconds
// until the returned stop is called.
func stallRedis(t *testing.T, app *testkit.App) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			app.Redis.Eval(context.Background(), "local i = 0 while i < 200000 do i = i + 1 end return 1", nil)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	return func() { close(done); <-finished }
}
