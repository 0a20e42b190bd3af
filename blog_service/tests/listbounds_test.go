package tests

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/internal/testkit"
)

// TestListCacheStaysBounded: however many distinct tag, page and limit
// combinations are asked for, the cache holds only pages up to
// MaxCachedPage with at most MaxCachedLimit items of tags that exist, and no
// structure that records cached keys; an unpublish still removes the blog
// from every cached page.
func TestListCacheStaysBounded(t *testing.T) {
	app, _ := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	b := app.Create(t, author, testkit.NewBlogBody("bounded"))
	app.Publish(t, author, b.ID)

	type request struct {
		path       string
		cached     bool
		listsBlog  bool // page 1: the blog is on it
		wantStatus int
	}
	var requests []request
	for i := 0; i < 60; i++ { // tags nobody uses: empty, never cached
		for _, p := range []string{"?page=1&limit=10", "?page=7&limit=10"} {
			requests = append(requests, request{path: fmt.Sprintf("/list/tag/RANDOM-%d%s", i, p), wantStatus: 200})
		}
	}
	for _, list := range []string{"/list/latest", "/list/tag/SCIENCE"} {
		for pg := 1; pg <= blogcache.MaxCachedPage+2; pg++ {
			for _, limit := range []int{1, 10, blogcache.MaxCachedLimit, blogcache.MaxCachedLimit + 1, 1000} {
				requests = append(requests, request{
					path: fmt.Sprintf("%s?page=%d&limit=%d", list, pg, limit),
					// The one blog fills page 1 only; an empty tag page is
					// not cached.
					cached:     pg <= blogcache.MaxCachedPage && limit <= blogcache.MaxCachedLimit && (list == "/list/latest" || pg == 1),
					listsBlog:  pg == 1,
					wantStatus: 200,
				})
			}
		}
	}
	// Tags the service refuses never reach the cache either.
	for _, tag := range []string{strings.Repeat("A", 101), "A:B", "A%00B", "%E2%80%8B"} {
		requests = append(requests, request{path: "/list/tag/" + tag + "?page=1&limit=10", wantStatus: 400})
	}
	wantCached := 0
	for _, r := range requests {
		got := app.Do(t, http.MethodGet, r.path, "", nil)
		if got.Status != r.wantStatus {
			t.Fatalf("GET %s: %d %s", r.path, got.Status, got.Message)
		}
		if r.cached {
			wantCached++
		}
	}

	ctx := context.Background()
	var lists []string
	for _, k := range redisKeys(t, app, "*") {
		typ := app.Redis.Type(ctx, k).Val()
		if typ != "string" {
			t.Errorf("%s is a %s: nothing may record cached keys", k, typ)
		}
		if strings.HasPrefix(k, blogcache.Prefix+"latest:") || strings.HasPrefix(k, blogcache.Prefix+"tag:") {
			lists = append(lists, k)
		}
	}
	if len(lists) != wantCached {
		t.Errorf("%d list pages cached, want %d (%d requests): %v", len(lists), wantCached, len(requests), lists)
	}

	app.Do(t, http.MethodPut, "/editor/unpublish/id/"+b.ID, editor, nil).Want(t, 200, "blog unpublished successfully")
	for _, r := range requests {
		if !r.listsBlog {
			continue
		}
		if ids := testkit.IDs(t, app.Do(t, http.MethodGet, r.path, "", nil).Want(t, 200, "success")); slices.Contains(ids, b.ID) {
			t.Errorf("GET %s still lists the unpublished blog", r.path)
		}
	}
}
