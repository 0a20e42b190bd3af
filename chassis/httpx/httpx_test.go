package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/metrics"
)

type signUp struct {
	Email    string  `json:"email" binding:"required" validate:"required,email"`
	Password string  `json:"password" binding:"required" validate:"required,min=6,max=100"`
	Name     string  `json:"name" binding:"required" validate:"required,min=2,max=200"`
	Picture  *string `json:"profilePicUrl" validate:"omitempty,url"`
}

type createBlog struct {
	Title string   `json:"title" validate:"required,min=3,max=500"`
	Tags  []string `json:"tags" validate:"required,min=1,dive,uppercase"`
}

// sizeStyle is a service's own wording built on the default: only the
// templates it changes are named.
func sizeStyle() Style {
	s := DefaultStyle()
	s.Min = "%[1]s must be at least %[2]s size"
	s.Max = "%[1]s must be at most %[2]s size"
	return s
}

func (createBlog) ValidationStyle() Style { return sizeStyle() }

type pagination struct {
	Page  int64 `form:"page" binding:"required" validate:"required,min=1,max=1000"`
	Limit int64 `form:"limit" binding:"required" validate:"required,min=1,max=1000"`
}

// pageStyle names only the templates pagination can produce; any other
// failure reads "<field> is invalid".
func (pagination) ValidationStyle() Style {
	return Style{Required: "%[1]s is required", Min: "%[1]s must be min %[2]s", Max: "%[1]s must be at most %[2]s"}
}

type mongoID struct {
	ID string `uri:"id" binding:"required" validate:"required,len=24,objectid"`
}

func testEngine(t *testing.T) *Engine {
	t.Helper()
	e := NewEngine(Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New("test"), BodyLimitBytes: 1024})
	e.POST("/signup/basic", func(c *gin.Context) {
		var body signUp
		if err := BindJSON(c, &body); err != nil {
			Fail(c, err)
			return
		}
		Data(c, "success", gin.H{"email": body.Email})
	})
	e.POST("/author", func(c *gin.Context) {
		var body createBlog
		if err := BindJSON(c, &body); err != nil {
			Fail(c, err)
			return
		}
		OK(c, "blog created successfully")
	})
	e.GET("/list/latest", func(c *gin.Context) {
		var q pagination
		if err := BindQuery(c, &q); err != nil {
			Fail(c, err)
			return
		}
		Data(c, "success", []string{})
	})
	e.GET("/id/:id", func(c *gin.Context) {
		var p mongoID
		if err := BindURI(c, &p); err != nil {
			Fail(c, err)
			return
		}
		OK(c, "success")
	})
	e.GET("/boom", func(c *gin.Context) { panic(errors.New("secret driver detail")) })
	e.GET("/internal", func(c *gin.Context) { Fail(c, errors.New("mongo: secret host 10.1.2.3")) })
	return e
}

type response struct {
	status int
	header http.Header
	env    map[string]any
	raw    string
}

func do(t *testing.T, h http.Handler, method, path, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &res.env); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, w.Body.String())
	}
	return res
}

func TestEnvelopeAndValidationMessages(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"signup all missing", "POST", "/signup/basic", `{}`, 400, "email is required, password is required, name is required"},
		{"signup stage two", "POST", "/signup/basic", `{"email":"bad","password":"123","name":"x"}`, 400,
			"email is not a valid email, password must be at least 6 characters, name must be at least 2 characters"},
		{"signup bad url", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann","profilePicUrl":"notaurl"}`, 400, "profilePicUrl is not a valid URL"},
		{"operator injection", "POST", "/signup/basic", `{"email":{"$gt":""},"password":"secret1","name":"Ann"}`, 400, "email must be of type string"},
		{"unknown field", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann","admin":true}`, 400, `unknown field "admin"`},
		{"empty body", "POST", "/signup/basic", ``, 400, "EOF"},
		{"trailing data", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann"} {}`, 400, "malformed JSON: unexpected data after the JSON value"},
		{"array body", "POST", "/signup/basic", `[]`, 400, "request body must be a JSON object, not array"},
		{"success", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann"}`, 200, "success"},
		{"size style", "POST", "/author", `{"title":"ab","tags":[]}`, 400, "title must be at least 3 size, tags must be at least 1 size"},
		{"element names", "POST", "/author", `{"title":"abc","tags":["GO","go"]}`, 400, "tags[1] must be uppercase"},
		{"element type", "POST", "/author", `{"title":"abc","tags":["GO",1]}`, 400, "tags must be of type string"},
		{"page missing", "GET", "/list/latest", ``, 400, "page is required, limit is required"},
		{"stage one hides stage two", "GET", "/list/latest?page=0&limit=5000", ``, 400, "page is required"},
		{"page min", "GET", "/list/latest?page=-1&limit=10", ``, 400, "page must be min 1"},
		{"limit max fixed wording", "GET", "/list/latest?page=1&limit=1001", ``, 400, "limit must be at most 1000"},
		{"page not integer", "GET", "/list/latest?page=abc&limit=1", ``, 400, "page must be an integer"},
		{"list ok", "GET", "/list/latest?page=1&limit=10", ``, 200, "success"},
		{"id length", "GET", "/id/abc", ``, 400, "id must be of length 24"},
		{"id not hex", "GET", "/id/zzzzzzzzzzzzzzzzzzzzzzzz", ``, 400, "id must be a valid id"},
		{"id ok", "GET", "/id/66a0c6b2f1e4d3c2b1a09f8e", ``, 200, "success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, e, tt.method, tt.path, tt.body, "Content-Type", "application/json")
			if res.status != tt.status || res.env["message"] != tt.message {
				t.Fatalf("got %d %q, want %d %q", res.status, res.env["message"], tt.status, tt.message)
			}
			wantCode := CodeSuccess
			if tt.status != 200 {
				wantCode = CodeFailure
			}
			if res.env["code"] != wantCode || res.env["status"] != float64(tt.status) {
				t.Errorf("envelope code/status = %v/%v", res.env["code"], res.env["status"])
			}
			if !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Errorf("content type %q", res.header.Get("Content-Type"))
			}
		})
	}
}

