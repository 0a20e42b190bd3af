package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"blogplatform/auth_service/openapi"
	chassisopenapi "blogplatform/devkit/openapi"
)

const (
	oid1   = "66a1f0c2e4b0a1b2c3d4e5f6"
	roleL  = `{"_id":"66a1f0c2e4b0a1b2c3d4e5f0","code":"LEARNER"}`
	roleA  = `{"_id":"66a1f0c2e4b0a1b2c3d4e5f1","code":"AUTHOR"}`
	roleE  = `{"_id":"66a1f0c2e4b0a1b2c3d4e5f2","code":"EDITOR"}`
	roleAd = `{"_id":"66a1f0c2e4b0a1b2c3d4e5f3","code":"ADMIN"}`
	jwt1   = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhcGkifQ.c2lnbmF0dXJl"
	jwt2   = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhcGkyIn0.c2lnbmF0dXJlMg"
	tokens = `{"accessToken":"` + jwt1 + `","refreshToken":"` + jwt2 + `"}`
)

type exchange struct {
	name         string
	method, path string
	status       int
	header       http.Header
	body         string
	wantErr      string // substring of the expected error; "" = valid
}

func jsonHeader() http.Header {
	return http.Header{
		"Content-Type": {"application/json; charset=utf-8"},
		"X-Request-Id": {"0123456789abcdef0123456789abcdef"},
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

// noStore is the header set of an answer carrying tokens or profile data.
func noStore() http.Header { return with(jsonHeader(), "Cache-Control", "no-store") }

func fail(status int, msg string) string {
	return `{"code":"10001","status":` + strconv.Itoa(status) + `,"message":"` + msg + `"}`
}

func ok(data string) string {
	if data == "" {
		return `{"code":"10000","status":200,"message":"success"}`
	}
	return `{"code":"10000","status":200,"message":"success","data":` + data + `}`
}

func TestDocumentMatchesCannedResponses(t *testing.T) {
	v, err := chassisopenapi.Load(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	learner := `{"_id":"` + oid1 + `","email":"ada@example.com","name":"Ada Lovelace","roles":[` + roleL + `]}`
	admin := `{"_id":"` + oid1 + `","email":"admin@unusualcode.org","name":"Admin","profilePicUrl":"https://x.io/p.png","roles":[` +
		roleL + `,` + roleA + `,` + roleE + `,` + roleAd + `]}`

	listedKey := `{"_id":"` + oid1 + `","suffix":"bb37","comments":["vendor"],"permissions":["GENERAL"],"status":true,` +
		`"createdAt":"2026-01-02T03:04:05.678Z","updatedAt":"2026-01-02T03:04:05.678Z"}`
	createdKey := strings.Replace(listedKey, `"suffix"`, `"key":"`+strings.Repeat("ab", 32)+`","suffix"`, 1)
	adminUser := `{"_id":"` + oid1 + `","email":"ada@example.com","name":"Ada","status":false,"roles":[` + roleL + `]}`

	cases := []exchange{
		// API key: valid, missing, wrong, verifier unreachable
		{name: "verify ok", method: "GET", path: "/auth/verify/apikey", status: 200, body: ok("")},
		{name: "verify missing key", method: "GET", path: "/auth/verify/apikey", status: 401, body: fail(401, "permission denied: missing x-api-key header")},
		{name: "verify wrong key", method: "GET", path: "/verify/apikey", status: 403, body: fail(403, "permission denied: invalid x-api-key")},
		{name: "gateway verifier down", method: "GET", path: "/auth/profile/mine", status: 503, body: fail(503, "api key verification unavailable")},
		{name: "unknown path", method: "GET", path: "/auth/does/not/exist", status: 404, body: fail(404, "url not found")},
		{name: "wrong method", method: "GET", path: "/auth/signup/basic", status: 405,
			header: with(jsonHeader(), "Allow", "POST"), body: fail(405, "method not allowed")},

		// Sign-up and sign-in (items 7-16)
		{name: "signup empty", method: "POST", path: "/auth/signup/basic", status: 400, body: fail(400, "email is required, password is required, name is required")},
		{name: "signup EOF", method: "POST", path: "/auth/signup/basic", status: 400, body: fail(400, "EOF")},
		{name: "signup ok", method: "POST", path: "/auth/signup/basic", status: 200, header: noStore(), body: ok(`{"user":` + learner + `,"tokens":` + tokens + `}`)},
		{name: "signup again", method: "POST", path: "/signup/basic", status: 400, body: fail(400, "user already registered")},
		{name: "signup rate limited", method: "POST", path: "/auth/signup/basic", status: 429,
			header: with(jsonHeader(), "Retry-After", "1"), body: fail(429, "too many requests")},
		{name: "signup too large", method: "POST", path: "/auth/signup/basic", status: 413, body: fail(413, "request body too large")},
		{name: "signin unknown", method: "POST", path: "/auth/signin/basic", status: 404, body: fail(404, "user not registered")},
		{name: "signin wrong password", method: "POST", path: "/auth/signin/basic", status: 401, body: fail(401, "wrong password")},
		{name: "signin uniform failure", method: "POST", path: "/auth/signin/basic", status: 401, body: fail(401, "invalid email or password")},
		{name: "signin ambiguous email", method: "POST", path: "/auth/signin/basic", status: 403,
			body: fail(403, "several accounts use this email in different letter case; ask an administrator")},
		{name: "signin account throttled", method: "POST", path: "/auth/signin/basic", status: 429,
			header: with(jsonHeader(), "Retry-After", "840"), body: fail(429, "too many failed sign-ins, try again later")},
		{name: "signin admin", method: "POST", path: "/auth/signin/basic", status: 200, header: noStore(), body: ok(`{"user":` + admin + `,"tokens":` + tokens + `}`)},

		// Profile (items 17-19)
		{name: "mine no auth", method: "GET", path: "/auth/profile/mine", status: 401, body: fail(401, "permission denied: missing Authorization")},
		{name: "mine ok", method: "GET", path: "/auth/profile/mine", status: 200, header: noStore(), body: ok(learner)},
		{name: "public ok", method: "GET", path: "/auth/profile/id/" + oid1, status: 200, header: noStore(), body: ok(`{"_id":"` + oid1 + `","name":"Ada Lovelace"}`)},
		{name: "public bad id", method: "GET", path: "/auth/profile/id/abc", status: 400, body: fail(400, "id must be of length 24")},
		{name: "public missing", method: "GET", path: "/auth/profile/id/000000000000000000000001", status: 404, body: fail(404, "user does not exist")},

		// Refresh and sign-out (items 20-23)
		{name: "refresh no token", method: "POST", path: "/auth/token/refresh", status: 400, body: fail(400, "refreshToken is required")},
		{name: "refresh ok", method: "POST", path: "/auth/token/refresh", status: 200, header: noStore(), body: ok(tokens)},
		{name: "refresh reused", method: "POST", path: "/auth/token/refresh", status: 401, body: fail(401, "permission denied: claims ids")},
		{name: "signout ok (slash)", method: "DELETE", path: "/auth/signout/", status: 200, body: `{"code":"10000","status":200,"message":"signout success"}`},
		{name: "signout not published", method: "DELETE", path: "/auth/signout", status: 503, body: fail(503, "session revocation unavailable, try again later")},
		{name: "refresh not published", method: "POST", path: "/auth/token/refresh", status: 503, body: fail(503, "session revocation unavailable, try again later")},
		{name: "signout internal", method: "DELETE", path: "/auth/signout", status: 500, body: fail(500, "something went wrong")},

		// Operations
		{name: "live", method: "GET", path: "/health/live", status: 200, body: `{"status":"alive"}`},
		{name: "ready", method: "GET", path: "/auth/health/ready", status: 200,
			body: `{"status":"degraded","dependencies":{"mongo":{"status":"up","required":true,"latencyMs":0.4},"redis":{"status":"down","required":false,"latencyMs":1000,"error":"timeout"},"nats":{"status":"up","required":true,"latencyMs":0.1}}}`},
		{name: "not ready", method: "GET", path: "/health/ready", status: 503,
			body: `{"status":"shutting_down","dependencies":{"mongo":{"status":"up","required":true,"latencyMs":0.4}}}`},
		{name: "document", method: "GET", path: "/auth/openapi.yaml", status: 200,
			header: with(jsonHeader(), "Content-Type", "application/yaml"), body: string(openapi.Spec)},

		// Admin API
		{name: "admin key created", method: "POST", path: "/auth/admin/apikeys", status: 200, header: noStore(), body: ok(createdKey)},
		{name: "admin keys listed", method: "GET", path: "/auth/admin/apikeys", status: 200, header: noStore(), body: ok(`[` + listedKey + `]`)},
		{name: "admin not admin", method: "GET", path: "/auth/admin/apikeys", status: 403, body: fail(403, "permission denied: does not have sufficient role")},
		{name: "admin role unknown", method: "POST", path: "/auth/admin/users/" + oid1 + "/roles/WIZARD", status: 400,
			body: fail(400, "role must be one of LEARNER, AUTHOR, EDITOR, ADMIN")},
		{name: "admin user disabled", method: "POST", path: "/auth/admin/users/" + oid1 + "/disable", status: 200, header: noStore(),
			body: ok(`{"user":` + adminUser + `,"sessionsEnded":2}`)},
		{name: "admin session ended", method: "DELETE", path: "/auth/admin/users/" + oid1 + "/sessions/" + oid1, status: 200, header: noStore(),
			body: `{"code":"10000","status":200,"message":"session ended"}`},
		{name: "DRIFT admin list shows a key's value", method: "GET", path: "/auth/admin/apikeys", status: 200, header: noStore(),
			body: ok(`[` + createdKey + `]`), wantErr: "doesn't match schema"},
		{name: "DRIFT created key cacheable", method: "POST", path: "/auth/admin/apikeys", status: 200, body: ok(createdKey),
			wantErr: `"Cache-Control" missing`},
		{name: "DRIFT admin user without status", method: "GET", path: "/auth/admin/users/" + oid1, status: 200, header: noStore(),
			body: ok(strings.Replace(adminUser, `"status":false,`, "", 1)), wantErr: "doesn't match schema"},

		// Drift is caught.
		{name: "DRIFT password leaks", method: "POST", path: "/auth/signup/basic", status: 200, header: noStore(),
			body:    ok(`{"user":` + strings.Replace(learner, `"name"`, `"password":"$2a$10$x","name"`, 1) + `,"tokens":` + tokens + `}`),
			wantErr: "doesn't match schema"},
		{name: "DRIFT status as string", method: "GET", path: "/auth/verify/apikey", status: 200,
			body: `{"code":"10000","status":"200","message":"success"}`, wantErr: "doesn't match schema"},
		{name: "DRIFT missing code", method: "GET", path: "/auth/profile/mine", status: 401,
			body: `{"status":401,"message":"permission denied: missing Authorization"}`, wantErr: "doesn't match schema"},
		{name: "DRIFT code as number", method: "GET", path: "/auth/profile/mine", status: 401,
			body: `{"code":10001,"status":401,"message":"x"}`, wantErr: "doesn't match schema"},
		{name: "DRIFT public profile shows email", method: "GET", path: "/auth/profile/id/" + oid1, status: 200, header: noStore(),
			body: ok(`{"_id":"` + oid1 + `","name":"Ada","email":"ada@example.com"}`), wantErr: "doesn't match schema"},
		{name: "DRIFT role code unknown", method: "GET", path: "/auth/profile/mine", status: 200, header: noStore(),
			body: ok(strings.Replace(learner, "LEARNER", "learner", 1)), wantErr: "doesn't match schema"},
		{name: "DRIFT tokens not JWTs", method: "POST", path: "/auth/token/refresh", status: 200, header: noStore(),
			body: ok(`{"accessToken":"abc","refreshToken":"def"}`), wantErr: "doesn't match schema"},
		{name: "DRIFT internal text in 500", method: "DELETE", path: "/auth/signout", status: 500,
			body: fail(500, "mongo: no documents in result"), wantErr: "doesn't match schema"},
		{name: "DRIFT undocumented status", method: "GET", path: "/auth/profile/mine", status: 404,
			body: fail(404, "user does not exist"), wantErr: "status is not supported"},
		{name: "DRIFT envelope status differs", method: "POST", path: "/auth/signin/basic", status: 400,
			body: fail(401, "wrong password"), wantErr: "doesn't match schema"},
		{name: "DRIFT error with data", method: "POST", path: "/auth/signin/basic", status: 400,
			body: `{"code":"10001","status":400,"message":"x","data":{}}`, wantErr: "doesn't match schema"},
		{name: "DRIFT no X-Request-ID", method: "GET", path: "/auth/verify/apikey", status: 200,
			header: with(jsonHeader(), "X-Request-Id", ""), body: ok(""), wantErr: `"X-Request-ID" missing`},
		{name: "DRIFT html body", method: "GET", path: "/auth/verify/apikey", status: 200,
			header: with(jsonHeader(), "Content-Type", "text/html; charset=utf-8"), body: "<a>ok</a>", wantErr: "Content-Type"},
		{name: "DRIFT 405 without Allow", method: "PUT", path: "/auth/profile/mine", status: 405,
			body: fail(405, "method not allowed"), wantErr: `"Allow" missing`},
		{name: "DRIFT 405 wrong Allow", method: "PUT", path: "/auth/profile/mine", status: 405,
			header: with(jsonHeader(), "Allow", "GET, POST"), body: fail(405, "method not allowed"), wantErr: "Allow lists"},
		{name: "DRIFT wrong method answered 404", method: "GET", path: "/auth/signup/basic", status: 404,
			body: fail(404, "url not found"), wantErr: "not among the documented answers"},
		{name: "DRIFT 429 without Retry-After", method: "POST", path: "/auth/signin/basic", status: 429,
			body: fail(429, "too many requests"), wantErr: `"Retry-After" missing`},
		{name: "DRIFT tokens without no-store", method: "POST", path: "/auth/signin/basic", status: 200,
			body: ok(`{"user":` + admin + `,"tokens":` + tokens + `}`), wantErr: `"Cache-Control" missing`},
		{name: "DRIFT refreshed tokens cacheable", method: "POST", path: "/auth/token/refresh", status: 200,
			header: with(jsonHeader(), "Cache-Control", "max-age=60"), body: ok(tokens), wantErr: "Cache-Control"},
		{name: "DRIFT profile without no-store", method: "GET", path: "/auth/profile/mine", status: 200,
			body: ok(learner), wantErr: `"Cache-Control" missing`},
		{name: "DRIFT success message", method: "DELETE", path: "/auth/signout", status: 200,
			body: ok(""), wantErr: "doesn't match schema"},
		{name: "DRIFT readiness field", method: "GET", path: "/health/ready", status: 200,
			body: `{"status":"ready","dependencies":{"mongo":{"status":"up","required":true,"latencyMs":0.4,"extra":1}}}`, wantErr: "doesn't match schema"},
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
			case err != nil:
				t.Logf("rejected as expected: %v", err)
			}
		})
	}
}

