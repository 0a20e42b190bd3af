package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"blogplatform/devkit/wait"
	"blogplatform/tools/internal/kongconf"
)

const goodKey = "good-key"

// backend is an httptest server that records what reached it.
type backend struct {
	name  string
	srv   *httptest.Server
	hits  atomic.Int64
	ready atomic.Bool
	// slowHealth makes the readiness answer take longer than the gateway's
	// probe timeout; slowEveryOther does so for every second probe only.
	slowHealth     atomic.Bool
	slowEveryOther atomic.Bool
	probes         atomic.Int64
	// frozen makes every request (health probes too) hang until it is
	// cleared or the test ends, like a SIGSTOPped process: the kernel still
	// accepts connections and requests, nothing answers.
	frozen  atomic.Bool
	release chan struct{}
	// arrivals counts requests (probes excluded) that reached the handler,
	// frozen or not.
	arrivals atomic.Int64
	mu       sync.Mutex
	last     *http.Request
	body     string
	answer   func(w http.ResponseWriter, r *http.Request) // nil: 200 envelope naming the backend
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name, release: make(chan struct{})}
	b.ready.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := r.URL.Path == "/health/ready" && r.Header.Get("X-Real-IP") == ""
		if !probe {
			b.arrivals.Add(1)
		}
		b.waitWhileFrozen()
		if probe {
			// The gateway's own readiness poll (a proxied request carries X-Real-IP).
			n := b.probes.Add(1)
			if b.slowHealth.Load() || (b.slowEveryOther.Load() && n%2 == 0) {
				time.Sleep(3 * testHealthTimeout)
			}
			if b.ready.Load() {
				w.WriteHeader(http.StatusOK)
			} else {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last, b.body = r.Clone(context.Background()), string(body)
		b.mu.Unlock()
		b.hits.Add(1)
		if b.answer != nil {
			b.answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"code":"10000","status":200,"message":%q}`, b.name)
	}))
	t.Cleanup(b.srv.Close)
	// Registered after Close, so it runs first: frozen handlers return and
	// Close does not wait for them.
	t.Cleanup(func() { close(b.release) })
	return b
}

func (b *backend) waitWhileFrozen() {
	for b.frozen.Load() {
		select {
		case <-b.release:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func (b *backend) lastRequest() (*http.Request, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.body
}

// verifierBackend answers GET /verify/apikey like auth_service.
func verifierBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	calls := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("x-api-key") == goodKey {
			fmt.Fprint(w, `{"code":"10000","status":200,"message":"success"}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"code":"10001","status":403,"message":"permission denied: invalid x-api-key"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

// testKong is a small load-balanced file in the shape of the repo's one:
// read and write services per upstream, passive health checks, the
// plugin's rate limit on sign-in. Placeholders: {blog1Weight},
// {readTimeout} and {writeReadTimeout} (ms), {retries}.
const testKong = `
_format_version: "3.0"
services:
  - name: auth-read
    url: http://auth_upstream
    read_timeout: {readTimeout}
    retries: {retries}
    routes:
      - {name: auth-read, paths: [/auth], methods: [GET, HEAD, OPTIONS], strip_path: true}
  - name: auth-write
    url: http://auth_upstream
    read_timeout: {writeReadTimeout}
    retries: {retries}
    routes:
      - {name: auth-write, paths: [/auth], strip_path: true}
  - name: blog-read
    url: http://blog_upstream
    read_timeout: {readTimeout}
    retries: {retries}
    routes:
      - {name: blog-read, paths: [/blog], methods: [GET, HEAD, OPTIONS]}
  - name: blog-write
    url: http://blog_upstream
    read_timeout: {writeReadTimeout}
    retries: {retries}
    routes:
      - {name: blog-write, paths: [/blog]}
  - name: open
    url: http://blog_upstream/public
    routes:
      - name: open
        paths: [/open]
        plugins:
          - {name: apikey-auth-plugin, config: {bypass: true}}
routes:
  - name: not-found
    paths: [/]
    plugins:
      - name: request-termination
        config: {status_code: 404, content_type: application/json, body: '{"code":"10001","status":404,"message":"nope"}'}
upstreams:
  - name: auth_upstream
    healthchecks:
      passive: {unhealthy: {tcp_failures: 2, timeouts: 2}}
    targets:
      - {target: "auth1:8000", weight: 100}
      - {target: "auth2:8000", weight: 100}
  - name: blog_upstream
    healthchecks:
      active: {http_path: /health/ready}
      passive: {unhealthy: {tcp_failures: 2, timeouts: 2}}
    targets:
      - {target: "blog1:8000", weight: {blog1Weight}}
      - {target: "blog2:8000", weight: 100}
plugins:
  - name: apikey-auth-plugin
    config:
      verification_urls: [http://verifier:8000/verify/apikey]
      timeout_ms: 1000
      cache_ttl_seconds: 0
      public_paths: [/auth/health/ready, /blog/health/live, /blog/health/ready]
      rate_limits:
        - {paths: [/auth/signin/basic], per_minute: 3}
`

// Timeouts of testKong's services unless a test sets its own.
const (
	testReadTimeout      = 300 * time.Millisecond
	testWriteReadTimeout = 600 * time.Millisecond
)

type fixture struct {
	gw       *Gateway
	url      string
	backends map[string]*backend
	verifies *atomic.Int64
}

type fixtureOptions struct {
	blog1Weight int
	retries     int // default 2; -1 means 0
	now         func() time.Time
	// dead names targets whose address refuses connections.
	dead map[string]bool
	// withoutHealthChecks leaves the active checks off, so only passive
	// (connection failure) marks apply.
	withoutHealthChecks bool
	// bodyReadTimeout: 0 means the default.
	bodyReadTimeout time.Duration
	// readHeaderTimeout replaces NewServer's (0: keep it).
	readHeaderTimeout time.Duration
}

const testHealthTimeout = 100 * time.Millisecond

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	if o.blog1Weight == 0 {
		o.blog1Weight = 100
	}
	f := &fixture{backends: map[string]*backend{}}
	addrs := map[string]string{}
	for _, name := range []string{"auth1", "auth2", "blog1", "blog2"} {
		if o.dead[name] {
			addrs[name] = refusingAddr(t)
			continue
		}
		b := newBackend(t, name)
		f.backends[name] = b
		addrs[name] = b.addr()
	}
	verifier, calls := verifierBackend(t)
	f.verifies = calls
	addrs["verifier"] = verifier.Listener.Addr().String()

	retries := o.retries
	switch {
	case retries == 0:
		retries = 2
	case retries < 0:
		retries = 0
	}
	kong := strings.NewReplacer(
		"{blog1Weight}", fmt.Sprint(o.blog1Weight),
		"{readTimeout}", fmt.Sprint(testReadTimeout.Milliseconds()),
		"{writeReadTimeout}", fmt.Sprint(testWriteReadTimeout.Milliseconds()),
		"{retries}", fmt.Sprint(retries),
	).Replace(testKong)
	gw := newTestGateway(t, kong, addrs, o.now, func(opts *Options) { opts.BodyReadTimeout = o.bodyReadTimeout })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !o.withoutHealthChecks {
			gw.Run(ctx)
		}
	}()
	srv := httptest.NewUnstartedServer(gw)
	srv.Config = NewServer(gw, nil)
	if o.readHeaderTimeout > 0 {
		srv.Config.ReadHeaderTimeout = o.readHeaderTimeout
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		gw.Close()
	})
	f.gw, f.url = gw, srv.URL
	return f
}