func TestEnvelopeKeyOrderAndEmptyList(t *testing.T) {
	e := testEngine(t)
	res := do(t, e, "GET", "/list/latest?page=1&limit=10", "")
	if res.raw != `{"code":"10000","status":200,"message":"success","data":[]}` {
		t.Fatalf("raw body %s", res.raw)
	}
	res = do(t, e, "GET", "/id/66a0c6b2f1e4d3c2b1a09f8e", "")
	if _, has := res.env["data"]; has {
		t.Fatal("message-only response must not carry data")
	}
}

func TestRoutingAnswers(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name, method, path string
		status             int
		message, allow     string
	}{
		{"unknown path", "GET", "/does/not/exist", 404, "url not found", ""},
		{"wrong method", "GET", "/signup/basic", 405, "method not allowed", "POST"},
		{"wrong method on author", "DELETE", "/author", 405, "method not allowed", "POST"},
		{"trailing slash accepted", "POST", "/author/", 400, "EOF", ""},
		{"without slash accepted", "POST", "/author", 400, "EOF", ""},
		{"case sensitive", "GET", "/LIST/latest", 404, "url not found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, e, tt.method, tt.path, "")
			if res.status != tt.status || res.env["message"] != tt.message {
				t.Fatalf("got %d %q", res.status, res.env["message"])
			}
			if tt.allow != "" && !strings.Contains(res.header.Get("Allow"), tt.allow) {
				t.Errorf("Allow = %q, want it to list %s", res.header.Get("Allow"), tt.allow)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := testEngine(t)
	big := `{"email":"` + strings.Repeat("a", 2000) + `@b.co","password":"secret1","name":"Ann"}`
	res := do(t, e, "POST", "/signup/basic", big)
	if res.status != 413 || res.env["message"] != "request body too large" {
		t.Fatalf("got %d %q", res.status, res.env["message"])
	}
	// Without Content-Length the limit still applies while reading.
	req := httptest.NewRequest("POST", "/signup/basic", io.NopCloser(strings.NewReader(big)))
	req.ContentLength = -1
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatalf("chunked body: got %d %s", w.Code, w.Body.String())
	}
}

func TestNoInternalTextAndRecovery(t *testing.T) {
	e := testEngine(t)
	for _, path := range []string{"/boom", "/internal"} {
		res := do(t, e, "GET", path, "")
		if res.status != 500 || res.env["message"] != "something went wrong" {
			t.Fatalf("%s: got %d %q", path, res.status, res.env["message"])
		}
		if strings.Contains(res.raw, "secret") {
			t.Fatalf("%s leaked internal text: %s", path, res.raw)
		}
	}
	// The engine keeps serving after a panic.
	if res := do(t, e, "GET", "/id/66a0c6b2f1e4d3c2b1a09f8e", ""); res.status != 200 {
		t.Fatalf("after panic: %d", res.status)
	}
}

func TestRequestID(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"generated when absent", "", false},
		{"kept when sane", "abc-123_DEF.4:5", true},
		{"replaced when unsafe", "bad id\r\nX-Evil: 1", false},
		{"replaced when too long", strings.Repeat("a", 200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/nope", nil)
			if tt.sent != "" {
				req.Header.Set(RequestIDHeader, tt.sent)
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			got := w.Header().Get(RequestIDHeader)
			if got == "" {
				t.Fatal("no X-Request-ID")
			}
			if tt.keep != (got == tt.sent) {
				t.Errorf("X-Request-ID = %q (sent %q)", got, tt.sent)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("missing nosniff")
			}
		})
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewRateLimiter(RateLimitOptions{PerMinute: 60, Burst: 3, Now: func() time.Time { return now }})
	e := NewEngine(Options{Logger: slog.New(slog.DiscardHandler)})
	e.POST("/signin/basic", l.Middleware(), func(c *gin.Context) { OK(c, "success") })
	for i := 0; i < 3; i++ {
		if res := do(t, e, "POST", "/signin/basic", "{}"); res.status != 200 {
			t.Fatalf("request %d within burst: %d", i, res.status)
		}
	}
	res := do(t, e, "POST", "/signin/basic", "{}")
	if res.status != 429 || res.env["message"] != "too many requests" || res.header.Get("Retry-After") != "1" {
		t.Fatalf("over budget: %d %q Retry-After=%q", res.status, res.env["message"], res.header.Get("Retry-After"))
	}
	now = now.Add(time.Second) // one token per second at 60/min
	if res := do(t, e, "POST", "/signin/basic", "{}"); res.status != 200 {
		t.Fatalf("after refill: %d", res.status)
	}
	// Another client has its own budget.
	req := httptest.NewRequest("POST", "/signin/basic", strings.NewReader("{}"))
	req.RemoteAddr = "10.9.9.9:1234"
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("other client limited: %d", w.Code)
	}
}

