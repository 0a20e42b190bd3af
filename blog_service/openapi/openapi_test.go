package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"blogplatform/blog_service/openapi"
	chassisopenapi "blogplatform/devkit/openapi"
)

const (
	b1     = "66a1f0c2e4b0a1b2c3d4e5f6"
	b2     = "66a1f0c2e4b0a1b2c3d4e5f7"
	author = `{"_id":"66a1f0c2e4b0a1b2c3d4e5f0","name":"Admin"}`
	noSuch = "000000000000000000000001"
)

func jsonHeader() http.Header {
	return http.Header{
		"Content-Type": {"application/json; charset=utf-8"},
		"X-Request-Id": {"req-1"},
	}
}

func with(h http.Header, kv ...string) http.Header {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			h.Del(kv[i])
			continue
		}
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func fail(status int, msg string) string {
	return `{"code":"10001","status":` + strconv.Itoa(status) + `,"message":"` + msg + `"}`
}

func data(msg, d string) string {
	if d == "" {
		return `{"code":"10000","status":200,"message":"` + msg + `"}`
	}
	return `{"code":"10000","status":200,"message":"` + msg + `","data":` + d + `}`
}

// Canned DTOs shaped like the blog views the service sends (private, public,
// list item), field for field.
var (
	draft = `{"_id":"` + b1 + `","title":"Quantum Gardening Basics","description":"desc text","draftText":"draft body",` +
		`"slug":"qgbasics","author":` + author + `,"imgUrl":"https://x.io/a.png","score":0.01,"tags":["SCIENCE","GARDEN"],` +
		`"submitted":false,"drafted":true,"published":false,"createdAt":"2024-07-01T10:00:00.123Z","updatedAt":"2024-07-01T10:00:00.123Z"}`
	publishedPrivate = `{"_id":"` + b1 + `","title":"Quantum Gardening Basics","description":"desc text","text":"final body","draftText":"final body",` +
		`"slug":"qgbasics","author":{"_id":"66a1f0c2e4b0a1b2c3d4e5f0","name":"Admin","profilePicUrl":"https://x.io/p.png"},"score":0.01,"tags":["SCIENCE"],` +
		`"submitted":false,"drafted":false,"published":true,"publishedAt":"2024-07-02T08:00:00Z","createdAt":"2024-07-01T10:00:00.123Z","updatedAt":"2024-07-02T08:00:00Z"}`
	public = `{"_id":"` + b1 + `","title":"Quantum Gardening Basics","description":"desc text","text":"final body","slug":"qgbasics",` +
		`"author":` + author + `,"imgUrl":"https://x.io/b.png","score":0.01,"tags":["SCIENCE","GARDEN"],"publishedAt":"2024-07-02T08:00:00.5Z"}`
	item  = `{"_id":"` + b1 + `","title":"Quantum Gardening Basics","description":"desc text","slug":"qgbasics","imgUrl":"https://x.io/b.png","score":0.01,"tags":["SCIENCE","GARDEN"]}`
	item2 = `{"_id":"` + b2 + `","title":"Quantum Gardening Tools","description":"d","slug":"qgtools","score":0.01,"tags":["D-1","123"]}`
)