func TestDocumentRequests(t *testing.T) {
	v, err := chassisopenapi.Load(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, body string
		valid              bool
	}{
		{"POST", "/auth/signup/basic", `{"email":"ada@example.com","password":"secret1","name":"Ada"}`, true},
		{"POST", "/auth/signup/basic", `{"email":"ada@example.com","password":"secret1","name":"Ada","profilePicUrl":null}`, true},
		{"POST", "/auth/signup/basic", `{"email":"ada@example.com","password":"secret1","name":"Ada","profilePicUrl":"https://x.io/a.png"}`, true},
		{"POST", "/auth/signup/basic", `{"email":"ada@example.com","password":"secret1","name":"Ada","profilePicUrl":"notaurl"}`, false},
		{"POST", "/auth/signup/basic", `{"email":"bad","password":"123","name":"x"}`, false},
		{"POST", "/auth/signup/basic", `{"email":"ada@example.com","password":"secret1","name":"Ada","admin":true}`, false},
		{"POST", "/auth/signin/basic", `{"email":{"$gt":""},"password":"secret1"}`, false},
		{"POST", "/token/refresh", `{"refreshToken":"` + jwt2 + `"}`, true},
		{"POST", "/token/refresh", `{}`, false},
		{"GET", "/auth/profile/id/" + oid1, "", true},
		{"GET", "/auth/profile/id/zzzzzzzzzzzzzzzzzzzzzzzz", "", false},
		{"POST", "/auth/admin/apikeys", `{"comments":["vendor"]}`, true},
		{"POST", "/auth/admin/apikeys", `{"key":"chosen-by-the-client"}`, false},
		{"POST", "/auth/admin/apikeys", `{"comments":[""]}`, false},
		{"DELETE", "/auth/admin/users/" + oid1 + "/sessions/abc", "", false},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, "http://localhost:8000"+c.path, nil)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		var body []byte
		if c.body != "" {
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
	rateLimited := map[string]bool{"signUpBasic": true, "signInBasic": true}
	for _, op := range v.Operations() {
		if op.OperationID == "" {
			t.Errorf("%s %s has no operationId", op.Method, op.Path)
		}
		want := []int{200, 401, 403, 413, 500, 503}
		if rateLimited[op.OperationID] {
			want = append(want, 429)
		}
		for _, s := range want {
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
