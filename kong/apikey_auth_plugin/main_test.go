package main

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Kong/go-pdk/test"

	"blogplatform/kong/apikey_auth_plugin/verify"
)

const validKey = "1D3F2DD1A5DE725DD4DF1D82BBB37"

// authStub stands in for auth_service's GET /verify/apikey and counts calls.
type authStub struct {
	calls atomic.Int64
	url   string
}

func newAuthStub(t *testing.T) *authStub {
	t.Helper()
	stub := &authStub{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stub.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch r.Header.Get("x-api-key") {
		case "":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(verify.EnvelopeBody(http.StatusUnauthorized, verify.MessageMissingKey))
		case validKey:
			_, _ = w.Write([]byte(`{"code":"10000","status":200,"message":"success"}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write(verify.EnvelopeBody(http.StatusForbidden, verify.MessageInvalidKey))
		}
	}))
	t.Cleanup(server.Close)
	stub.url = server.URL + "/verify/apikey"
	return stub
}

func refusedURL(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	_ = listener.Close()
	return "http://" + addr + "/verify/apikey"
}

func slowVerifierURL(t *testing.T) string {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(server.Close)
	return server.URL + "/verify/apikey"
}

// configFromKong decodes the plugin configuration the way go-pdk's
// StartInstance does: JSON (with Kong's __seq__ metadata) into New()'s value.
func configFromKong(t *testing.T, kongConfig map[string]any) *Config {
	t.Helper()
	kongConfig["__seq__"] = 1
	raw, err := json.Marshal(kongConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := New().(*Config)
	if err := json.Unmarshal(raw, cfg); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return cfg
}

// request runs one client request through the plugin and Kong's simulated
// echo upstream.
func request(t *testing.T, cfg *Config, headers http.Header) *test.TestEnv {
	t.Helper()
	env, err := test.New(t, test.Request{
		Method:  "GET",
		Url:     "http://gateway.test/blog/list/latest",
		Headers: headers,
	})
	if err != nil {
		t.Fatal(err)
	}
	env.DoHttps(cfg)
	return env
}

func TestAccess(t *testing.T) {
	stub := newAuthStub(t)

	tests := []struct {
		name        string
		urls        []string
		timeoutMs   int
		headers     http.Header
		wantStatus  int
		wantMessage string // for denials
		wantCalls   int64
		maxDuration time.Duration
	}{
		{name: "no key header", urls: []string{stub.url}, headers: http.Header{},
			wantStatus: 401, wantMessage: verify.MessageMissingKey, wantCalls: 0},
		{name: "empty key header", urls: []string{stub.url}, headers: http.Header{"X-Api-Key": {""}},
			wantStatus: 401, wantMessage: verify.MessageMissingKey, wantCalls: 0},
		{name: "invalid key gets auth's 403", urls: []string{stub.url}, headers: http.Header{"X-Api-Key": {"wrong"}},
			wantStatus: 403, wantMessage: verify.MessageInvalidKey, wantCalls: 1},
		{name: "valid key reaches the upstream", urls: []string{stub.url}, headers: http.Header{"X-Api-Key": {validKey}},
			wantStatus: 200, wantCalls: 1},
		{name: "header name is case-insensitive", urls: []string{stub.url}, headers: http.Header{"X-API-KEY": {validKey}},
			wantStatus: 200, wantCalls: 1},
		{name: "first verifier down, second up", urls: []string{refusedURL(t), stub.url}, headers: http.Header{"X-Api-Key": {validKey}},
			wantStatus: 200, wantCalls: 1},
		{name: "every verifier down", urls: []string{refusedURL(t), refusedURL(t)}, headers: http.Header{"X-Api-Key": {validKey}},
			wantStatus: 503, wantMessage: verify.MessageUnavailable},
		{name: "no verification_urls configured", urls: nil, headers: http.Header{"X-Api-Key": {validKey}},
			wantStatus: 503, wantMessage: verify.MessageUnavailable},
		{name: "verifier slower than timeout_ms", urls: []string{slowVerifierURL(t)}, timeoutMs: 100, headers: http.Header{"X-Api-Key": {validKey}},
			wantStatus: 503, wantMessage: verify.MessageUnavailable, maxDuration: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := stub.calls.Load()
			cfg := configFromKong(t, map[string]any{"verification_urls": tc.urls, "timeout_ms": tc.timeoutMs})

			start := time.Now()
			env := request(t, cfg, tc.headers)
			elapsed := time.Since(start)

			if env.ClientRes.Status != tc.wantStatus {
				t.Fatalf("client status = %d, want %d (body %s)", env.ClientRes.Status, tc.wantStatus, env.ClientRes.Body)
			}
			if got := stub.calls.Load() - before; got != tc.wantCalls {
				t.Errorf("calls to auth = %d, want %d", got, tc.wantCalls)
			}
			if tc.maxDuration > 0 && elapsed > tc.maxDuration {
				t.Errorf("took %v, want under %v", elapsed, tc.maxDuration)
			}
			if tc.wantStatus == http.StatusOK {
				// The echo upstream got the request unchanged, key included.
				if got := env.ServiceReq.Headers.Get("x-api-key"); got != validKey {
					t.Errorf("upstream saw x-api-key %q, want the client's key", got)
				}
				return
			}
			if ct := env.ClientRes.Headers.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(env.ClientRes.Body, &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", env.ClientRes.Body, err)
			}
			want := map[string]any{"code": "10001", "status": float64(tc.wantStatus), "message": tc.wantMessage}
			if len(body) != len(want) || body["code"] != want["code"] || body["status"] != want["status"] || body["message"] != want["message"] {
				t.Errorf("body = %v, want %v (status a number)", body, want)
			}
		})
	}
}

func TestAccessCachesAcceptedKeyPerPluginInstance(t *testing.T) {
	tests := []struct {
		name      string
		cacheTTL  int
		wantCalls int64
	}{
		{name: "cache_ttl_seconds 5: second request is not verified again", cacheTTL: 5, wantCalls: 1},
		{name: "cache_ttl_seconds 0: every request is verified", cacheTTL: 0, wantCalls: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub := newAuthStub(t)
			cfg := configFromKong(t, map[string]any{"verification_urls": []string{stub.url}, "cache_ttl_seconds": tc.cacheTTL})
			for i := range 2 {
				if env := request(t, cfg, http.Header{"X-Api-Key": {validKey}}); env.ClientRes.Status != http.StatusOK {
					t.Fatalf("request %d: status %d", i, env.ClientRes.Status)
				}
			}
			if got := stub.calls.Load(); got != tc.wantCalls {
				t.Errorf("calls to auth = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

// A rejected key is answered from the negative cache for a few seconds
// (negative_ttl_seconds, default 5), so repeating a bad key costs auth one
// call; a negative value turns that off.
func TestAccessCachesRejectedKeyBriefly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		config    map[string]any
		wantCalls int64
	}{
		{name: "default", config: map[string]any{}, wantCalls: 1},
		{name: "negative_ttl_seconds 5", config: map[string]any{"negative_ttl_seconds": 5}, wantCalls: 1},
		{name: "negative_ttl_seconds -1", config: map[string]any{"negative_ttl_seconds": -1}, wantCalls: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newAuthStub(t)
			config := map[string]any{"verification_urls": []string{stub.url}, "cache_ttl_seconds": 5}
			maps.Copy(config, tc.config)
			cfg := configFromKong(t, config)
			for range 3 {
				env := request(t, cfg, http.Header{"X-Api-Key": {"wrong"}})
				if env.ClientRes.Status != http.StatusForbidden {
					t.Fatalf("status %d, want 403", env.ClientRes.Status)
				}
				assertEnvelope(t, env, 403)
			}
			if got := stub.calls.Load(); got != tc.wantCalls {
				t.Errorf("calls to auth = %d, want %d", got, tc.wantCalls)
			}
			// The good key is not affected.
			if env := request(t, cfg, http.Header{"X-Api-Key": {validKey}}); env.ClientRes.Status != 200 {
				t.Errorf("valid key: status %d", env.ClientRes.Status)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name        string
		kongConfig  map[string]any
		wantTimeout time.Duration
		wantTTL     time.Duration
	}{
		{name: "absent values", kongConfig: map[string]any{}, wantTimeout: 2 * time.Second, wantTTL: 0},
		{name: "Kong's nulls for unset fields", kongConfig: map[string]any{"timeout_ms": nil, "cache_ttl_seconds": nil}, wantTimeout: 2 * time.Second, wantTTL: 0},
		{name: "negative values", kongConfig: map[string]any{"timeout_ms": -5, "cache_ttl_seconds": -1}, wantTimeout: 2 * time.Second, wantTTL: -time.Second},
		{name: "explicit values", kongConfig: map[string]any{"timeout_ms": 150, "cache_ttl_seconds": 5}, wantTimeout: 150 * time.Millisecond, wantTTL: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := configFromKong(t, tc.kongConfig).verifyConfig()
			if got.Timeout != tc.wantTimeout || got.CacheTTL != tc.wantTTL {
				t.Errorf("timeout %v ttl %v, want %v and %v", got.Timeout, got.CacheTTL, tc.wantTimeout, tc.wantTTL)
			}
		})
	}
}

func TestAccessConcurrentRequestsShareOneVerifier(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{"verification_urls": []string{stub.url}, "cache_ttl_seconds": 60})
	if status := request(t, cfg, http.Header{"X-Api-Key": {validKey}}).ClientRes.Status; status != http.StatusOK {
		t.Fatalf("first request: status %d", status)
	}

	const requests = 16
	statuses := make(chan int, requests)
	for range requests {
		go func() {
			statuses <- request(t, cfg, http.Header{"X-Api-Key": {validKey}}).ClientRes.Status
		}()
	}
	for range requests {
		if status := <-statuses; status != http.StatusOK {
			t.Errorf("status %d, want 200", status)
		}
	}
	// Every concurrent request used the verifier (and cache) the first request
	// built: auth was asked once in total.
	if got := stub.calls.Load(); got != 1 {
		t.Errorf("calls to auth = %d, want 1", got)
	}
}

func TestAccessLetsHealthProbesThroughWithoutKey(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{
		"verification_urls": []string{stub.url},
		"public_paths":      []string{"/blog/health/ready", "/auth/health/live"},
	})
	tests := []struct {
		method, url string
		wantStatus  int
	}{
		{"GET", "http://gateway.test/blog/health/ready", 200},
		{"GET", "http://gateway.test/auth/health/live", 200},
		{"POST", "http://gateway.test/blog/health/ready", 401},
		{"GET", "http://gateway.test/blog/x/health/ready", 401},
		{"GET", "http://gateway.test/blog/list/latest", 401},
	}
	for _, tc := range tests {
		before := stub.calls.Load()
		req := test.Request{Method: tc.method, Url: tc.url, Headers: http.Header{}}
		if tc.method == "POST" {
			req.Body = []byte("{}")
		}
		env, err := test.New(t, req)
		if err != nil {
			t.Fatal(err)
		}
		env.DoHttps(cfg)
		if env.ClientRes.Status != tc.wantStatus {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.url, env.ClientRes.Status, tc.wantStatus)
		}
		if stub.calls.Load() != before {
			t.Errorf("%s %s: the key check called auth", tc.method, tc.url)
		}
	}
}

func TestAccessBypassOpensTheRoute(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{"verification_urls": []string{stub.url}, "bypass": true})
	env := request(t, cfg, http.Header{})
	if env.ClientRes.Status != 200 || stub.calls.Load() != 0 {
		t.Fatalf("bypass: status %d, %d calls", env.ClientRes.Status, stub.calls.Load())
	}
}

// fixedVerifier answers every verification with one status and body and
// counts its calls.
func fixedVerifier(t *testing.T, status int, body string, calls *atomic.Int64) string {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(server.Close)
	return server.URL + "/verify/apikey"
}

func TestAccessFailsOverOnUpstreamErrors(t *testing.T) {
	tests := []struct {
		name       string
		first      func(t *testing.T, calls *atomic.Int64) string // the URL tried first
		firstCalls int64
		second     func(t *testing.T, calls *atomic.Int64) string
		wantStatus int
		wantCalls  [2]int64 // calls to first and second URL
	}{
		{name: "502 on the first URL, 200 on the second: allowed",
			first: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 502, "<html>502 Bad Gateway</html>", c)
			},
			second: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 200, `{"code":"10000","status":200,"message":"success"}`, c)
			},
			wantStatus: 200, wantCalls: [2]int64{1, 1}},
		{name: "503 on every URL: 503 envelope",
			first: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 503, `{"code":"10001","status":503,"message":"not ready"}`, c)
			},
			second: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 503, "Service Unavailable", c)
			},
			wantStatus: 503, wantCalls: [2]int64{1, 1}},
		{name: "504 then a non-envelope 404 from a proxy: 503 envelope",
			first: func(t *testing.T, c *atomic.Int64) string { return fixedVerifier(t, 504, "", c) },
			second: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 404, "404 page not found", c)
			},
			wantStatus: 503, wantCalls: [2]int64{1, 1}},
		{name: "401 on the first URL is the answer: the second is never called",
			first: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 401, string(verify.EnvelopeBody(401, verify.MessageMissingKey)), c)
			},
			second: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 200, `{"code":"10000","status":200,"message":"success"}`, c)
			},
			wantStatus: 401, wantCalls: [2]int64{1, 0}},
		{name: "403 on the first URL is the answer: the second is never called",
			first: func(t *testing.T, c *atomic.Int64) string { return fixedVerifier(t, 403, "Forbidden", c) },
			second: func(t *testing.T, c *atomic.Int64) string {
				return fixedVerifier(t, 200, `{"code":"10000","status":200,"message":"success"}`, c)
			},
			wantStatus: 403, wantCalls: [2]int64{1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls [2]atomic.Int64
			// A new instance starts its round robin at the first URL.
			cfg := configFromKong(t, map[string]any{"verification_urls": []string{tc.first(t, &calls[0]), tc.second(t, &calls[1])}})
			env := request(t, cfg, http.Header{"X-Api-Key": {validKey}})
			if env.ClientRes.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", env.ClientRes.Status, tc.wantStatus, env.ClientRes.Body)
			}
			if got := [2]int64{calls[0].Load(), calls[1].Load()}; got != tc.wantCalls {
				t.Errorf("calls to the URLs = %v, want %v", got, tc.wantCalls)
			}
			if tc.wantStatus != http.StatusOK {
				assertEnvelope(t, env, tc.wantStatus)
			}
		})
	}
}

// assertEnvelope checks the platform envelope: exactly code "10001", a
// numeric status equal to the HTTP status and a non-empty message, as JSON.
func assertEnvelope(t *testing.T, env *test.TestEnv, status int) map[string]any {
	t.Helper()
	if env.ClientRes.Status != status {
		t.Fatalf("status %d, want %d (body %s)", env.ClientRes.Status, status, env.ClientRes.Body)
	}
	if ct := env.ClientRes.Headers.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(env.ClientRes.Body, &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", env.ClientRes.Body, err)
	}
	message, _ := body["message"].(string)
	if len(body) != 3 || body["code"] != "10001" || body["status"] != float64(status) || message == "" {
		t.Errorf("body = %s, want {code:\"10001\", status:%d (a number), message:<non-empty>}", env.ClientRes.Body, status)
	}
	return body
}

func requestTo(t *testing.T, cfg *Config, method, url string, headers http.Header) *test.TestEnv {
	t.Helper()
	req := test.Request{Method: method, Url: url, Headers: headers}
	if method == "POST" {
		req.Body = []byte(`{"email":"a@b.c","password":"x"}`)
	}
	env, err := test.New(t, req)
	if err != nil {
		t.Fatal(err)
	}
	env.DoHttps(cfg)
	return env
}

const signinURL = "http://gateway.test/auth/signin/basic"

func TestEveryPluginResponseIsTheEnvelope(t *testing.T) {
	stub := newAuthStub(t)
	var downCalls atomic.Int64
	down := fixedVerifier(t, 503, "Service Unavailable", &downCalls)
	limited := []map[string]any{{"paths": []string{"/auth/signin/basic"}, "per_minute": 1}}

	tests := []struct {
		name    string
		config  map[string]any
		prime   int // requests sent first, to spend a budget
		headers http.Header
		status  int
		message string
	}{
		{name: "401 missing key", config: map[string]any{"verification_urls": []string{stub.url}},
			headers: http.Header{}, status: 401, message: verify.MessageMissingKey},
		{name: "403 invalid key", config: map[string]any{"verification_urls": []string{stub.url}},
			headers: http.Header{"X-Api-Key": {"wrong"}}, status: 403, message: verify.MessageInvalidKey},
		{name: "429 over the rate limit", config: map[string]any{"verification_urls": []string{stub.url}, "rate_limits": limited},
			prime: 1, headers: http.Header{"X-Api-Key": {validKey}}, status: 429, message: verify.MessageTooManyRequests},
		{name: "503 every verifier answers 5xx", config: map[string]any{"verification_urls": []string{down}},
			headers: http.Header{"X-Api-Key": {validKey}}, status: 503, message: verify.MessageUnavailable},
		{name: "503 every verifier unreachable", config: map[string]any{"verification_urls": []string{refusedURL(t)}},
			headers: http.Header{"X-Api-Key": {validKey}}, status: 503, message: verify.MessageUnavailable},
		{name: "500 invalid rate_limits", config: map[string]any{"verification_urls": []string{stub.url}, "rate_limits": []map[string]any{{"paths": []string{"/auth/signin/basic"}}}},
			headers: http.Header{"X-Api-Key": {validKey}}, status: 500, message: MessageMisconfigured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configFromKong(t, tc.config)
			for range tc.prime {
				if env := requestTo(t, cfg, "POST", signinURL, tc.headers); env.ClientRes.Status != 200 {
					t.Fatalf("priming request: status %d", env.ClientRes.Status)
				}
			}
			env := requestTo(t, cfg, "POST", signinURL, tc.headers)
			body := assertEnvelope(t, env, tc.status)
			if body["message"] != tc.message {
				t.Errorf("message = %v, want %q", body["message"], tc.message)
			}
		})
	}
}

func TestAccessRateLimitsPerInstance(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{
		"verification_urls": []string{stub.url},
		"rate_limits": []map[string]any{
			{"paths": []string{"/auth/signin/basic", "/auth/signup/basic"}, "per_minute": 3},
		},
	})
	key := http.Header{"X-Api-Key": {validKey}}

	// Allowed requests of a limited path carry the budget, like Kong's
	// bundled plugin; the count survives across requests of the instance.
	for i, remaining := range []string{"2", "1", "0"} {
		env := requestTo(t, cfg, "POST", signinURL, key)
		if env.ClientRes.Status != 200 {
			t.Fatalf("request %d: status %d", i+1, env.ClientRes.Status)
		}
		if env.ClientRes.Headers.Get("X-RateLimit-Limit-Minute") != "3" || env.ClientRes.Headers.Get("X-RateLimit-Remaining-Minute") != remaining {
			t.Errorf("request %d headers: %v, want limit 3, remaining %s", i+1, env.ClientRes.Headers, remaining)
		}
	}
	env := requestTo(t, cfg, "POST", signinURL, key)
	assertEnvelope(t, env, 429)
	h := env.ClientRes.Headers
	if retry, err := strconv.Atoi(h.Get("Retry-After")); err != nil || retry < 1 || retry > 120 {
		t.Errorf("Retry-After = %q, want whole seconds within the sliding window", h.Get("Retry-After"))
	}
	if h.Get("X-RateLimit-Limit-Minute") != "3" || h.Get("X-RateLimit-Remaining-Minute") != "0" {
		t.Errorf("429 headers = %v", h)
	}
	callsAt429 := stub.calls.Load()

	// The limit comes before the key check: a client guessing keys (or
	// sending none) is limited without auth being asked.
	for _, headers := range []http.Header{{"X-Api-Key": {"guess"}}, {}} {
		if env := requestTo(t, cfg, "POST", signinURL, headers); env.ClientRes.Status != 429 {
			t.Errorf("over the limit with key %q: status %d, want 429", headers.Get("X-Api-Key"), env.ClientRes.Status)
		}
	}
	if stub.calls.Load() != callsAt429 {
		t.Error("a rate-limited request reached auth")
	}

	// Sign-up has its own budget; unlimited paths have no budget headers.
	if env := requestTo(t, cfg, "POST", "http://gateway.test/auth/signup/basic", key); env.ClientRes.Status != 200 || env.ClientRes.Headers.Get("X-RateLimit-Remaining-Minute") != "2" {
		t.Errorf("sign-up: status %d headers %v, want 200 with its own budget", env.ClientRes.Status, env.ClientRes.Headers)
	}
	for range 5 {
		env := requestTo(t, cfg, "GET", "http://gateway.test/blog/list/latest", key)
		if env.ClientRes.Status != 200 || env.ClientRes.Headers.Get("X-RateLimit-Limit-Minute") != "" {
			t.Fatalf("unlimited path: status %d headers %v", env.ClientRes.Status, env.ClientRes.Headers)
		}
	}

	// Another configuration is another instance, with its own counts.
	other := configFromKong(t, map[string]any{
		"verification_urls": []string{stub.url},
		"rate_limits":       []map[string]any{{"paths": []string{"/auth/signin/basic"}, "per_minute": 3}},
	})
	if env := requestTo(t, other, "POST", signinURL, key); env.ClientRes.Status != 200 {
		t.Errorf("fresh instance: status %d, want 200", env.ClientRes.Status)
	}
}

func TestAccessDenialsCarryTheBudget(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{
		"verification_urls": []string{stub.url},
		"rate_limits":       []map[string]any{{"paths": []string{"/auth/signin/basic"}, "per_minute": 5}},
	})
	env := requestTo(t, cfg, "POST", signinURL, http.Header{"X-Api-Key": {"wrong"}})
	assertEnvelope(t, env, 403)
	if env.ClientRes.Headers.Get("X-RateLimit-Remaining-Minute") != "4" {
		t.Errorf("403 headers = %v, want the rate-limit budget too", env.ClientRes.Headers)
	}
}

func TestAccessRateLimitAppliesToPublicAndBypassedPaths(t *testing.T) {
	stub := newAuthStub(t)
	for _, extra := range []map[string]any{
		{"public_paths": []string{"/auth/health/ready"}},
		{"bypass": true},
	} {
		config := map[string]any{
			"verification_urls": []string{stub.url},
			"rate_limits":       []map[string]any{{"paths": []string{"/auth/health/ready"}, "per_minute": 2}},
		}
		maps.Copy(config, extra)
		cfg := configFromKong(t, config)
		for i, want := range []int{200, 200, 429} {
			env := requestTo(t, cfg, "GET", "http://gateway.test/auth/health/ready", http.Header{})
			if env.ClientRes.Status != want {
				t.Errorf("%v: request %d status %d, want %d", extra, i+1, env.ClientRes.Status, want)
			}
		}
	}
	if stub.calls.Load() != 0 {
		t.Errorf("public or bypassed paths called auth %d times", stub.calls.Load())
	}
}

// The plugin judges the path Kong's router matched and proxies (the
// normalised one), not the raw one: a dot segment neither adds a limit to a
// request that goes elsewhere nor takes a public path's exemption away.
func TestAccessJudgesTheNormalisedPath(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{
		"verification_urls": []string{stub.url},
		"public_paths":      []string{"/auth/health/ready"},
		"rate_limits":       []map[string]any{{"paths": []string{"/auth/signin/basic"}, "per_minute": 5}},
	})
	// Kong routes this to /auth/profile: not the limited path.
	env := requestTo(t, cfg, "POST", "http://gateway.test/auth/signin/basic/../../profile", http.Header{"X-Api-Key": {validKey}})
	if env.ClientRes.Status != 200 || env.ClientRes.Headers.Get("X-RateLimit-Limit-Minute") != "" {
		t.Errorf("/auth/signin/basic/../../profile: status %d headers %v, want 200 without a budget", env.ClientRes.Status, env.ClientRes.Headers)
	}
	// Kong routes this to /auth/signin/basic: limited.
	env = requestTo(t, cfg, "POST", "http://gateway.test/auth/x/..//signin/basic", http.Header{"X-Api-Key": {validKey}})
	if env.ClientRes.Headers.Get("X-RateLimit-Remaining-Minute") != "4" {
		t.Errorf("/auth/x/..//signin/basic: headers %v, want the sign-in budget", env.ClientRes.Headers)
	}
	before := stub.calls.Load()
	env = requestTo(t, cfg, "GET", "http://gateway.test/auth/health/./ready", http.Header{})
	if env.ClientRes.Status != 200 || stub.calls.Load() != before {
		t.Errorf("/auth/health/./ready without a key: status %d, want 200 without asking auth", env.ClientRes.Status)
	}
}

func TestAccessRateLimitIsExactUnderConcurrency(t *testing.T) {
	stub := newAuthStub(t)
	const limit = 10
	cfg := configFromKong(t, map[string]any{
		"verification_urls": []string{stub.url},
		"cache_ttl_seconds": 60,
		"rate_limits":       []map[string]any{{"paths": []string{"/auth/signin/basic"}, "per_minute": limit}},
	})
	const requests = 30
	statuses := make(chan int, requests)
	for range requests {
		go func() {
			statuses <- requestTo(t, cfg, "POST", signinURL, http.Header{"X-Api-Key": {validKey}}).ClientRes.Status
		}()
	}
	counts := map[int]int{}
	for range requests {
		counts[<-statuses]++
	}
	if counts[200] != limit || counts[429] != requests-limit {
		t.Errorf("statuses = %v, want %d × 200 and %d × 429", counts, limit, requests-limit)
	}
}

// Kong starts one plugin instance per nginx worker for the same
// configuration; the plugin server's instances must count together, or a
// client would get the budget once per worker.
func TestInstancesOfOneConfigurationShareTheBudget(t *testing.T) {
	stub := newAuthStub(t)
	constructor := newShared()
	instance := func(perMinute int) *Config {
		raw, err := json.Marshal(map[string]any{
			"__seq__": 1, "verification_urls": []string{stub.url},
			"rate_limits": []map[string]any{{"paths": []string{"/auth/signin/basic"}, "per_minute": perMinute}},
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg := constructor().(*Config)
		if err := json.Unmarshal(raw, cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	worker1, worker2, otherRules := instance(2), instance(2), instance(5)
	key := http.Header{"X-Api-Key": {validKey}}
	for _, cfg := range []*Config{worker1, worker2} {
		if status := requestTo(t, cfg, "POST", signinURL, key).ClientRes.Status; status != 200 {
			t.Fatalf("status %d, want 200", status)
		}
	}
	for name, cfg := range map[string]*Config{"worker 1": worker1, "worker 2": worker2} {
		if status := requestTo(t, cfg, "POST", signinURL, key).ClientRes.Status; status != 429 {
			t.Errorf("%s: status %d after the shared budget of 2 was spent, want 429", name, status)
		}
	}
	if status := requestTo(t, otherRules, "POST", signinURL, key).ClientRes.Status; status != 200 {
		t.Errorf("instance with other rules: status %d, want its own budget", status)
	}
}