// newTestGateway builds a gateway from a Kong file whose hosts are the keys
// of addrs (all on port 8000).
func newTestGateway(t *testing.T, kong string, addrs map[string]string, now func() time.Time, tune ...func(*Options)) *Gateway {
	t.Helper()
	cfg, err := kongconf.Parse([]byte(kong))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Kong: cfg,
		Resolve: func(host string, port int) ([]Endpoint, error) {
			addr, ok := addrs[host]
			if !ok || port != 8000 {
				return nil, fmt.Errorf("unknown host %s:%d", host, port)
			}
			return []Endpoint{{Name: host, Addr: addr}}, nil
		},
		HealthInterval: 50 * time.Millisecond,
		HealthTimeout:  testHealthTimeout,
		Now:            now,
	}
	for _, f := range tune {
		f(&opts)
	}
	gw, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// refusingAddr is a loopback address nothing listens on.
func refusingAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(t *testing.T, method, path string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := header["x-api-key"]; !ok {
		req.Header.Set("x-api-key", goodKey)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func TestUpstreamPathFollowsKong(t *testing.T) {
	for _, tc := range []struct {
		service, prefix, req string
		strip                bool
		handling             string
		want                 string
	}{
		// The repo's routes.
		{"", "/auth", "/auth/signin/basic", true, "v0", "/signin/basic"},
		{"", "/blog", "/blog", true, "v0", "/"},
		{"", "/blog", "/blog/", true, "v0", "/"},
		{"/signin/basic", "/auth/signin/basic", "/auth/signin/basic", true, "v0", "/signin/basic"},
		{"/signup/basic", "/auth/signup/basic", "/auth/signup/basic/", true, "v0", "/signup/basic/"},
		// Kong's documented path_handling table.
		{"/s", "/fv0", "/fv0req", true, "v0", "/s/req"},
		{"/s", "/fv0", "/fv0/req", true, "v0", "/s/req"},
		{"/s", "/tv0/", "/tv0/req", true, "v0", "/s/req"},
		{"/s/", "/fv0", "/fv0req", true, "v0", "/s/req"},
		{"/s/", "/fv0", "/fv0/req", true, "v0", "/s/req"},
		{"/s", "/fv1", "/fv1req", true, "v1", "/sreq"},
		{"/s/", "/fv1", "/fv1/req", true, "v1", "/s//req"},
		{"/s", "/fv0", "/fv0req", false, "v0", "/s/fv0req"},
		{"", "/auth", "/auth/x", false, "v0", "/auth/x"},
	} {
		got := upstreamPath(tc.service, tc.prefix, tc.req, tc.strip, tc.handling)
		if got != tc.want {
			t.Errorf("service %q route %q request %q strip %v %s: got %q, want %q",
				tc.service, tc.prefix, tc.req, tc.strip, tc.handling, got, tc.want)
		}
	}
}

func TestRoutingStripPathAndQuery(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct{ path, wantUpstream, wantPrefix string }{
		{"/auth/profile/mine?page=2&limit=1", "/profile/mine?page=2&limit=1", "/auth"},
		{"/auth/signin/basic", "/signin/basic", "/auth"},
		{"/blog/id/a%2Fb", "/id/a%2Fb", "/blog"},
		{"/blog", "/", "/blog"},
	} {
		a := f.do(t, http.MethodGet, tc.path, nil, "")
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, a.status, a.raw)
		}
		served := a.body["message"].(string)
		req, _ := f.backends[served].lastRequest()
		if got := req.URL.RequestURI(); got != tc.wantUpstream {
			t.Errorf("%s reached upstream as %q, want %q", tc.path, got, tc.wantUpstream)
		}
		if got := req.Header.Get("X-Forwarded-Prefix"); got != tc.wantPrefix {
			t.Errorf("%s: X-Forwarded-Prefix %q", tc.path, got)
		}
		if req.Header.Get("x-api-key") != goodKey {
			t.Errorf("%s: the API key must reach the service like with Kong", tc.path)
		}
	}
}

