package tests

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/internal/testkit"
	"blogplatform/devkit/wait"
)

// newReplicas starts two blog replicas on one database and one Redis
// database (each with its own first-level cache and NATS connection) and
// waits until each counts the other as a peer, as a deployment of two
// replicas behind a load balancer runs.
func newReplicas(t *testing.T, settings testkit.Settings) (a, b *testkit.App) {
	t.Helper()
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	a = testkit.NewApp(t, env, redisDBs, settings)
	shared := testkit.Settings{"DB_NAME": a.DBName, "REDIS_DB": strconv.Itoa(a.RedisDB)}
	for k, v := range settings {
		shared[k] = v
	}
	b = testkit.NewApp(t, env, redisDBs, shared)
	wait.Eventually(t, 10*time.Second, "replicas count each other as peers", func() bool {
		return a.Cache.Peers() >= 1 && b.Cache.Peers() >= 1
	})
	return a, b
}

// blogsQueries is the number of store queries app has sent on blogs.
func blogsQueries(app *testkit.App) int {
	return app.Commands.Queries(app.Store.Collection().Name())
}

// TestWriteOnOneReplicaSeenOnTheOtherAtOnce: a write through replica A,
// then the very next read through replica B, which held the old state in
// its first-level cache, returns the new state: by id, by slug, in the
// public lists and in the author's lists. No waiting in between.
func TestWriteOnOneReplicaSeenOnTheOtherAtOnce(t *testing.T) {
	a, b := newReplicas(t, nil)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	x := a.Create(t, author, testkit.NewBlogBody("replicas"))
	a.Publish(t, author, x.ID)
	lists := []string{"/list/latest?page=1&limit=10", "/list/tag/SCIENCE?page=1&limit=10"}

	// readAll reads everything twice on B; while the blog is published the
	// second round must not reach the store (served by B's caches; a 404
	// and an empty tag page are not cached).
	readAll := func(wantTitle string) {
		t.Helper()
		for round := range 2 {
			before := blogsQueries(b)
			var got testkit.Blog
			if wantTitle == "" {
				b.Do(t, http.MethodGet, "/id/"+x.ID, "", nil).Want(t, 404, "blog not found")
				b.Do(t, http.MethodGet, "/slug/"+x.Slug, "", nil).Want(t, 404, "blog not found")
			} else {
				b.Do(t, http.MethodGet, "/id/"+x.ID, "", nil).Want(t, 200, "success").Decode(t, &got)
				if got.Title != wantTitle {
					t.Fatalf("round %d: B served title %q by id, want %q", round, got.Title, wantTitle)
				}
				b.Do(t, http.MethodGet, "/slug/"+x.Slug, "", nil).Want(t, 200, "success").Decode(t, &got)
				if got.Title != wantTitle {
					t.Fatalf("round %d: B served title %q by slug, want %q", round, got.Title, wantTitle)
				}
			}
			for _, l := range lists {
				ids := testkit.IDs(t, b.Do(t, http.MethodGet, l, "", nil).Want(t, 200, "success"))
				if slices.Contains(ids, x.ID) != (wantTitle != "") {
					t.Fatalf("round %d: B's %s = %v (published: %v)", round, l, ids, wantTitle != "")
				}
			}
			if round == 1 && wantTitle != "" && blogsQueries(b) != before {
				t.Fatalf("B's repeated reads sent %d store queries", blogsQueries(b)-before)
			}
		}
	}
	readAll(x.Title)
	for i := range 3 {
		a.Do(t, http.MethodPut, "/editor/unpublish/id/"+x.ID, editor, nil).Want(t, 200, "blog unpublished successfully")
		readAll("")
		title := "Retitled on replica A " + strconv.Itoa(i)
		a.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": x.ID, "title": title}).Want(t, 200, "blog updated successfully")
		a.Publish(t, author, x.ID)
		readAll(title)
	}

	// The author's own lists too.
	drafts := "/author/drafts?page=1&limit=10"
	b.Do(t, http.MethodGet, drafts, author, nil).Want(t, 200, "success")
	y := a.Create(t, author, testkit.NewBlogBody("replicas-draft"))
	if ids := testkit.IDs(t, b.Do(t, http.MethodGet, drafts, author, nil).Want(t, 200, "success")); !slices.Contains(ids, y.ID) {
		t.Fatalf("B's drafts %v lack the draft just created on A", ids)
	}
}