func TestDocumentMatchesCannedResponses(t *testing.T) {
	v, err := chassisopenapi.Load(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	seven := "[" + strings.TrimSuffix(strings.Repeat(item+",", 7), ",") + "]"
	cases := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		wantErr      string // substring of the expected error; "" = valid
	}{
		// Gateway and routing
		{name: "no api key", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 401, body: fail(401, "permission denied: missing x-api-key header")},
		{name: "wrong api key", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 403, body: fail(403, "permission denied: invalid x-api-key")},
		{name: "unknown path", method: "GET", path: "/blog/nope", status: 404, body: fail(404, "url not found")},
		{name: "bare prefix", method: "GET", path: "/blog", status: 404, body: fail(404, "url not found")},
		{name: "GET /author is 405", method: "GET", path: "/blog/author", status: 405,
			header: with(jsonHeader(), "Allow", "POST, PUT"), body: fail(405, "method not allowed")},
		{name: "POST /author/id is 405", method: "POST", path: "/blog/author/id/" + b1, status: 405,
			header: with(jsonHeader(), "Allow", "GET, DELETE"), body: fail(405, "method not allowed")},

		// Role failures (items 25-27, 54-55), auth unavailable
		{name: "create no auth", method: "POST", path: "/blog/author/", status: 401, body: fail(401, "permission denied: missing Authorization")},
		{name: "create learner", method: "POST", path: "/blog/author/", status: 403, body: fail(403, "permission denied: does not have sufficient role")},
		{name: "editor list learner", method: "GET", path: "/blog/editor/submitted?page=1&limit=10", status: 403, body: fail(403, "permission denied: does not have sufficient role")},
		{name: "auth down", method: "GET", path: "/blog/author/drafts?page=1&limit=10", status: 503, body: fail(503, "authentication service unavailable")},
		{name: "expired token", method: "GET", path: "/blog/author/drafts?page=1&limit=10", status: 401, body: fail(401, "token has invalid claims: token is expired")},

		// Author (items 28-38)
		{name: "create empty", method: "POST", path: "/blog/author/", status: 400,
			body: fail(400, "title is required, description is required, draftText is required, slug is required, imgUrl is required, tags is required")},
		{name: "create ok", method: "POST", path: "/blog/author", status: 200, body: data("blog created successfully", draft)},
		{name: "create dup slug", method: "POST", path: "/blog/author/", status: 400, body: fail(400, "Blog with slug: qgbasics already exists")},
		{name: "create too large", method: "POST", path: "/blog/author/", status: 413, body: fail(413, "request body too large")},
		{name: "update missing", method: "PUT", path: "/blog/author/", status: 404, body: fail(404, "Blog with id: "+noSuch+" does not exist")},
		{name: "update ok", method: "PUT", path: "/blog/author", status: 200, body: data("blog updated successfully", draft)},
		{name: "author get", method: "GET", path: "/blog/author/id/" + b1, status: 200, body: data("success", draft)},
		{name: "author get published", method: "GET", path: "/blog/author/id/" + b1, status: 200, body: data("success", publishedPrivate)},
		{name: "author get missing", method: "GET", path: "/blog/author/id/" + noSuch, status: 404, body: fail(404, noSuch+" not found")},
		{name: "author get bad id", method: "GET", path: "/blog/author/id/abc", status: 400, body: fail(400, "id must be of length 24")},
		{name: "drafts", method: "GET", path: "/blog/author/drafts?page=1&limit=10", status: 200, body: data("success", "["+item+","+item2+"]")},
		{name: "drafts empty", method: "GET", path: "/blog/author/drafts?page=9&limit=10", status: 200, body: data("success", "[]")},
		{name: "drafts no query", method: "GET", path: "/blog/author/drafts", status: 400, body: fail(400, "page is required, limit is required")},
		{name: "submit", method: "PUT", path: "/blog/author/submit/id/" + b1, status: 200, body: data("blog submitted successfully", "")},
		{name: "withdraw", method: "PUT", path: "/blog/author/withdraw/id/" + b1, status: 200, body: data("blog withdrawn successfully", "")},
		{name: "submit missing", method: "PUT", path: "/blog/author/submit/id/" + noSuch, status: 404, body: fail(404, "blog not found")},
		{name: "author submitted", method: "GET", path: "/blog/author/submitted?page=1&limit=50", status: 200, body: data("success", "["+item+"]")},
		{name: "author published", method: "GET", path: "/blog/author/published?page=1&limit=100", status: 200, body: data("success", "[]")},

		// Editor (items 36, 39-41, 48)
		{name: "publish not submitted", method: "PUT", path: "/blog/editor/publish/id/" + b1, status: 400, body: fail(400, "blog for _id "+b1+" is not submitted")},
		{name: "editor get", method: "GET", path: "/blog/editor/id/" + b1, status: 200, body: data("success", draft)},
		{name: "editor get missing", method: "GET", path: "/blog/editor/id/" + noSuch, status: 404, body: fail(404, noSuch+" not found")},
		{name: "publish", method: "PUT", path: "/blog/editor/publish/id/" + b1, status: 200, body: data("blog published successfully", "")},
		{name: "publish changed since review", method: "PUT", path: "/blog/editor/publish/id/" + b1, status: 409,
			body: fail(409, "blog for _id "+b1+" changed since the reviewed state (updatedAt 2024-07-01T10:00:00.123Z, now 2024-07-01T10:05:00.456Z): review it again")},
		{name: "update published under review", method: "PUT", path: "/blog/author", status: 409,
			body: fail(409, "blog for _id "+b1+" is published: its title can change only through an editor's review (unpublish, edit, submit, publish)")},
		{name: "publish missing", method: "PUT", path: "/blog/editor/publish/id/" + noSuch, status: 404, body: fail(404, "blog for _id "+noSuch+" not found")},
		{name: "unpublish", method: "PUT", path: "/blog/editor/unpublish/id/" + b2, status: 200, body: data("blog unpublished successfully", "")},
		{name: "editor submitted", method: "GET", path: "/blog/editor/submitted?page=1&limit=50", status: 200, body: data("success", "["+item+"]")},
		{name: "editor published", method: "GET", path: "/blog/editor/published?page=1&limit=50", status: 200, body: data("success", "["+item2+"]")},

		// Public reads (items 42-46)
		{name: "public by id", method: "GET", path: "/blog/id/" + b1, status: 200, body: data("success", public)},
		{name: "public by slug", method: "GET", path: "/blog/slug/qgbasics", status: 200, body: data("success", public)},
		{name: "public no imgUrl/publishedAt", method: "GET", path: "/id/" + b1, status: 200,
			body: data("success", strings.Replace(strings.Replace(public, `"imgUrl":"https://x.io/b.png",`, "", 1), `,"publishedAt":"2024-07-02T08:00:00.5Z"`, "", 1))},
		{name: "public unpublished", method: "GET", path: "/blog/id/" + b1, status: 404, body: fail(404, "blog not found")},
		{name: "slug too short", method: "GET", path: "/blog/slug/ab", status: 400, body: fail(400, "slug must be at least 3 characters")},
		{name: "latest", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 200, body: data("success", "["+item+","+item2+"]")},
		{name: "latest over max", method: "GET", path: "/blog/list/latest?page=1&limit=1001", status: 400, body: fail(400, "limit must be at most 1000")},
		{name: "latest not integer", method: "GET", path: "/blog/list/latest?page=abc&limit=1", status: 400, body: fail(400, "page must be an integer")},
		{name: "tag", method: "GET", path: "/blog/list/tag/SCIENCE?page=1&limit=10", status: 200, body: data("success", "["+item+"]")},
		{name: "tag lowercase", method: "GET", path: "/blog/list/tag/science?page=1&limit=10", status: 400, body: fail(400, "tag must be uppercase")},
		{name: "similar", method: "GET", path: "/blog/list/similar/id/" + b1, status: 200, body: data("success", "["+item2+"]")},
		{name: "similar missing", method: "GET", path: "/blog/list/similar/id/" + noSuch, status: 404, body: fail(404, "blog not found")},
		{name: "delete", method: "DELETE", path: "/blog/author/id/" + b2, status: 200, body: data("blog deleted successfully", "")},
		{name: "internal", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 500, body: fail(500, "something went wrong")},

		// Operations
		{name: "live", method: "GET", path: "/health/live", status: 200, body: `{"status":"alive"}`},
		{name: "ready", method: "GET", path: "/health/ready", status: 200,
			body: `{"status":"ready","dependencies":{"mongo":{"status":"up","required":true,"latencyMs":0.4},"redis":{"status":"up","required":false,"latencyMs":0.2},"nats":{"status":"up","required":true,"latencyMs":0.1}}}`},
		{name: "unavailable", method: "GET", path: "/blog/health/ready", status: 503,
			body: `{"status":"unavailable","dependencies":{"mongo":{"status":"down","required":true,"latencyMs":1000,"error":"timeout"}}}`},
		{name: "document", method: "GET", path: "/blog/openapi.yaml", status: 200,
			header: with(jsonHeader(), "Content-Type", "application/yaml"), body: string(openapi.Spec)},

		// Drift is caught.
		{name: "DRIFT public blog shows draftText", method: "GET", path: "/blog/id/" + b1, status: 200,
			body: data("success", strings.Replace(public, `"text"`, `"draftText":"secret","text"`, 1)), wantErr: "doesn't match schema"},
		{name: "DRIFT public blog shows flags", method: "GET", path: "/blog/id/" + b1, status: 200,
			body: data("success", strings.Replace(public, `"score"`, `"published":true,"score"`, 1)), wantErr: "doesn't match schema"},
		{name: "DRIFT author email", method: "GET", path: "/blog/editor/id/" + b1, status: 200,
			body: data("success", strings.Replace(draft, `"name":"Admin"`, `"name":"Admin","email":"admin@unusualcode.org"`, 1)), wantErr: "doesn't match schema"},
		{name: "DRIFT private blog without flags", method: "GET", path: "/blog/author/id/" + b1, status: 200,
			body: data("success", strings.Replace(draft, `"submitted":false,`, "", 1)), wantErr: "doesn't match schema"},
		{name: "DRIFT score as string", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 200,
			body: data("success", "["+strings.Replace(item, `0.01`, `"0.01"`, 1)+"]"), wantErr: "doesn't match schema"},
		{name: "DRIFT list item with text", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 200,
			body: data("success", "["+strings.Replace(item, `"slug"`, `"text":"body","slug"`, 1)+"]"), wantErr: "doesn't match schema"},
		{name: "DRIFT null list", method: "GET", path: "/blog/list/tag/NOSUCH?page=1&limit=10", status: 200,
			body: data("success", "null"), wantErr: "doesn't match schema"},
		{name: "DRIFT empty list omitted", method: "GET", path: "/blog/list/tag/NOSUCH?page=1&limit=10", status: 200,
			body: data("success", ""), wantErr: "doesn't match schema"},
		{name: "DRIFT seven similar", method: "GET", path: "/blog/list/similar/id/" + b1, status: 200,
			body: data("success", seven), wantErr: "doesn't match schema"},
		{name: "DRIFT missing code", method: "GET", path: "/blog/id/" + b1, status: 404,
			body: `{"status":404,"message":"blog not found"}`, wantErr: "doesn't match schema"},
		{name: "DRIFT reference 401 prefix kept is fine but status string is not", method: "POST", path: "/blog/author/", status: 401,
			body: `{"code":"10001","status":"401","message":"401:permission denied: missing Authorization"}`, wantErr: "doesn't match schema"},
		{name: "DRIFT auth down answered 401", method: "POST", path: "/blog/author/", status: 503,
			body: fail(503, "nats: no responders available for request"), wantErr: "doesn't match schema"},
		{name: "DRIFT wrong success message", method: "PUT", path: "/blog/author/submit/id/" + b1, status: 200,
			body: data("success", ""), wantErr: "doesn't match schema"},
		{name: "DRIFT 307 redirect", method: "POST", path: "/blog/author", status: 307,
			header: http.Header{"Location": {"/author/"}, "X-Request-Id": {"r"}}, body: "", wantErr: "status is not supported"},
		{name: "DRIFT bad timestamp", method: "GET", path: "/blog/author/id/" + b1, status: 200,
			body: data("success", strings.Replace(draft, `"2024-07-01T10:00:00.123Z"`, `"1719828000"`, 1)), wantErr: "doesn't match schema"},
		{name: "DRIFT lower-case tag", method: "GET", path: "/blog/list/latest?page=1&limit=10", status: 200,
			body: data("success", "["+strings.Replace(item, `"SCIENCE"`, `"science"`, 1)+"]"), wantErr: "doesn't match schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.header
			if h == nil {
				h = jsonHeader()
			}
			req := httptest.NewRequest(c.method, "http://localhost:8000"+c.path, nil)
			err := v.ValidateResponse(req, c.status, h, []byte(c.body))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("valid response rejected: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("drifted response accepted")
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("rejected for another reason than %q: %v", c.wantErr, err)
			}
		})
	}
}