// Without a catch-all route, Kong itself answers 404 before any plugin
// runs, in the repo's error template.
func TestNoRouteIsKongs404WithoutAKeyCheck(t *testing.T) {
	verifier, calls := verifierBackend(t)
	gw := newTestGateway(t, `
services:
  - {name: blog, url: "http://blog:8000", routes: [{name: blog, paths: [/blog]}]}
plugins:
  - {name: apikey-auth-plugin, config: {verification_urls: ["http://verifier:8000/verify/apikey"]}}
`, map[string]string{"blog": refusingAddr(t), "verifier": verifier.Listener.Addr().String()}, nil)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-ID")
	if want := fmt.Sprintf(ErrorTemplateJSON, "no Route matched with those values", id); resp.StatusCode != 404 || string(raw) != want || id == "" {
		t.Fatalf("got %d %q, want 404 %q", resp.StatusCode, raw, want)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("headers %v", resp.Header)
	}
	if calls.Load() != 0 {
		t.Error("the plugin must not run for unmatched paths")
	}
}

// The error template the gateway renders is the file the Kong images use.
func TestErrorTemplateIsKongsFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "kong", "error-template.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != ErrorTemplateJSON {
		t.Fatalf("kong/error-template.json is %q, the gateway renders %q", raw, ErrorTemplateJSON)
	}
	// Two %s, message then request id, as Kong's string.format fills it,
	// and valid JSON with the envelope's code once filled.
	var body map[string]any
	if err := json.Unmarshal(fmt.Appendf(nil, ErrorTemplateJSON, "some message", "0123abcd"), &body); err != nil {
		t.Fatal(err)
	}
	if body["code"] != "10001" || body["message"] != "some message" || body["request_id"] != "0123abcd" || len(body) != 3 {
		t.Errorf("filled template %v", body)
	}
}

