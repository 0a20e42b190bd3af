package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	mu             sync.Mutex
	last           *http.Request
	body           string
	answer         func(w http.ResponseWriter, r *http.Request) // nil: 200 envelope naming the backend
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.ready.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" && r.Header.Get("X-Real-IP") == "" {
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
	return b
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

// testKong is a small load-balanced file in the shape of the repo's one.
const testKong = `
_format_version: "3.0"
services:
  - name: auth
    url: http://auth_upstream
    routes:
      - {name: auth, paths: [/auth], strip_path: true}
  - name: auth-signin
    url: http://auth_upstream/signin/basic
    routes:
      - name: auth-signin
        paths: [/auth/signin/basic]
        plugins:
          - name: rate-limiting
            config: {minute: 3, limit_by: ip, error_code: 429, error_message: too many requests}
  - name: blog
    url: http://blog_upstream
    routes:
      - {name: blog, paths: [/blog]}
  - name: open
    url: http://blog_upstream/public
    routes:
      - name: open
        paths: [/open]
        plugins:
          - {name: apikey-auth-plugin, config: {bypass: true}}
upstreams:
  - name: auth_upstream
    targets:
      - {target: "auth1:8000", weight: 100}
      - {target: "auth2:8000", weight: 100}
  - name: blog_upstream
    healthchecks: {active: {http_path: /health/ready}}
    targets:
      - {target: "blog1:8000", weight: %d}
      - {target: "blog2:8000", weight: 100}
plugins:
  - name: apikey-auth-plugin
    config:
      verification_urls: [http://verifier:8000/verify/apikey]
      timeout_ms: 1000
      cache_ttl_seconds: 0
      public_paths: [/auth/health/ready, /blog/health/live, /blog/health/ready]
`

type fixture struct {
	gw       *Gateway
	url      string
	backends map[string]*backend
	verifies *atomic.Int64
}

type fixtureOptions struct {
	blog1Weight int
	now         func() time.Time
	// dead names targets whose address refuses connections.
	dead map[string]bool
	// withoutHealthChecks leaves the active checks off, so only passive
	// (connection failure) marks apply.
	withoutHealthChecks bool
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

	cfg, err := kongconf.Parse(fmt.Appendf(nil, testKong, o.blog1Weight))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(Options{
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
		Now:            o.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !o.withoutHealthChecks {
			gw.Run(ctx)
		}
	}()
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		gw.Close()
	})
	f.gw, f.url = gw, srv.URL
	return f
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
		{"/auth/signin/basic", "/signin/basic", "/auth/signin/basic"},
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

func TestNoRouteIsKongs404WithoutAKeyCheck(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	before := f.verifies.Load()
	a := f.do(t, http.MethodGet, "/nothing", map[string]string{"x-api-key": ""}, "")
	if a.status != http.StatusNotFound || a.body["message"] != "no Route matched with those values" {
		t.Fatalf("got %d %s", a.status, a.raw)
	}
	if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") || a.header.Get("X-Request-ID") == "" {
		t.Errorf("headers %v", a.header)
	}
	if f.verifies.Load() != before {
		t.Error("the plugin must not run for unmatched paths")
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

func TestRefusedTargetIsSkippedAndEveryMethodRetried(t *testing.T) {
	f := newFixture(t, fixtureOptions{dead: map[string]bool{"auth1": true}, withoutHealthChecks: true})
	for i := range 6 {
		method := []string{http.MethodGet, http.MethodPost}[i%2]
		body := fmt.Sprintf(`{"n":%d}`, i)
		a := f.do(t, method, "/auth/thing", map[string]string{"Content-Type": "application/json"}, body)
		if a.status != 200 || a.body["message"] != "auth2" {
			t.Fatalf("%s #%d: %d %s", method, i, a.status, a.raw)
		}
		if _, got := f.backends["auth2"].lastRequest(); got != body {
			t.Errorf("%s #%d: body %q reached the second target as %q", method, i, body, got)
		}
	}
	for _, s := range f.gw.Stats() {
		if s.Name == "auth1" {
			if !s.Down || s.Failures != 1 {
				t.Errorf("the refusing target should be marked down after one failure: %+v", s)
			}
		}
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
	if a.status != http.StatusBadGateway || a.header.Get("X-Request-ID") == "" {
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

func TestRateLimitOnSignIn(t *testing.T) {
	now := time.Date(2025, 1, 1, 10, 0, 15, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, fixtureOptions{now: clock})
	for i := 1; i <= 3; i++ {
		a := f.do(t, http.MethodPost, "/auth/signin/basic", nil, "{}")
		if a.status != 200 || a.header.Get("X-RateLimit-Remaining-Minute") != fmt.Sprint(3-i) {
			t.Fatalf("request %d: %d remaining %q", i, a.status, a.header.Get("X-RateLimit-Remaining-Minute"))
		}
	}
	a := f.do(t, http.MethodPost, "/auth/signin/basic", nil, "{}")
	if a.status != 429 || a.body["message"] != "too many requests" || a.body["status"] != float64(429) || a.header.Get("Retry-After") != "45" {
		t.Fatalf("4th: %d %s Retry-After %q", a.status, a.raw, a.header.Get("Retry-After"))
	}
	// Other routes are not limited.
	if a := f.do(t, http.MethodPost, "/auth/signup/basic", nil, "{}"); a.status != 200 {
		t.Errorf("unlimited route: %d", a.status)
	}
	mu.Lock()
	now = now.Add(45 * time.Second) // the next minute window
	mu.Unlock()
	if a := f.do(t, http.MethodPost, "/auth/signin/basic", nil, "{}"); a.status != 200 {
		t.Errorf("next window: %d", a.status)
	}
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
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