func TestForwardedForTrustedOnlyFromProxies(t *testing.T) {
	build := func(trusted []string) *Engine {
		l := NewRateLimiter(RateLimitOptions{PerMinute: 1, Burst: 1})
		e := NewEngine(Options{Logger: slog.New(slog.DiscardHandler), TrustedProxies: trusted})
		e.GET("/x", l.Middleware(), func(c *gin.Context) { OK(c, c.ClientIP()) })
		return e
	}
	send := func(e *Engine, xff string) response {
		return do(t, e, "GET", "/x", "", "X-Forwarded-For", xff)
	}
	// Untrusted peer: spoofed X-Forwarded-For values share the peer's budget.
	e := build(nil)
	if res := send(e, "1.1.1.1"); res.status != 200 || res.env["message"] != "192.0.2.1" {
		t.Fatalf("first: %d %v", res.status, res.env["message"])
	}
	if res := send(e, "2.2.2.2"); res.status != 429 {
		t.Fatalf("spoofed header bypassed the limit: %d", res.status)
	}
	// Trusted proxy: each forwarded client has its own budget.
	e = build([]string{"192.0.2.0/24"})
	for _, ip := range []string{"1.1.1.1", "2.2.2.2"} {
		if res := send(e, ip); res.status != 200 || res.env["message"] != ip {
			t.Fatalf("%s: %d %v", ip, res.status, res.env["message"])
		}
	}
}

func TestMetricsCountRouteTemplates(t *testing.T) {
	m := metrics.New("test")
	e := NewEngine(Options{Logger: slog.New(slog.DiscardHandler), Metrics: m})
	e.GET("/id/:id", func(c *gin.Context) { OK(c, "success") })
	for i := 0; i < 3; i++ {
		do(t, e, "GET", "/id/"+strings.Repeat("a", i+1), "")
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "http_requests_total" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "/id/:id" && labels["status"] == "200" && metric.GetCounter().GetValue() == 3 {
				return
			}
		}
	}
	t.Fatal("no http_requests_total{route=\"/id/:id\",status=\"200\"} 3")
}

func TestDecodeJSONNeverPanics(t *testing.T) {
	inputs := []string{"", "null", "{", `{"email":null}`, `{"email":"x","email":"y"}`, "\x00", `{"tags":{"$ne":1}}`, "1e999", `"str"`}
	for _, in := range inputs {
		var dst signUp
		err := DecodeJSON([]byte(in), &dst)
		if err == nil {
			continue
		}
		if e := apperr.From(err); e.Status() != 400 {
			t.Errorf("%q: status %d", in, e.Status())
		}
	}
}

func TestUnavailableDependencyIs503(t *testing.T) {
	storeDown := errors.New("server selection error: context deadline exceeded")
	e := NewEngine(Options{Logger: slog.New(slog.DiscardHandler), Unavailable: func(err error) bool { return errors.Is(err, storeDown) }})
	e.GET("/down", func(c *gin.Context) { Fail(c, fmt.Errorf("find blog: %w", storeDown)) })
	e.GET("/bug", func(c *gin.Context) { Fail(c, errors.New("nil map")) })
	e.GET("/notfound", func(c *gin.Context) { Fail(c, apperr.Missing("blog not found")) })
	tests := []struct {
		path    string
		status  int
		message string
	}{
		{"/down", 503, "service unavailable"},
		{"/bug", 500, "something went wrong"},
		{"/notfound", 404, "blog not found"},
	}
	for _, tt := range tests {
		res := do(t, e, "GET", tt.path, "")
		if res.status != tt.status || res.env["message"] != tt.message {
			t.Errorf("%s: got %d %q", tt.path, res.status, res.env["message"])
		}
		if strings.Contains(res.raw, "selection") {
			t.Errorf("%s leaked the cause: %s", tt.path, res.raw)
		}
	}
}