// A catch-all route with request-termination answers every other path with
// its configured body, after the global key check like any route.
func TestRequestTerminationRoute(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a := f.do(t, http.MethodGet, "/nothing/here", nil, "")
	if a.status != 404 || a.raw != `{"code":"10001","status":404,"message":"nope"}` || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("catch-all: %d %q %v", a.status, a.raw, a.header)
	}
	if a := f.do(t, http.MethodPost, "/nothing", map[string]string{"x-api-key": ""}, "{}"); a.status != 401 {
		t.Errorf("catch-all without a key: %d %s", a.status, a.raw)
	}
	for _, b := range f.backends {
		if b.arrivals.Load() != 0 {
			t.Errorf("%s was reached", b.name)
		}
	}
}

func TestAPIKeyCheck(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a := f.do(t, http.MethodGet, "/blog/list", map[string]string{"x-api-key": ""}, "")
	if a.status != 401 || a.body["message"] != "permission denied: missing x-api-key header" || a.body["status"] != float64(401) {
		t.Errorf("no key: %d %s", a.status, a.raw)
	}
	a = f.do(t, http.MethodGet, "/blog/list", map[string]string{"x-api-key": "wrong"}, "")
	if a.status != 403 || a.body["message"] != "permission denied: invalid x-api-key" {
		t.Errorf("wrong key: %d %s", a.status, a.raw)
	}
	if a.header.Get("X-Request-ID") == "" {
		t.Error("a gateway answer must carry X-Request-ID")
	}
	if hits := f.backends["blog1"].hits.Load() + f.backends["blog2"].hits.Load(); hits != 0 {
		t.Errorf("denied requests reached the service %d times", hits)
	}
	if a := f.do(t, http.MethodGet, "/blog/list", nil, ""); a.status != 200 {
		t.Errorf("good key: %d %s", a.status, a.raw)
	}
}

func TestHealthProbesNeedNoKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	noKey := map[string]string{"x-api-key": ""}
	for _, path := range []string{"/auth/health/ready", "/blog/health/live"} {
		if a := f.do(t, http.MethodGet, path, noKey, ""); a.status != 200 {
			t.Errorf("%s without a key: %d %s", path, a.status, a.raw)
		}
	}
	// Only the exact public paths: a deeper path still needs the key.
	if a := f.do(t, http.MethodGet, "/blog/x/health/ready", noKey, ""); a.status != 401 {
		t.Errorf("/blog/x/health/ready without a key: %d", a.status)
	}
	if a := f.do(t, http.MethodPost, "/blog/health/ready", noKey, ""); a.status != 401 {
		t.Errorf("POST to a health path without a key: %d", a.status)
	}
	// A route-level apikey-auth-plugin with bypass: true opens the route.
	if a := f.do(t, http.MethodGet, "/open/page", noKey, ""); a.status != 200 {
		t.Errorf("bypass route: %d %s", a.status, a.raw)
	}
}

func TestForwardedHeadersAndRequestID(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a := f.do(t, http.MethodGet, "/auth/x", map[string]string{
		"X-Forwarded-For": "6.6.6.6", "X-Request-ID": "client-id-1",
	}, "")
	req, _ := f.backends[a.body["message"].(string)].lastRequest()
	if got := req.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q: the edge must replace a client's value with the connecting address", got)
	}
	if req.Header.Get("X-Request-ID") != "client-id-1" {
		t.Errorf("X-Request-ID upstream %q", req.Header.Get("X-Request-ID"))
	}
	if a.header.Get("X-Request-ID") != "client-id-1" {
		t.Errorf("X-Request-ID to the client %q", a.header.Get("X-Request-ID"))
	}
	a = f.do(t, http.MethodGet, "/auth/x", map[string]string{"X-Request-ID": "bad id <script>"}, "")
	req, _ = f.backends[a.body["message"].(string)].lastRequest()
	if id := req.Header.Get("X-Request-ID"); len(id) != 32 || a.header.Get("X-Request-ID") != id {
		t.Errorf("an unsafe id must be replaced by a generated one sent both ways: upstream %q, client %q", id, a.header.Get("X-Request-ID"))
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	f := newFixture(t, fixtureOptions{blog1Weight: 300})
	var order []string
	for range 8 {
		a := f.do(t, http.MethodGet, "/blog/x", nil, "")
		order = append(order, a.body["message"].(string))
	}
	count := map[string]int{}
	for _, n := range order {
		count[n]++
	}
	if count["blog1"] != 6 || count["blog2"] != 2 {
		t.Errorf("weights 300:100 over 8 requests gave %v (%v)", count, order)
	}
	// Smooth: never more than three blog1 in a row.
	if strings.Contains(strings.Join(order, ","), "blog1,blog1,blog1,blog1") {
		t.Errorf("not smooth: %v", order)
	}
	// Equal weights alternate.
	seen := map[string]int{}
	for range 10 {
		seen[f.do(t, http.MethodGet, "/auth/x", nil, "").body["message"].(string)]++
	}
	if seen["auth1"] != 5 || seen["auth2"] != 5 {
		t.Errorf("equal weights: %v", seen)
	}
	stats := map[string]int64{}
	for _, s := range f.gw.Stats() {
		stats[s.Name] = s.Served
	}
	if stats["blog1"] != 6 || stats["blog2"] != 2 || stats["auth1"] != 5 {
		t.Errorf("stats %v", stats)
	}
}

