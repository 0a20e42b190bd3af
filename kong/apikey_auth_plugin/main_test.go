package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
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

func TestAccessNeverCachesRejectedKey(t *testing.T) {
	stub := newAuthStub(t)
	cfg := configFromKong(t, map[string]any{"verification_urls": []string{stub.url}, "cache_ttl_seconds": 5})
	for range 2 {
		if env := request(t, cfg, http.Header{"X-Api-Key": {"wrong"}}); env.ClientRes.Status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", env.ClientRes.Status)
		}
	}
	if got := stub.calls.Load(); got != 2 {
		t.Errorf("calls to auth = %d, want 2", got)
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