// TestColdBurstOneStoreQueryPerReplica: 64 concurrent requests for one
// blog, or for one list page, that nothing has cached yet cost each
// replica at most one store query (single flight per key and replica),
// counted through the driver's command monitor.
func TestColdBurstOneStoreQueryPerReplica(t *testing.T) {
	a, b := newReplicas(t, nil)
	x := a.Create(t, testkit.AuthorToken, testkit.NewBlogBody("cold-burst"))
	a.Publish(t, testkit.AuthorToken, x.ID)
	for _, path := range []string{"/id/" + x.ID, "/slug/" + x.Slug, "/list/latest?page=1&limit=7", "/list/tag/GARDEN?page=1&limit=9"} {
		t.Run(path, func(t *testing.T) {
			replicas := []*testkit.App{a, b}
			before := []int{blogsQueries(a), blogsQueries(b)}
			start := make(chan struct{})
			var wg sync.WaitGroup
			codes := make(chan int, 2*64)
			for _, app := range replicas {
				for range 64 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						rec := httptest.NewRecorder()
						app.Engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
						codes <- rec.Code
					}()
				}
			}
			close(start)
			wg.Wait()
			close(codes)
			for code := range codes {
				if code != 200 {
					t.Fatalf("GET %s answered %d", path, code)
				}
			}
			total := 0
			for i, app := range replicas {
				n := blogsQueries(app) - before[i]
				total += n
				if n > 1 {
					t.Errorf("replica %d: 64 cold requests sent %d store queries, want at most 1", i, n)
				}
			}
			if total == 0 {
				t.Error("no store query at all: the page was not cold")
			}
		})
	}
}

// TestFirstPageWarmAfterPublish: after a publish, the first page of
// /list/latest that readers use is refreshed in the background by the
// replica that wrote, so the next read, on either replica, is served
// without a store query and shows the new blog.
func TestFirstPageWarmAfterPublish(t *testing.T) {
	a, b := newReplicas(t, nil)
	const latest = "/list/latest?page=1&limit=10"
	a.Do(t, http.MethodGet, latest, "", nil).Want(t, 200, "success") // readers use this page
	for i := range 3 {
		x := a.Create(t, testkit.AuthorToken, testkit.NewBlogBody("warm-"+strconv.Itoa(i)))
		a.Publish(t, testkit.AuthorToken, x.ID)
		settleRefreshes(t, a)
		for _, app := range []*testkit.App{a, b} {
			before := blogsQueries(app)
			ids := testkit.IDs(t, app.Do(t, http.MethodGet, latest, "", nil).Want(t, 200, "success"))
			if len(ids) == 0 || ids[0] != x.ID {
				t.Fatalf("publish %d: latest starts %v, want the new blog %s first", i, ids, x.ID)
			}
			if n := blogsQueries(app) - before; n != 0 {
				t.Errorf("publish %d: the first read after it sent %d store queries", i, n)
			}
		}
	}
}

// TestLocalCacheBounded: the first-level cache holds at most
// LOCAL_CACHE_SIZE entries however many blogs are read, and reads stay
// right.
func TestLocalCacheBounded(t *testing.T) {
	app := testkit.NewApp(t, env, redisDBs, testkit.Settings{"LOCAL_CACHE_SIZE": "3"})
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	var ids []string
	for i := range 6 {
		x := app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("bounded-l1-"+strconv.Itoa(i)))
		app.Publish(t, testkit.AuthorToken, x.ID)
		ids = append(ids, x.ID)
	}
	for range 2 {
		for _, id := range ids {
			var got testkit.Blog
			app.Do(t, http.MethodGet, "/id/"+id, "", nil).Want(t, 200, "success").Decode(t, &got)
			if got.ID != id {
				t.Fatalf("GET /id/%s served %s", id, got.ID)
			}
			if n := app.Cache.Local().Len(); n > 3 {
				t.Fatalf("local cache holds %d entries, bound 3", n)
			}
		}
	}
	if app.Cache.Local().Len() == 0 {
		t.Error("local cache never used")
	}
}

// settleRefreshes waits until app's background refreshes of first pages
// (started by its last write) have finished.
func settleRefreshes(t *testing.T, app *testkit.App) {
	t.Helper()
	wait.Eventually(t, 10*time.Second, "background refreshes finished", func() bool { return app.Cache.RefreshesRunning() == 0 })
}

// isFirstPage reports whether k is a cached first page of a list (what a
// write's background refresh stores): Prefix + kind + ":" + version + ":"
// ... + ":1:" + limit.
func isFirstPage(k string) bool {
	rest, ok := strings.CutPrefix(k, blogcache.Prefix)
	if !ok {
		return false
	}
	kind, _, _ := strings.Cut(rest, ":")
	parts := strings.Split(rest, ":")
	return slices.Contains([]string{"latest", "tag", "author", "editor"}, kind) && len(parts) >= 4 && parts[len(parts)-2] == "1"
}