// A refused connection reached nothing, so every method is retried on the
// other target, and the passive check ejects the refusing target after
// tcp_failures (2) in a row.
func TestRefusedTargetIsRetriedForEveryMethodAndEjected(t *testing.T) {
	f := newFixture(t, fixtureOptions{dead: map[string]bool{"auth1": true}, withoutHealthChecks: true})
	for i, method := range []string{http.MethodPost, http.MethodGet, http.MethodPatch, http.MethodDelete, http.MethodPut, http.MethodPost} {
		body := fmt.Sprintf(`{"n":%d}`, i)
		a := f.do(t, method, "/auth/thing", map[string]string{"Content-Type": "application/json"}, body)
		if a.status != 200 || a.body["message"] != "auth2" {
			t.Fatalf("%s #%d: %d %s", method, i, a.status, a.raw)
		}
		if _, got := f.backends["auth2"].lastRequest(); got != body {
			t.Errorf("%s #%d: body %q reached the second target as %q", method, i, body, got)
		}
	}
	s := f.stats("auth1")
	if !s.Down || s.Failures != 2 {
		t.Errorf("the refusing target should be ejected after 2 failures and then left alone: %+v", s)
	}
}

func TestBrokenConnectionRetriesOnlyIdempotentMethods(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	// auth1 accepts the request, then drops the connection without answering.
	f.backends["auth1"].answer = func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	// Round robin alternates, so two of four POSTs go to auth1, and those
	// must not be resent: the service may have acted on them.
	postFailed := 0
	for range 4 {
		a := f.do(t, http.MethodPost, "/auth/x", nil, "{}")
		if a.status == http.StatusBadGateway {
			postFailed++
			if a.body["message"] != "An invalid response was received from the upstream server" {
				t.Errorf("502 body %s", a.raw)
			}
		}
	}
	if postFailed != 2 {
		t.Errorf("POSTs failed: %d of 4, want the 2 sent to the broken target", postFailed)
	}
	for range 4 {
		if a := f.do(t, http.MethodGet, "/auth/x", nil, ""); a.status != 200 || a.body["message"] != "auth2" {
			t.Errorf("GET: %d %s (want a retry on auth2)", a.status, a.raw)
		}
	}
}

func TestNotReadyTargetGetsNoTraffic(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.backends["blog1"].ready.Store(false)
	waitFor(t, func() bool { return !f.targetReady("blog1") })
	before := f.backends["blog1"].hits.Load()
	for range 6 {
		if a := f.do(t, http.MethodGet, "/blog/x", nil, ""); a.status != 200 || a.body["message"] != "blog2" {
			t.Fatalf("%d %s", a.status, a.raw)
		}
	}
	if f.backends["blog1"].hits.Load() != before {
		t.Error("a not-ready target got traffic while another was ready")
	}
	// When no target is ready the gateway still tries them: readiness is
	// advice (a replica without NATS still serves public reads).
	f.backends["blog2"].ready.Store(false)
	waitFor(t, func() bool { return !f.targetReady("blog2") })
	if a := f.do(t, http.MethodGet, "/blog/x", nil, ""); a.status != 200 {
		t.Errorf("no ready target: %d %s", a.status, a.raw)
	}
	f.backends["blog1"].ready.Store(true)
	waitFor(t, func() bool { return f.targetReady("blog1") })
}

