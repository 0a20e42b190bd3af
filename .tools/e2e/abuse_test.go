package e2e

import (
	"fmt"
	"net/http"
	"testing"
)

// Attacks an outside client can try through the gateway with the public key
// and an author account.

// TestSlugsCannotReachCacheControlKeys: slugs that spell the blog cache's
// control keys (or another blog's id) read and write only that blog, and an
// unpublish still removes a blog from the public lists afterwards.
func TestSlugsCannotReachCacheControlKeys(t *testing.T) {
	dumpLogsOnFailure(t)
	c := newClient(t)
	admin := signInAdmin(t, c)
	// Reading control keys by slug finds no blog.
	for _, slug := range []string{"cache_gen", "cache_track_public_lists", "cache_track_similar", "blogcache:gen"} {
		r := c.do(http.MethodGet, "/blog/slug/"+slug, nil)
		if r.status == http.StatusOK {
			t.Errorf("%v: a control key answered as a blog", r)
		}
	}
	// Drafts whose slugs spell control keys and another blog's id.
	victimID, _ := publishedBlog(t, c, admin)
	for _, slug := range []string{"cache_track_public_lists", "cache_track_similar", "cache_gen", victimID} {
		r := c.do(http.MethodPost, "/blog/author/", map[string]any{
			"title": "Collide " + random(6), "description": "slug collision", "draftText": "body",
			"slug": slug, "imgUrl": "https://x.io/c.png", "tags": []string{"COLLIDE"},
		}, bearer(admin))
		if r.status != http.StatusOK && r.status != http.StatusBadRequest {
			t.Errorf("%v: creating a draft with slug %q", r, slug)
		}
	}
	// The invalidation machinery still works: an unpublished blog leaves the
	// cached public lists at once.
	if in, _ := listContains(t, c, "/blog/list/latest?page=1&limit=100", victimID); !in {
		t.Fatalf("published blog %s not in /list/latest", victimID)
	}
	mustOK(t, c.do(http.MethodPut, "/blog/editor/unpublish/id/"+victimID, nil, bearer(admin)), "blog unpublished successfully")
	if in, _ := listContains(t, c, "/blog/list/latest?page=1&limit=100", victimID); in {
		t.Errorf("unpublished blog %s still in the cached /list/latest", victimID)
	}
	expectStatus(t, c.do(http.MethodGet, "/blog/id/"+victimID, nil), http.StatusNotFound)
}

// TestEncodedSignInPathsShareTheLimit: spellings of the sign-in path that
// the gateway normalises (percent-encoding, doubled slashes, dot segments)
// use the same per-address budget as the plain path.
func TestEncodedSignInPathsShareTheLimit(t *testing.T) {
	dumpLogsOnFailure(t)
	attacker := clientFrom(t, "127.0.0.5")
	spellings := []string{"/auth/%73ignin/basic", "/auth//signin/basic", "/auth/./signin/basic", "/%61uth/signin/basic"}
	const (
		budget  = 120
		attempt = 2 * budget
	)
	res := signInFlood(t, attempt, func(i int) (reply, error) {
		body := map[string]any{"email": fmt.Sprintf("enc-%d-%s@example.com", i, random(6)), "password": "wrong-password"}
		return attacker.try(http.MethodPost, spellings[i%len(spellings)], body)
	})
	answered, refused := res.answered, res.refused
	t.Logf("%d sign-ins spelled 4 ways: %d reached sign-in, %d refused with 429", attempt, answered, refused)
	if refused == 0 || answered > budget {
		t.Fatalf("%d of %d encoded sign-ins reached sign-in; the budget is %d per minute", answered, attempt, budget)
	}
}

// TestPublishRefusesAnUnreviewedEdit: an editor who names the state they
// reviewed cannot publish a text changed since.
func TestPublishRefusesAnUnreviewedEdit(t *testing.T) {
	dumpLogsOnFailure(t)
	c := newClient(t)
	admin := signInAdmin(t, c)
	rnd := random(10)
	data := mustOK(t, c.do(http.MethodPost, "/blog/author/", map[string]any{
		"title": "Reviewed " + rnd, "description": "editorial integrity", "draftText": "the text the editor reads",
		"slug": "reviewed-" + rnd, "imgUrl": "https://x.io/r.png", "tags": []string{"REVIEW"},
	}, bearer(admin)), "blog created successfully")
	id := str(data, "_id")
	mustOK(t, c.do(http.MethodPut, "/blog/author/submit/id/"+id, nil, bearer(admin)), "blog submitted successfully")
	reviewed := str(mustOK(t, c.do(http.MethodGet, "/blog/editor/id/"+id, nil, bearer(admin)), "success"), "updatedAt")
	if reviewed == "" {
		t.Fatal("no updatedAt on the editor's view")
	}
	// The author changes the text after the review and submits again.
	mustOK(t, c.do(http.MethodPut, "/blog/author/", map[string]any{"_id": id, "draftText": "a text nobody reviewed"}, bearer(admin)),
		"blog updated successfully")
	mustOK(t, c.do(http.MethodPut, "/blog/author/submit/id/"+id, nil, bearer(admin)), "blog submitted successfully")
	r := c.do(http.MethodPut, "/blog/editor/publish/id/"+id, map[string]any{"updatedAt": reviewed}, bearer(admin))
	checkEnvelope(t, r)
	expectStatus(t, r, http.StatusConflict)
	expectStatus(t, c.do(http.MethodGet, "/blog/id/"+id, nil), http.StatusNotFound)
}