func TestDocumentRequests(t *testing.T) {
	v, err := chassisopenapi.Load(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	create := `{"title":"Quantum Gardening Basics","description":"desc text","draftText":"draft body","slug":"qg basics","imgUrl":"https://x.io/a.png","tags":["SCIENCE","GARDEN"]}`
	cases := []struct {
		method, path, body string
		valid              bool
	}{
		{"POST", "/blog/author/", create, true},
		{"POST", "/blog/author", strings.Replace(create, `https://x.io/a.png`, `HTTP://X.IO/A.PNG`, 1), true},
		{"POST", "/blog/author", strings.Replace(create, `https://x.io/a.png`, `/rel/path.png`, 1), false},
		{"POST", "/blog/author", strings.Replace(create, `https://x.io/a.png`, `javascript:alert(1)`, 1), false},
		{"POST", "/blog/author", strings.Replace(create, `https://x.io/a.png`, `data:image/png;base64,AAAA`, 1), false},
		{"POST", "/blog/author/", strings.Replace(create, `"GARDEN"`, `"A:B"`, 1), false},
		{"POST", "/blog/author/", strings.Replace(create, `"GARDEN"`, `"`+strings.Repeat("A", 101)+`"`, 1), false},
		{"PUT", "/blog/editor/publish/id/" + b1, `{"updatedAt":"2024-07-01T10:00:00.123Z"}`, true},
		{"PUT", "/blog/editor/publish/id/" + b1, `{"updatedAt":null}`, true},
		{"PUT", "/blog/editor/publish/id/" + b1, `{}`, true},
		{"PUT", "/blog/editor/publish/id/" + b1, "", true},
		{"PUT", "/blog/editor/publish/id/" + b1, `{"version":3}`, false},
		{"POST", "/blog/author/", `{}`, false},
		{"POST", "/blog/author/", strings.Replace(create, `"GARDEN"`, `"go"`, 1), false},
		{"POST", "/blog/author/", strings.Replace(create, `"tags":["SCIENCE","GARDEN"]`, `"tags":[]`, 1), false},
		{"POST", "/blog/author/", strings.Replace(create, `"title"`, `"status":false,"title"`, 1), false},
		{"PUT", "/blog/author/", `{"_id":"` + b1 + `","title":"Quantum Gardening Advanced","draftText":""}`, true},
		{"PUT", "/blog/author/", `{"_id":"xyz"}`, false},
		{"PUT", "/blog/author/", `{"title":"abc"}`, false},
		{"GET", "/blog/list/latest?page=1&limit=10", "", true},
		{"GET", "/blog/list/latest?page=1&limit=1001", "", false},
		{"GET", "/blog/list/latest?page=abc&limit=1", "", false},
		{"GET", "/blog/list/latest", "", false},
		{"GET", "/blog/list/tag/D-1?page=1&limit=10", "", true},
		{"GET", "/blog/list/tag/science?page=1&limit=10", "", false},
		{"GET", "/blog/list/tag/%C3%89T%C3%89%20C%2B%2B?page=1&limit=10", "", true},
		{"GET", "/blog/list/tag/A:B?page=1&limit=10", "", false},
		{"GET", "/blog/list/tag/" + strings.Repeat("A", 101) + "?page=1&limit=10", "", false},
		{"GET", "/blog/slug/ab", "", false},
		{"GET", "/blog/author/id/" + b1, "", true},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, "http://localhost:8000"+c.path, nil)
		var body []byte
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
			body = []byte(c.body)
		}
		err := v.ValidateRequest(req, body)
		if c.valid && err != nil {
			t.Errorf("%s %s %s: valid request rejected: %v", c.method, c.path, c.body, err)
		}
		if !c.valid && err == nil {
			t.Errorf("%s %s %s: invalid request accepted", c.method, c.path, c.body)
		}
	}
}

func TestEveryOperationDocumentsItsErrors(t *testing.T) {
	v, err := chassisopenapi.Load(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	ops := v.Operations()
	if len(ops) != 24 {
		t.Errorf("%d operations documented, want 19 API routes + 5 operational ones", len(ops))
	}
	for _, op := range ops {
		if op.OperationID == "" {
			t.Errorf("%s %s has no operationId", op.Method, op.Path)
		}
		for _, s := range []int{200, 401, 403, 413, 500, 503} {
			found := false
			for _, d := range op.Statuses {
				found = found || d == s
			}
			if !found {
				t.Errorf("%s does not document %d", op.OperationID, s)
			}
		}
	}
}