func TestOneSlowProbeDoesNotTakeATargetOut(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	b := f.backends["blog1"]
	b.slowHealth.Store(true)
	// Timed-out probes need to repeat before the target is taken out...
	waitFor(t, func() bool { return !f.targetReady("blog1") })
	// ...and one answered probe brings it back.
	b.slowHealth.Store(false)
	waitFor(t, func() bool { return f.targetReady("blog1") })

	// A single timeout among good answers changes nothing.
	b.slowEveryOther.Store(true)
	start := b.probes.Load()
	notReady := 0
	for b.probes.Load() < start+8 {
		if !f.targetReady("blog1") {
			notReady++
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.slowEveryOther.Store(false)
	if notReady > 0 {
		t.Errorf("isolated probe timeouts took the target out (%d samples not ready)", notReady)
	}
}

func TestAllTargetsRefusingIs502AndNoRetryStorm(t *testing.T) {
	f := newFixture(t, fixtureOptions{dead: map[string]bool{"auth1": true, "auth2": true}})
	a := f.do(t, http.MethodGet, "/auth/x", nil, "")
	id := a.header.Get("X-Request-ID")
	if a.status != http.StatusBadGateway || id == "" || a.raw != fmt.Sprintf(ErrorTemplateJSON, "An invalid response was received from the upstream server", id) {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	var failures int64
	for _, s := range f.gw.Stats() {
		failures += s.Failures
	}
	if failures != 2 {
		t.Errorf("each target should be tried once, failures %d", failures)
	}
}

// A frozen target (it accepts the connection and the request, then says
// nothing) costs a read one read_timeout: the GET is answered by the other
// target, and after timeouts (2) in a row the passive check ejects the
// frozen one, so later requests never wait for it.
func TestFrozenTargetGETIsRetriedAndTargetEjected(t *testing.T) {
	f := newFixture(t, fixtureOptions{withoutHealthChecks: true})
	frozen := f.backends["blog1"]
	frozen.frozen.Store(true)
	slow := 0
	for i := range 12 {
		start := time.Now()
		a := f.do(t, http.MethodGet, fmt.Sprintf("/blog/id/%d", i), nil, "")
		took := time.Since(start)
		if a.status != 200 || a.body["message"] != "blog2" {
			t.Fatalf("GET #%d: %d %s", i, a.status, a.raw)
		}
		if took > testReadTimeout+250*time.Millisecond {
			t.Errorf("GET #%d took %v, want at most read_timeout %v plus a margin", i, took, testReadTimeout)
		}
		if took >= testReadTimeout {
			slow++
		}
	}
	if got := frozen.arrivals.Load(); got != 2 || slow != 2 {
		t.Errorf("the frozen target got %d requests (%d clients waited a read_timeout), want 2: ejected after 2 timeouts", got, slow)
	}
	if s := f.stats("blog1"); !s.Down || s.Failures != 2 {
		t.Errorf("blog1 %+v, want ejected after 2 failures", s)
	}
}

// A POST whose attempt timed out after it was sent is not sent again: the
// client gets the 504 at once, after the write service's read_timeout. A
// GET in the same situation is tried on every target (retries allowing).
func TestFrozenTargetsPOSTIsSentOnceThen504(t *testing.T) {
	f := newFixture(t, fixtureOptions{withoutHealthChecks: true})
	f.backends["blog1"].frozen.Store(true)
	f.backends["blog2"].frozen.Store(true)
	arrivals := func() int64 { return f.backends["blog1"].arrivals.Load() + f.backends["blog2"].arrivals.Load() }

	for _, tc := range []struct {
		method       string
		wantArrivals int64
		wantTook     time.Duration
	}{
		{http.MethodPost, 1, testWriteReadTimeout},
		{http.MethodPatch, 1, testWriteReadTimeout},
		{http.MethodGet, 2, 2 * testReadTimeout},
	} {
		before := arrivals()
		start := time.Now()
		a := f.do(t, tc.method, "/blog/write", nil, `{"title":"x"}`)
		took := time.Since(start)
		id := a.header.Get("X-Request-ID")
		if a.status != http.StatusGatewayTimeout || a.raw != fmt.Sprintf(ErrorTemplateJSON, "The upstream server is timing out", id) {
			t.Errorf("%s: %d %s, want Kong's 504", tc.method, a.status, a.raw)
		}
		if took < tc.wantTook || took > tc.wantTook+250*time.Millisecond {
			t.Errorf("%s answered after %v, want %v", tc.method, took, tc.wantTook)
		}
		if got := arrivals() - before; got != tc.wantArrivals {
			t.Errorf("%s reached the targets %d times, want %d", tc.method, got, tc.wantArrivals)
		}
	}
}

// An ejected target comes back when an active health probe passes again.
func TestEjectedTargetReturnsAfterAPassingProbe(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	b := f.backends["blog1"]
	b.frozen.Store(true)
	// Concurrent reads reach blog1 before its health probes time out; two
	// of them time out there and eject it.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, f.url+"/blog/x", nil)
			req.Header.Set("x-api-key", goodKey)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if s := f.stats("blog1"); !s.Down {
		t.Fatalf("blog1 not ejected: %+v", s)
	}
	b.frozen.Store(false) // SIGCONT
	waitFor(t, func() bool { s := f.stats("blog1"); return !s.Down && s.Ready })
	before := b.hits.Load()
	for range 4 {
		f.do(t, http.MethodGet, "/blog/x", nil, "")
	}
	if b.hits.Load() == before {
		t.Error("the target that is healthy again gets no traffic")
	}
}

// A target that stops in the middle of a response body is cut off after
// read_timeout instead of holding the client.
func TestStalledBodyIsCutAfterReadTimeout(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, name := range []string{"blog1", "blog2"} {
		b := f.backends[name]
		b.answer = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			fmt.Fprint(w, "partial")
			w.(http.Flusher).Flush()
			select {
			case <-b.release:
			case <-r.Context().Done():
			}
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/blog/x", nil)
	req.Header.Set("x-api-key", goodKey)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		// The headers may or may not have reached the client before the
		// cut; the body never completes.
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("body %q read in full; want it cut off", body)
		}
	}
	took := time.Since(start)
	if took < testReadTimeout || took > testReadTimeout+250*time.Millisecond {
		t.Errorf("cut off after %v, want read_timeout %v", took, testReadTimeout)
	}
}

// retries bounds the attempts: 1 + retries, each on a different target.
func TestRetriesAreBounded(t *testing.T) {
	for _, tc := range []struct {
		retries      int
		wantAttempts int64
	}{{0, 1}, {1, 2}, {2, 3}, {5, 3}} {
		t.Run(fmt.Sprint(tc.retries), func(t *testing.T) {
			addrs := map[string]string{"t1": refusingAddr(t), "t2": refusingAddr(t), "t3": refusingAddr(t)}
			gw := newTestGateway(t, fmt.Sprintf(`
services:
  - {name: s, url: "http://up", retries: %d, routes: [{name: r, paths: [/]}]}
upstreams:
  - name: up
    targets: [{target: "t1:8000"}, {target: "t2:8000"}, {target: "t3:8000"}]
`, tc.retries), addrs, nil)
			srv := httptest.NewServer(gw)
			t.Cleanup(srv.Close)
			resp, err := http.Post(srv.URL+"/x", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var attempts int64
			for _, s := range gw.Stats() {
				attempts += s.Failures
			}
			if resp.StatusCode != http.StatusBadGateway || attempts != tc.wantAttempts {
				t.Errorf("status %d after %d attempts, want 502 after %d", resp.StatusCode, attempts, tc.wantAttempts)
			}
		})
	}
}

// Kong 3's router: a route that sets methods outranks one that does not,
// whatever the path lengths; among equals the longest path wins; ties go to
// the route defined first.
func TestRoutePriorityFollowsKong(t *testing.T) {
	gw := newTestGateway(t, `
services:
  - name: s
    url: "http://h:8000"
    routes:
      - {name: long-any, paths: [/blog/admin]}
      - {name: read, paths: [/blog], methods: [GET, HEAD]}
      - {name: write, paths: [/blog]}
      - {name: write-twin, paths: [/blog]}
      - {name: root, paths: [/]}
      - {name: root-get, paths: [/], methods: [GET]}
`, map[string]string{"h": refusingAddr(t)}, nil)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/blog/x", "read"},
		{"HEAD", "/blog", "read"},
		{"POST", "/blog/x", "write"},
		{"DELETE", "/blog/admin/x", "long-any"},
		{"GET", "/blog/admin/x", "read"}, // methods beat a longer path
		{"POST", "/other", "root"},
		{"GET", "/other", "root-get"},
		{"GET", "/blogger", "read"}, // plain prefix, as in Kong
	} {
		rt, _ := gw.match(tc.method, tc.path)
		if rt == nil || rt.name != tc.want {
			got := "<none>"
			if rt != nil {
				got = rt.name
			}
			t.Errorf("%s %s -> %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// The plugin's rate limit: counted before the key check, its budget headers
// on every answer of a limited path, 429 in the envelope with Retry-After.
func TestRateLimitOnSignIn(t *testing.T) {
	now := time.Date(2025, 1, 1, 10, 0, 15, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, fixtureOptions{now: clock})
	for i := 1; i <= 3; i++ {
		header := map[string]string(nil)
		if i == 2 {
			header = map[string]string{"x-api-key": ""} // denied by the key check, still counted
		}
		a := f.do(t, http.MethodPost, "/auth/signin/basic", header, "{}")
		wantStatus := 200
		if i == 2 {
			wantStatus = 401
		}
		if a.status != wantStatus || a.header.Get("X-RateLimit-Limit-Minute") != "3" || a.header.Get("X-RateLimit-Remaining-Minute") != fmt.Sprint(3-i) {
			t.Fatalf("request %d: %d limit %q remaining %q", i, a.status, a.header.Get("X-RateLimit-Limit-Minute"), a.header.Get("X-RateLimit-Remaining-Minute"))
		}
	}
	hits := f.backends["auth1"].hits.Load() + f.backends["auth2"].hits.Load()
	a := f.do(t, http.MethodPost, "/auth/signin/basic", nil, "{}")
	retryAfter, _ := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != 429 || a.raw != `{"code":"10001","status":429,"message":"too many requests"}` || retryAfter < 1 || retryAfter > 120 ||
		a.header.Get("X-RateLimit-Remaining-Minute") != "0" || a.header.Get("X-Request-ID") == "" {
		t.Fatalf("4th: %d %s headers %v", a.status, a.raw, a.header)
	}
	if got := f.backends["auth1"].hits.Load() + f.backends["auth2"].hits.Load(); got != hits {
		t.Error("a limited request reached the service")
	}
	// Other paths are not limited and carry no budget headers.
	if a := f.do(t, http.MethodPost, "/auth/signup/basic", nil, "{}"); a.status != 200 || a.header.Get("X-RateLimit-Limit-Minute") != "" {
		t.Errorf("unlimited path: %d %v", a.status, a.header)
	}
	mu.Lock()
	now = now.Add(time.Duration(retryAfter) * time.Second)
	mu.Unlock()
	if a := f.do(t, http.MethodPost, "/auth/signin/basic", nil, "{}"); a.status != 200 {
		t.Errorf("after Retry-After: %d %s", a.status, a.raw)
	}
}

func (f *fixture) stats(name string) TargetStats {
	for _, s := range f.gw.Stats() {
		if s.Name == name {
			return s
		}
	}
	return TargetStats{}
}

func (f *fixture) targetReady(name string) bool {
	for _, s := range f.gw.Stats() {
		if s.Name == name {
			return s.Ready
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	wait.Eventually(t, 5*time.Second, "condition", cond)
}

// blackholeAddr is a loopback address whose SYNs go unanswered: a listener
// with a full accept queue that never accepts, so a connection attempt
// hangs like one to a lost node.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue; later SYNs are dropped.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Fatal("the accept queue does not fill up")
		}
	}
	return addr
}

// A connection that cannot be made within connect_timeout reached nothing:
// every method is retried on the other target, and the target is ejected
// after timeouts (2) in a row.
func TestConnectTimeoutIsRetriedForEveryMethod(t *testing.T) {
	healthy := newBackend(t, "t2")
	gw := newTestGateway(t, `
services:
  - {name: s, url: "http://up", connect_timeout: 100, read_timeout: 2000, retries: 1, routes: [{name: r, paths: [/]}]}
upstreams:
  - name: up
    # Only timeouts count here: ejection proves the attempts were timeouts.
    healthchecks: {passive: {unhealthy: {tcp_failures: 0, timeouts: 2}}}
    targets: [{target: "t1:8000"}, {target: "t2:8000"}]
`, map[string]string{"t1": blackholeAddr(t), "t2": healthy.addr()}, nil)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	for _, method := range []string{http.MethodPost, http.MethodPatch, http.MethodGet, http.MethodPost} {
		start := time.Now()
		req, _ := http.NewRequest(method, srv.URL+"/x", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != 200 || took > time.Second {
			t.Errorf("%s: %d after %v, want 200 from t2 after at most one connect_timeout", method, resp.StatusCode, took)
		}
	}
	var t1 TargetStats
	for _, s := range gw.Stats() {
		if s.Name == "t1" {
			t1 = s
		}
	}
	if t1.Failures != 2 || !t1.Down || healthy.arrivals.Load() != 4 {
		t.Errorf("t1 %+v, t2 got %d requests: want t1 ejected after 2 connect timeouts and every request on t2", t1, healthy.arrivals.Load())
	}
}
