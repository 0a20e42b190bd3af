package tests

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"blogplatform/blog_service/internal/testkit"
)

// TestBadInput: malformed or hostile bodies and queries are 400 envelopes
// and store nothing.
func TestBadInput(t *testing.T) {
	app, _ := newApp(t)
	existing := app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("bad"))
	valid := func(key string, value any) map[string]any { return withField(testkit.NewBlogBody("bad2"), key, value) }
	manyTags := make([]string, 1001)
	for i := range manyTags {
		manyTags[i] = fmt.Sprintf("T%d", i)
	}

	cases := []struct {
		name, method, path string
		body               any
		message            string
	}{
		{"empty body", "POST", "/author", "", "EOF"},
		{"malformed JSON", "POST", "/author", `{"title": "x",`, "malformed JSON: unexpected end of input"},
		{"not an object", "POST", "/author", `["title"]`, "request body must be a JSON object, not array"},
		{"trailing data", "POST", "/author", `{"title":"abc"} {}`, "malformed JSON: unexpected data after the JSON value"},
		{"wrong type", "POST", "/author", valid("title", 42), "title must be of type string"},
		{"operator injection", "POST", "/author", valid("title", map[string]any{"$ne": nil}), "title must be of type string"},
		{"operator injection in slug", "POST", "/author", valid("slug", map[string]any{"$gt": ""}), "slug must be of type string"},
		{"unknown field", "POST", "/author", valid("status", false), `unknown field "status"`},
		{"draft too long", "POST", "/author", valid("draftText", strings.Repeat("x", 50001)), "draftText must be at most 50000 size"},
		{"1001 tags", "POST", "/author", valid("tags", manyTags), "tags must be at most 1000 size"},
		{"tag too long", "POST", "/author", valid("tags", []string{strings.Repeat("T", 101)}), "tags[0] must be at most 100 size"},
		{"lower-case tag", "POST", "/author", valid("tags", []string{"Go"}), "tags[0] must be uppercase"},
		{"empty tag", "POST", "/author", valid("tags", []string{""}), "tags[0] must be uppercase"},
		{"tag of wrong type", "POST", "/author", valid("tags", []any{"GO", 7}), "tags must be of type string"},
		{"tag with a colon", "POST", "/author", valid("tags", []string{"GO", "A:B"}), "tags[1] must contain only letters, digits, spaces and - _ . + #"},
		{"tag with a zero-width space", "POST", "/author", valid("tags", []string{"A\u200bB"}), "tags[0] must contain only letters, digits, spaces and - _ . + #"},
		{"tag with a control character", "POST", "/author", valid("tags", []string{"A\x00B"}), "tags[0] must contain only letters, digits, spaces and - _ . + #"},
		{"update: tag with a slash", "PUT", "/author", map[string]any{"_id": existing.ID, "tags": []string{"A/B"}},
			"tags[0] must contain only letters, digits, spaces and - _ . + #"},
		{"list tag with a colon", "GET", "/list/tag/SCIENCE:1:10?page=1&limit=10", nil, "tag must contain only letters, digits, spaces and - _ . + #"},
		{"list tag too long", "GET", "/list/tag/" + strings.Repeat("T", 101) + "?page=1&limit=10", nil, "tag must be at most 100 characters"},
		{"imgUrl javascript", "POST", "/author", valid("imgUrl", "javascript:alert(1)"), "imgUrl must be an absolute http or https URL"},
		{"imgUrl not a URI", "POST", "/author", valid("imgUrl", "not a uri"), "imgUrl must be a valid URI"},
		{"update: operator injection", "PUT", "/author", `{"_id":"` + existing.ID + `","title":{"$ne":null}}`, "title must be of type string"},
		{"update: id injection", "PUT", "/author", `{"_id":{"$ne":null}}`, "_id must be of type string"},
		{"update: unknown field", "PUT", "/author", `{"_id":"` + existing.ID + `","published":true}`, `unknown field "published"`},
		{"update: draft too long", "PUT", "/author", `{"_id":"` + existing.ID + `","draftText":"` + strings.Repeat("x", 50001) + `"}`,
			"draftText must be at most 50000 size"},
		{"page 0", "GET", "/author/drafts?page=0&limit=10", nil, "page is required"},
		{"limit 1001", "GET", "/author/drafts?page=1&limit=1001", nil, "limit must be at most 1000"},
		{"page abc", "GET", "/author/drafts?page=abc&limit=10", nil, "page must be an integer"},
		{"page overflow", "GET", "/list/latest?page=99999999999999999999&limit=10", nil, "page must be an integer"},
	}
	count := app.CountBlogs(t)
	before := app.Do(t, http.MethodGet, "/author/id/"+existing.ID, testkit.AuthorToken, nil).Data
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app.Do(t, c.method, c.path, testkit.AuthorToken, c.body).Want(t, 400, c.message)
		})
	}
	if n := app.CountBlogs(t); n != count {
		t.Errorf("%d blogs stored, want %d", n, count)
	}
	after := app.Do(t, http.MethodGet, "/author/id/"+existing.ID, testkit.AuthorToken, nil).Data
	if string(before) != string(after) {
		t.Errorf("blog changed by rejected updates:\n%s\n%s", before, after)
	}
}

// TestBodyTooLarge: a body over the configured limit is a 413 envelope.
func TestBodyTooLarge(t *testing.T) {
	app, _ := newApp(t)
	body := `{"title":"` + strings.Repeat("x", 1<<20) + `"}`
	app.Do(t, http.MethodPost, "/author", testkit.AuthorToken, body).Want(t, 413, "request body too large")
}

// TestConcurrentCreatesOneSlug: many creates with one slug at once give one
// blog and the normal 400 for every other, never a 500.
func TestConcurrentCreatesOneSlug(t *testing.T) {
	app, _ := newApp(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]testkit.Response, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := withField(testkit.NewBlogBody(fmt.Sprint(i)), "slug", "race slug")
			results[i] = app.Do(t, http.MethodPost, "/author", testkit.AuthorToken, body)
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.Status == 200:
			ok++
		case r.Status == 400 && r.Message == "Blog with slug: raceslug already exists":
		default:
			t.Errorf("unexpected answer %d %q", r.Status, r.Message)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded, want 1", ok)
	}
	if n := app.CountBlogs(t); n != 1 {
		t.Errorf("%d blogs stored, want 1", n)
	}
}
