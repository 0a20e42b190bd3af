package tests

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"blogplatform/blog_service/internal/testkit"
)

const unknownID = "000000000000000000000001"

// routeFixture is a set of blogs in known states.
type routeFixture struct {
	draft, submitted, published, other testkit.Blog
}

func newRouteFixture(t *testing.T, app *testkit.App) routeFixture {
	t.Helper()
	f := routeFixture{
		draft:     app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("draft")),
		submitted: app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("submitted")),
		published: app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("published")),
		other:     app.Create(t, testkit.OtherAuthorToken, testkit.NewBlogBody("other")),
	}
	app.Do(t, http.MethodPut, "/author/submit/id/"+f.submitted.ID, testkit.AuthorToken, nil).Want(t, 200, "blog submitted successfully")
	app.Publish(t, testkit.AuthorToken, f.published.ID)
	return f
}

type routeCase struct {
	name    string
	method  string
	path    string
	token   string
	body    any
	status  int
	message string
}

// TestRoutes covers every route's success and error answers: status, code
// and exact message. Cases that change state run last and use their own
// blogs.
func TestRoutes(t *testing.T) {
	app, _ := newApp(t)
	f := newRouteFixture(t, app)
	long := strings.Repeat("s", 201)
	author, editor, learner := testkit.AuthorToken, testkit.EditorToken, testkit.LearnerToken
	page := "?page=1&limit=10"

	cases := []routeCase{
		// Public reads.
		{"blog by id", "GET", "/id/" + f.published.ID, "", nil, 200, "success"},
		{"blog by id: draft", "GET", "/id/" + f.draft.ID, "", nil, 404, "blog not found"},
		{"blog by id: unknown", "GET", "/id/" + unknownID, "", nil, 404, "blog not found"},
		{"blog by id: short", "GET", "/id/abc", "", nil, 400, "id must be of length 24"},
		{"blog by id: not hex", "GET", "/id/zzzzzzzzzzzzzzzzzzzzzzzz", "", nil, 400, "id must be a valid id"},
		{"blog by slug", "GET", "/slug/" + f.published.Slug, "", nil, 200, "success"},
		{"blog by slug: trailing slash", "GET", "/slug/" + f.published.Slug + "/", "", nil, 200, "success"},
		{"blog by slug: draft", "GET", "/slug/" + f.draft.Slug, "", nil, 404, "blog not found"},
		{"blog by slug: short", "GET", "/slug/ab", "", nil, 400, "slug must be at least 3 characters"},
		{"blog by slug: long", "GET", "/slug/" + long, "", nil, 400, "slug must be at most 200 characters"},
		{"blog by slug: unknown", "GET", "/slug/no-such-slug", "", nil, 404, "blog not found"},
		{"latest", "GET", "/list/latest" + page, "", nil, 200, "success"},
		{"latest: no query", "GET", "/list/latest", "", nil, 400, "page is required, limit is required"},
		{"latest: reference names", "GET", "/list/latest?pageNumber=1&pageItemCount=10", "", nil, 400, "page is required, limit is required"},
		{"latest: page 0", "GET", "/list/latest?page=0&limit=10", "", nil, 400, "page is required"},
		{"latest: page 0 and limit too big", "GET", "/list/latest?page=0&limit=5000", "", nil, 400, "page is required"},
		{"latest: negative page", "GET", "/list/latest?page=-1&limit=10", "", nil, 400, "page must be min 1"},
		{"latest: page too big", "GET", "/list/latest?page=1001&limit=10", "", nil, 400, "page must be at most 1000"},
		{"latest: limit too big", "GET", "/list/latest?page=1&limit=1001", "", nil, 400, "limit must be at most 1000"},
		{"latest: page not a number", "GET", "/list/latest?page=abc&limit=1", "", nil, 400, "page must be an integer"},
		{"tag", "GET", "/list/tag/SCIENCE" + page, "", nil, 200, "success"},
		{"tag: lower case", "GET", "/list/tag/science" + page, "", nil, 400, "tag must be uppercase"},
		{"tag: checked before paging", "GET", "/list/tag/science", "", nil, 400, "tag must be uppercase"},
		{"tag: no query", "GET", "/list/tag/SCIENCE", "", nil, 400, "page is required, limit is required"},
		{"similar", "GET", "/list/similar/id/" + f.published.ID, "", nil, 200, "success"},
		{"similar: draft", "GET", "/list/similar/id/" + f.draft.ID, "", nil, 404, "blog not found"},
		{"similar: unknown", "GET", "/list/similar/id/" + unknownID, "", nil, 404, "blog not found"},
		{"similar: short id", "GET", "/list/similar/id/abc", "", nil, 400, "id must be of length 24"},

		// Routing.
		{"unknown path", "GET", "/does/not/exist", "", nil, 404, "url not found"},
		{"wrong method", "GET", "/author", author, nil, 405, "method not allowed"},
		{"wrong method on a public path", "POST", "/id/" + f.published.ID, "", nil, 405, "method not allowed"},

		// Author: authentication and authorization come first.
		{"author: no Authorization", "POST", "/author", "", `{}`, 401, "permission denied: missing Authorization"},
		{"author: bad token", "POST", "/author", testkit.GarbageToken, `{}`, 401, "permission denied: invalid access token"},
		{"author: learner", "POST", "/author/", learner, `{}`, 403, "permission denied: does not have sufficient role"},
		{"author: editor only", "GET", "/author/drafts" + page, editor, nil, 403, "permission denied: does not have sufficient role"},
		{"author: no auth, invalid query", "GET", "/author/drafts", "", nil, 401, "permission denied: missing Authorization"},

		// Author: create validation.
		{"create: empty", "POST", "/author", author, `{}`, 400,
			"title is required, description is required, draftText is required, slug is required, imgUrl is required, tags is required"},
		{"create: invalid", "POST", "/author/", author,
			`{"title":"ab","description":"ab","draftText":"","slug":"ab","imgUrl":"not a uri","tags":[]}`, 400,
			"title must be at least 3 size, description must be at least 3 size, draftText is required, slug must be at least 3 size, imgUrl must be a valid URI, tags must be at least 1 size"},
		{"create: lower-case tag", "POST", "/author", author, withField(testkit.NewBlogBody("lc"), "tags", []string{"GO", "go"}), 400, "tags[1] must be uppercase"},
		{"create: taken slug", "POST", "/author", author, withField(testkit.NewBlogBody("dup"), "slug", f.draft.Slug), 400,
			"Blog with slug: " + f.draft.Slug + " already exists"},
		{"create: slug of a deleted-or-other author's blog", "POST", "/author", author, withField(testkit.NewBlogBody("dup2"), "slug", f.other.Slug), 400,
			"Blog with slug: " + f.other.Slug + " already exists"},
		{"create: slug too short once formatted", "POST", "/author", author, withField(testkit.NewBlogBody("short"), "slug", "a b ?"), 400,
			"slug must be at least 3 size"},

		// Author: update.
		{"update: empty", "PUT", "/author", author, `{}`, 400, "_id is required"},
		{"update: unknown", "PUT", "/author/", author, `{"_id":"` + unknownID + `"}`, 404, "Blog with id: " + unknownID + " does not exist"},
		{"update: short id", "PUT", "/author", author, `{"_id":"xyz"}`, 400, "_id must be an ObjectID of length 24"},
		{"update: id not hex", "PUT", "/author", author, `{"_id":"zzzzzzzzzzzzzzzzzzzzzzzz"}`, 400, "_id must be a valid ObjectID"},
		{"update: another author's blog", "PUT", "/author", author, `{"_id":"` + f.other.ID + `","title":"Mine now"}`, 404,
			"Blog with id: " + f.other.ID + " does not exist"},
		{"update: empty title", "PUT", "/author", author, `{"_id":"` + f.draft.ID + `","title":""}`, 400, "title must be at least 3 size"},
		{"update: empty tags", "PUT", "/author", author, `{"_id":"` + f.draft.ID + `","tags":[]}`, 400, "tags must be at least 1 size"},
		{"update: bad imgUrl", "PUT", "/author", author, `{"_id":"` + f.draft.ID + `","imgUrl":"not a uri"}`, 400, "imgUrl must be a valid URI"},
		{"update: taken slug", "PUT", "/author", author, `{"_id":"` + f.draft.ID + `","slug":"` + f.published.Slug + `"}`, 400,
			"Blog with slug: " + f.published.Slug + " already exists"},
		{"update: slug too short once formatted", "PUT", "/author", author, `{"_id":"` + f.draft.ID + `","slug":"x y"}`, 400,
			"slug must be at least 3 size"},
		{"update: own slug again", "PUT", "/author", author, `{"_id":"` + f.draft.ID + `","slug":"` + f.draft.Slug + `"}`, 200, "blog updated successfully"},

		// Author: reads and lists.
		{"author get", "GET", "/author/id/" + f.draft.ID, author, nil, 200, "success"},
		{"author get: unknown", "GET", "/author/id/" + unknownID, author, nil, 404, unknownID + " not found"},
		{"author get: another author's", "GET", "/author/id/" + f.other.ID, author, nil, 404, f.other.ID + " not found"},
		{"author get: short id", "GET", "/author/id/abc", author, nil, 400, "id must be of length 24"},
		{"author drafts", "GET", "/author/drafts" + page, author, nil, 200, "success"},
		{"author submitted", "GET", "/author/submitted" + page, author, nil, 200, "success"},
		{"author published", "GET", "/author/published" + page, author, nil, 200, "success"},
		{"author drafts: no query", "GET", "/author/drafts", author, nil, 400, "page is required, limit is required"},
		{"author submit: unknown", "PUT", "/author/submit/id/" + unknownID, author, nil, 404, "blog not found"},
		{"author submit: another author's", "PUT", "/author/submit/id/" + f.other.ID, author, nil, 404, "blog not found"},
		{"author withdraw: unknown", "PUT", "/author/withdraw/id/" + unknownID, author, nil, 404, "blog not found"},
		{"author delete: unknown", "DELETE", "/author/id/" + unknownID, author, nil, 404, "blog not found"},
		{"author delete: another author's", "DELETE", "/author/id/" + f.other.ID, author, nil, 404, "blog not found"},

		// Editor.
		{"editor: author only", "GET", "/editor/submitted" + page, author, nil, 403, "permission denied: does not have sufficient role"},
		{"editor: no Authorization", "PUT", "/editor/publish/id/" + f.submitted.ID, "", nil, 401, "permission denied: missing Authorization"},
		{"editor get", "GET", "/editor/id/" + f.other.ID, editor, nil, 200, "success"},
		{"editor get: unknown", "GET", "/editor/id/" + unknownID, editor, nil, 404, unknownID + " not found"},
		{"editor get: not hex", "GET", "/editor/id/zzzzzzzzzzzzzzzzzzzzzzzz", editor, nil, 400, "id must be a valid id"},
		{"editor submitted", "GET", "/editor/submitted" + page, editor, nil, 200, "success"},
		{"editor published", "GET", "/editor/published" + page, editor, nil, 200, "success"},
		{"editor published: limit too big", "GET", "/editor/published?page=1&limit=1001", editor, nil, 400, "limit must be at most 1000"},
		{"publish: not submitted", "PUT", "/editor/publish/id/" + f.draft.ID, editor, nil, 400, "blog for _id " + f.draft.ID + " is not submitted"},
		{"publish: already published", "PUT", "/editor/publish/id/" + f.published.ID, editor, nil, 400, "blog for _id " + f.published.ID + " is already published"},
		{"publish: unknown", "PUT", "/editor/publish/id/" + unknownID, editor, nil, 404, "blog for _id " + unknownID + " not found"},
		{"unpublish: not published", "PUT", "/editor/unpublish/id/" + f.draft.ID, editor, nil, 400, "blog for _id " + f.draft.ID + " is not published"},
		{"unpublish: unknown", "PUT", "/editor/unpublish/id/" + unknownID, editor, nil, 404, "blog for _id " + unknownID + " not found"},

		// State changes (each on a blog no later case needs).
		{"create", "POST", "/author/", author, testkit.NewBlogBody("created"), 200, "blog created successfully"},
		{"create without trailing slash", "POST", "/author", author, testkit.NewBlogBody("created2"), 200, "blog created successfully"},
		{"update", "PUT", "/author/", author, `{"_id":"` + f.draft.ID + `","title":"Quantum Gardening Advanced"}`, 200, "blog updated successfully"},
		{"submit", "PUT", "/author/submit/id/" + f.draft.ID, author, nil, 200, "blog submitted successfully"},
		{"withdraw", "PUT", "/author/withdraw/id/" + f.draft.ID, author, nil, 200, "blog withdrawn successfully"},
		{"publish", "PUT", "/editor/publish/id/" + f.submitted.ID, editor, nil, 200, "blog published successfully"},
		{"unpublish", "PUT", "/editor/unpublish/id/" + f.submitted.ID, editor, nil, 200, "blog unpublished successfully"},
		{"delete", "DELETE", "/author/id/" + f.draft.ID, author, nil, 200, "blog deleted successfully"},
		{"delete again", "DELETE", "/author/id/" + f.draft.ID, author, nil, 404, "blog not found"},
		{"deleted blog's slug stays reserved", "POST", "/author", author, withField(testkit.NewBlogBody("again"), "slug", f.draft.Slug), 400,
			"Blog with slug: " + f.draft.Slug + " already exists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := app.Do(t, c.method, c.path, c.token, c.body).Want(t, c.status, c.message)
			if c.status == 405 && r.Header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
			if r.Header.Get("X-Request-ID") == "" {
				t.Errorf("no X-Request-ID")
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// withField returns a copy of body with key set to value.
func withField(body map[string]any, key string, value any) map[string]any {
	out := make(map[string]any, len(body))
	for k, v := range body {
		out[k] = v
	}
	out[key] = value
	return out
}

// TestOperationalEndpoints: health and the OpenAPI document are served next
// to the API; metrics only by the internal metrics listener's handler.
func TestOperationalEndpoints(t *testing.T) {
	app, _ := newApp(t)
	for _, c := range []struct {
		handler                     http.Handler
		path, contentType, contains string
		status                      int
	}{
		{app.Engine, "/health/live", "application/json", `"alive"`, 200},
		{app.Engine, "/health/ready", "application/json", `"ready"`, 200},
		{app.Engine, "/openapi.yaml", "application/yaml", "openapi:", 200},
		{app.Engine, "/docs", "text/html", `<div id="swagger-ui"`, 200},
		{app.Engine, "/docs/", "text/html", `<div id="swagger-ui"`, 200},
		{app.Engine, "/docs/swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle", 200},
		{app.Engine, "/docs/swagger-ui.css", "text/css", ".swagger-ui", 200},
		{app.Engine, "/docs/LICENSE", "application/json", `"url not found"`, 404},
		{app.Engine, "/metrics", "application/json", `"url not found"`, 404},
		{app.Runtime.MetricsHandler(), "/metrics", "text/plain", "http_requests_total", 200},
	} {
		rec := httptest.NewRecorder()
		c.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
		if rec.Code != c.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.contentType) || !strings.Contains(rec.Body.String(), c.contains) {
			t.Errorf("GET %s: %d %q %.80s", c.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
}
