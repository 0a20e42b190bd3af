package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"blogplatform/kong/apikey_auth_plugin/ratelimit"
)

const goodKey = "good-key"

// verifierStub is an auth_service stand-in: it accepts goodKey, answers the
// reference's 401/403 envelopes otherwise, and counts calls.
type verifierStub struct {
	calls   atomic.Int64
	lastKey atomic.Value
	server  *httptest.Server
}

func newVerifierStub(t *testing.T) *verifierStub {
	t.Helper()
	stub := &verifierStub{}
	stub.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stub.calls.Add(1)
		key := r.Header.Get(HeaderName)
		stub.lastKey.Store(key)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method != http.MethodGet || r.URL.Path != "/verify/apikey":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(EnvelopeBody(http.StatusNotFound, "url not found"))
		case key == "":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(EnvelopeBody(http.StatusUnauthorized, MessageMissingKey))
		case key == goodKey:
			_, _ = w.Write([]byte(`{"code":"10000","status":200,"message":"success"}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write(EnvelopeBody(http.StatusForbidden, MessageInvalidKey))
		}
	}))
	t.Cleanup(stub.server.Close)
	return stub
}

func (s *verifierStub) url() string { return s.server.URL + "/verify/apikey" }

// fixedAnswer serves one canned status and body and counts calls.
func fixedAnswer(t *testing.T, status int, body string, calls *atomic.Int64) string {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(server.Close)
	return server.URL + "/verify/apikey"
}

// deadURL returns a URL whose port refuses connections.
func deadURL(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	if err := listener.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/verify/apikey"
}

// hangUpURL accepts connections and closes them without answering (a
// transport error that, unlike a refused port, can be counted).
func hangUpURL(t *testing.T, calls *atomic.Int64) string {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	}))
	t.Cleanup(server.Close)
	return server.URL + "/verify/apikey"
}

// slowURL answers only after the request is abandoned by the client.
func slowURL(t *testing.T) string {
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

func decodeEnvelope(t *testing.T, body []byte) Envelope {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if _, isNumber := raw["status"].(float64); !isNumber {
		t.Fatalf("status in %s is not a JSON number", body)
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

// fakeClock lets cache expiry and replica cool-down be tested without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestVerifyDecisions(t *testing.T) {
	stub := newVerifierStub(t)
	var otherCalls atomic.Int64

	tests := []struct {
		name        string
		urls        []string
		key         string
		wantAllow   bool
		wantStatus  int
		wantMessage string // checked when !wantAllow
		wantBody    string // exact body, when the verifier's own envelope must pass through
		wantCalls   int64  // calls the stub receives
		wantErr     bool
	}{
		{name: "missing key is 401 without a call", urls: []string{stub.url()}, key: "",
			wantStatus: 401, wantMessage: MessageMissingKey, wantCalls: 0},
		{name: "valid key passes", urls: []string{stub.url()}, key: goodKey,
			wantAllow: true, wantStatus: 200, wantCalls: 1},
		{name: "invalid key: the verifier's 403 envelope passes through", urls: []string{stub.url()}, key: "nope",
			wantStatus: 403, wantMessage: MessageInvalidKey, wantBody: string(EnvelopeBody(403, MessageInvalidKey)), wantCalls: 1},
		{name: "no URLs configured is 503", urls: nil, key: goodKey,
			wantStatus: 503, wantMessage: MessageUnavailable, wantErr: true},
		{name: "only verifier down is 503", urls: []string{deadURL(t)}, key: goodKey,
			wantStatus: 503, wantMessage: MessageUnavailable, wantErr: true},
		{name: "all verifiers down is 503", urls: []string{deadURL(t), deadURL(t)}, key: goodKey,
			wantStatus: 503, wantMessage: MessageUnavailable, wantErr: true},
		{name: "first down, second answers", urls: []string{deadURL(t), stub.url()}, key: goodKey,
			wantAllow: true, wantStatus: 200, wantCalls: 1},
		{name: "first down, second rejects", urls: []string{deadURL(t), stub.url()}, key: "nope",
			wantStatus: 403, wantMessage: MessageInvalidKey, wantCalls: 1},
		{name: "string status from a verifier is rebuilt with a number",
			urls: []string{fixedAnswer(t, 403, `{"code":"10001","status":"403","message":"x"}`, &otherCalls)}, key: "k",
			wantStatus: 403, wantMessage: MessageInvalidKey, wantErr: true},
		{name: "envelope whose status disagrees with HTTP is rebuilt",
			urls: []string{fixedAnswer(t, 401, `{"code":"10001","status":403,"message":"x"}`, &otherCalls)}, key: "k",
			wantStatus: 401, wantMessage: MessageInvalidKey, wantErr: true},
		{name: "a plain text 500 is not an answer: 503",
			urls: []string{fixedAnswer(t, 500, `dial tcp: connection refused`, &otherCalls)}, key: "k",
			wantStatus: 503, wantMessage: MessageUnavailable, wantErr: true},
		{name: "a 5xx on every URL is 503, even the verifier's own 500 envelope",
			urls: []string{
				fixedAnswer(t, 500, `{"code":"10001","status":500,"message":"something went wrong"}`, &otherCalls),
				fixedAnswer(t, 502, `<html>Bad Gateway</html>`, &otherCalls),
				fixedAnswer(t, 503, `{"code":"10001","status":503,"message":"not ready"}`, &otherCalls),
				fixedAnswer(t, 504, ``, &otherCalls),
			}, key: goodKey,
			wantStatus: 503, wantMessage: MessageUnavailable, wantErr: true},
		{name: "a proxy's 502 fails over to the next URL",
			urls: []string{fixedAnswer(t, 502, `<html>Bad Gateway</html>`, &otherCalls), stub.url()}, key: goodKey,
			wantAllow: true, wantStatus: 200, wantCalls: 1},
		{name: "a 503 envelope fails over, and the next URL's 403 decides",
			urls: []string{fixedAnswer(t, 503, `{"code":"10001","status":503,"message":"not ready"}`, &otherCalls), stub.url()}, key: "nope",
			wantStatus: 403, wantMessage: MessageInvalidKey, wantCalls: 1},
		{name: "a 404 that is not the envelope (wrong URL, proxy) fails over",
			urls: []string{fixedAnswer(t, 404, `404 page not found`, &otherCalls), stub.url()}, key: goodKey,
			wantAllow: true, wantStatus: 200, wantCalls: 1},
		{name: "a 401 from the first URL is the answer: the second is not asked",
			urls: []string{fixedAnswer(t, 401, string(EnvelopeBody(401, MessageMissingKey)), &otherCalls), stub.url()}, key: goodKey,
			wantStatus: 401, wantMessage: MessageMissingKey, wantBody: string(EnvelopeBody(401, MessageMissingKey)), wantCalls: 0},
		{name: "a 403 that is not the envelope is still final",
			urls: []string{fixedAnswer(t, 403, `Forbidden`, &otherCalls), stub.url()}, key: goodKey,
			wantStatus: 403, wantMessage: MessageInvalidKey, wantCalls: 0, wantErr: true},
		{name: "another 4xx envelope from the verifier passes through",
			urls: []string{fixedAnswer(t, 400, string(EnvelopeBody(400, "bad request")), &otherCalls), stub.url()}, key: goodKey,
			wantStatus: 400, wantMessage: "bad request", wantCalls: 0},
		{name: "a 204 is not a yes",
			urls: []string{fixedAnswer(t, 204, ``, &otherCalls)}, key: "k",
			wantStatus: 503, wantMessage: MessageUnavailable, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := stub.calls.Load()
			v := New(Config{VerificationURLs: tc.urls, Timeout: time.Second}, nil)
			d := v.Verify(context.Background(), tc.key)

			if d.Allow != tc.wantAllow || d.Status != tc.wantStatus {
				t.Fatalf("decision = allow %v status %d, want allow %v status %d (err %v)", d.Allow, d.Status, tc.wantAllow, tc.wantStatus, d.Err)
			}
			if got := stub.calls.Load() - before; got != tc.wantCalls {
				t.Errorf("verifier calls = %d, want %d", got, tc.wantCalls)
			}
			if (d.Err != nil) != tc.wantErr {
				t.Errorf("Err = %v, want error: %v", d.Err, tc.wantErr)
			}
			if tc.wantAllow {
				if d.Body != nil {
					t.Errorf("allowed decision has a body: %s", d.Body)
				}
				return
			}
			env := decodeEnvelope(t, d.Body)
			want := Envelope{Code: ErrorCode, Status: tc.wantStatus, Message: tc.wantMessage}
			if env != want {
				t.Errorf("envelope = %+v, want %+v", env, want)
			}
			if tc.wantBody != "" && string(d.Body) != tc.wantBody {
				t.Errorf("body = %s, want the verifier's body %s", d.Body, tc.wantBody)
			}
		})
	}
}

func TestVerifyForwardsTheKey(t *testing.T) {
	stub := newVerifierStub(t)
	v := New(Config{VerificationURLs: []string{stub.url()}}, nil)
	const key = "1D3F2DD1A5DE725DD4DF1D82BBB37"
	v.Verify(context.Background(), key)
	if got := stub.lastKey.Load(); got != key {
		t.Errorf("verifier saw x-api-key %q, want %q", got, key)
	}
}

func TestVerifyDoesNotFollowRedirects(t *testing.T) {
	var targetCalls, redirectCalls atomic.Int64
	target := fixedAnswer(t, 200, `{"code":"10000","status":200,"message":"success"}`, &targetCalls)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirectCalls.Add(1)
		http.Redirect(w, r, target, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)

	d := New(Config{VerificationURLs: []string{redirect.URL}}, nil).Verify(context.Background(), goodKey)

	if d.Allow || d.Status != http.StatusServiceUnavailable {
		t.Fatalf("decision = allow %v status %d, want a 503 denial", d.Allow, d.Status)
	}
	if redirectCalls.Load() != 1 || targetCalls.Load() != 0 {
		t.Errorf("calls: redirect %d, target %d; want 1 and 0 (the key must not follow a redirect)", redirectCalls.Load(), targetCalls.Load())
	}
}

func TestVerifyTimesOut(t *testing.T) {
	tests := []struct {
		name   string
		client *http.Client
	}{
		{name: "default client", client: nil},
		{name: "caller's client without its own timeout", client: &http.Client{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := New(Config{VerificationURLs: []string{slowURL(t)}, Timeout: 100 * time.Millisecond}, tc.client)
			start := time.Now()
			d := v.Verify(context.Background(), goodKey)
			elapsed := time.Since(start)

			if d.Allow || d.Status != http.StatusServiceUnavailable {
				t.Fatalf("decision = allow %v status %d, want 503", d.Allow, d.Status)
			}
			if elapsed > 2*time.Second {
				t.Errorf("took %v; the 100ms timeout was not applied", elapsed)
			}
		})
	}
}

func TestVerifySlowFirstReplicaFailsOverToSecond(t *testing.T) {
	stub := newVerifierStub(t)
	v := New(Config{VerificationURLs: []string{slowURL(t), stub.url()}, Timeout: 100 * time.Millisecond}, nil)
	for i := range 2 { // both round-robin starting points
		if d := v.Verify(context.Background(), goodKey); !d.Allow {
			t.Fatalf("request %d: denied with %d %s", i, d.Status, d.Body)
		}
	}
}

func TestVerifyStopsWhenCallerGivesUp(t *testing.T) {
	var hangUps atomic.Int64
	v := New(Config{VerificationURLs: []string{slowURL(t), hangUpURL(t, &hangUps)}, Timeout: 5 * time.Second}, nil)
	// Round robin starts at index 0, the slow one.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	d := v.Verify(ctx, goodKey)

	if d.Status != http.StatusServiceUnavailable || time.Since(start) > 2*time.Second {
		t.Fatalf("status %d after %v, want a quick 503", d.Status, time.Since(start))
	}
	if hangUps.Load() != 0 {
		t.Errorf("the next replica was tried %d times after the caller gave up", hangUps.Load())
	}
	if v.downTill[0].Load() != 0 {
		t.Error("the slow replica was put in cooldown although the caller, not the replica, gave up")
	}
}

func TestVerifyRoundRobinSpreadsLoad(t *testing.T) {
	first, second := newVerifierStub(t), newVerifierStub(t)
	v := New(Config{VerificationURLs: []string{first.url(), second.url()}}, nil)
	const requests = 10
	for range requests {
		if d := v.Verify(context.Background(), goodKey); !d.Allow {
			t.Fatalf("denied: %d %s", d.Status, d.Body)
		}
	}
	if first.calls.Load() != requests/2 || second.calls.Load() != requests/2 {
		t.Errorf("calls = %d and %d, want %d each", first.calls.Load(), second.calls.Load(), requests/2)
	}
}

func TestVerifyTriesAFailedReplicaLastDuringCooldown(t *testing.T) {
	failures := map[string]func(t *testing.T, calls *atomic.Int64) string{
		"connection dropped": hangUpURL,
		"answers 503": func(t *testing.T, calls *atomic.Int64) string {
			return fixedAnswer(t, http.StatusServiceUnavailable, "Service Unavailable", calls)
		},
	}
	for name, failing := range failures {
		t.Run(name, func(t *testing.T) { testFailedReplicaCooldown(t, failing) })
	}
}

func testFailedReplicaCooldown(t *testing.T, failing func(t *testing.T, calls *atomic.Int64) string) {
	var hangUps atomic.Int64
	stub := newVerifierStub(t)
	v := New(Config{VerificationURLs: []string{failing(t, &hangUps), stub.url()}}, nil)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	v.now = clock.Now

	for i := range 4 {
		if d := v.Verify(context.Background(), goodKey); !d.Allow {
			t.Fatalf("request %d denied: %d %s", i, d.Status, d.Body)
		}
	}
	if hangUps.Load() != 1 {
		t.Fatalf("failed replica tried %d times during its cooldown, want 1", hangUps.Load())
	}

	clock.Advance(failureCooldown + time.Second)
	for range 2 { // one of the two round-robin starts lands on it again
		v.Verify(context.Background(), goodKey)
	}
	if hangUps.Load() != 2 {
		t.Errorf("failed replica tried %d times in total, want it retried once after the cooldown", hangUps.Load())
	}
}

func TestVerifyCache(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		key       string
		advance   time.Duration // between the two requests
		wantCalls int64
		wantAllow bool
	}{
		{name: "positive answer is cached", ttl: 5 * time.Second, key: goodKey, wantCalls: 1, wantAllow: true},
		{name: "positive answer expires", ttl: 5 * time.Second, key: goodKey, advance: 5 * time.Second, wantCalls: 2, wantAllow: true},
		{name: "zero TTL disables the cache", ttl: 0, key: goodKey, wantCalls: 2, wantAllow: true},
		{name: "negative answer is not cached without NegativeTTL", ttl: 5 * time.Second, key: "nope", wantCalls: 2, wantAllow: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub := newVerifierStub(t)
			v := New(Config{VerificationURLs: []string{stub.url()}, CacheTTL: tc.ttl}, nil)
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			v.now = clock.Now

			first := v.Verify(context.Background(), tc.key)
			clock.Advance(tc.advance)
			second := v.Verify(context.Background(), tc.key)

			if first.Allow != tc.wantAllow || second.Allow != tc.wantAllow {
				t.Fatalf("allow = %v then %v, want %v", first.Allow, second.Allow, tc.wantAllow)
			}
			if got := stub.calls.Load(); got != tc.wantCalls {
				t.Errorf("verifier calls = %d, want %d", got, tc.wantCalls)
			}
			wantCached := tc.wantCalls == 1
			if second.Cached != wantCached || first.Cached {
				t.Errorf("Cached = %v then %v, want false then %v", first.Cached, second.Cached, wantCached)
			}
		})
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	accepting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(accepting.Close)
	const limit = 50
	v := New(Config{VerificationURLs: []string{accepting.URL}, CacheTTL: time.Hour, MaxCacheEntries: limit}, nil)

	for i := range 10 * limit {
		if d := v.Verify(context.Background(), fmt.Sprintf("key-%d", i)); !d.Allow {
			t.Fatalf("key %d denied: %d", i, d.Status)
		}
		if size := v.cache.size(); size > limit {
			t.Fatalf("cache holds %d keys after %d inserts, limit %d", size, i+1, limit)
		}
	}
	last := fmt.Sprintf("key-%d", 10*limit-1)
	if d := v.Verify(context.Background(), last); !d.Cached {
		t.Errorf("the most recent key was evicted; eviction should make room before inserting")
	}
}

func TestVerifyCacheSweepsExpiredBeforeEvictingLiveKeys(t *testing.T) {
	accepting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(accepting.Close)
	v := New(Config{VerificationURLs: []string{accepting.URL}, CacheTTL: time.Minute, MaxCacheEntries: 10}, nil)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	v.now = clock.Now

	v.Verify(context.Background(), "long-lived")
	clock.Advance(50 * time.Second)
	for i := range 9 { // fill the cache; these expire 50s after "long-lived"
		v.Verify(context.Background(), fmt.Sprintf("filler-%d", i))
	}
	clock.Advance(20 * time.Second) // "long-lived" has expired, the fillers have not
	v.Verify(context.Background(), "newcomer")

	if size := v.cache.size(); size != 10 {
		t.Errorf("cache size = %d, want 10: only the expired entry should have been dropped", size)
	}
	for i := range 9 {
		if !v.cache.fresh(fmt.Sprintf("filler-%d", i), clock.Now()) {
			t.Errorf("live key filler-%d was evicted although an expired entry could be swept", i)
		}
	}
}

// A rejected key is rejected again, with auth's own answer, without asking
// for NegativeTTL; a hit does not extend that, so a key auth starts
// accepting is refused for at most NegativeTTL.
func TestVerifyNegativeCache(t *testing.T) {
	var calls atomic.Int64
	var accept atomic.Bool
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if accept.Load() {
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(EnvelopeBody(http.StatusForbidden, "permission denied: key disabled"))
	}))
	t.Cleanup(server.Close)
	const ttl = 5 * time.Second
	v := New(Config{VerificationURLs: []string{server.URL}, CacheTTL: time.Minute, NegativeTTL: ttl}, nil)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	v.now = clock.Now

	first := v.Verify(context.Background(), "new-key")
	for range 5 {
		clock.Advance(ttl / 6)
		d := v.Verify(context.Background(), "new-key")
		if d.Allow || d.Status != 403 || !d.Cached || string(d.Body) != string(first.Body) {
			t.Fatalf("within the TTL: %+v, want auth's 403 again from the cache", d)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("verifier calls = %d for six tries of one bad key within the TTL, want 1", got)
	}
	accept.Store(true) // auth now accepts the key (just created, say)
	clock.Advance(ttl - 5*(ttl/6))
	if d := v.Verify(context.Background(), "new-key"); !d.Allow || d.Cached {
		t.Fatalf("TTL after the rejection: %+v, want asked again and allowed", d)
	}
	if v.rejected.size() != 0 {
		t.Error("an accepted key is still in the negative cache")
	}
	if d := v.Verify(context.Background(), "new-key"); !d.Allow || !d.Cached {
		t.Errorf("accepted key then: %+v, want the positive cache", d)
	}
}

// Only auth's 401 and 403 are remembered: "verification unavailable" and a
// missing key are not answers about a key.
func TestVerifyNegativeCacheKeepsOnlyRejections(t *testing.T) {
	var calls atomic.Int64
	v := New(Config{VerificationURLs: []string{fixedAnswer(t, 503, "down", &calls)}, NegativeTTL: time.Minute}, nil)
	for range 2 {
		if d := v.Verify(context.Background(), "some-key"); d.Status != 503 || d.Cached {
			t.Fatalf("unavailable: %+v", d)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("verifier calls = %d, want 2: a 503 must not be remembered", calls.Load())
	}
	v.Verify(context.Background(), "")
	if v.rejected.size() != 0 {
		t.Errorf("negative cache holds %d entries, want none", v.rejected.size())
	}

	// A 401 is remembered like a 403.
	calls.Store(0)
	v = New(Config{VerificationURLs: []string{fixedAnswer(t, 401, string(EnvelopeBody(401, "expired key")), &calls)}, NegativeTTL: time.Minute}, nil)
	for range 3 {
		if d := v.Verify(context.Background(), "k"); d.Status != 401 {
			t.Fatalf("401: %+v", d)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("verifier calls = %d for a 401 key three times, want 1", calls.Load())
	}
}

// Random keys cannot grow the negative cache past its bound, whatever
// their length, nor push accepted keys out of the positive cache.
func TestVerifyNegativeCacheIsBoundedAndSeparate(t *testing.T) {
	stub := newVerifierStub(t)
	const limit = 50
	v := New(Config{VerificationURLs: []string{stub.url()}, CacheTTL: time.Hour, NegativeTTL: time.Hour, MaxNegativeEntries: limit, MaxCacheEntries: 2}, nil)
	if d := v.Verify(context.Background(), goodKey); !d.Allow {
		t.Fatal("good key refused")
	}
	long := strings.Repeat("x", 4096)
	for i := range 10 * limit {
		if d := v.Verify(context.Background(), fmt.Sprintf("%s-%d", long, i)); d.Allow {
			t.Fatal("random key allowed")
		}
		if size := v.rejected.size(); size > limit {
			t.Fatalf("negative cache holds %d keys after %d rejections, limit %d", size, i+1, limit)
		}
	}
	if d := v.Verify(context.Background(), goodKey); !d.Allow || !d.Cached {
		t.Errorf("good key after a flood of bad ones: %+v, want still cached", d)
	}
}

func TestSettingsNegativeTTL(t *testing.T) {
	for _, tc := range []struct {
		seconds int
		want    time.Duration
	}{{0, DefaultNegativeTTL}, {-1, 0}, {2, 2 * time.Second}} {
		if got := (Settings{NegativeTTLSeconds: tc.seconds}).Config().NegativeTTL; got != tc.want {
			t.Errorf("negative_ttl_seconds %d: NegativeTTL %v, want %v", tc.seconds, got, tc.want)
		}
	}
}

func TestVerifyIsSafeForConcurrentUse(t *testing.T) {
	first, second := newVerifierStub(t), newVerifierStub(t)
	v := New(Config{VerificationURLs: []string{first.url(), second.url()}, CacheTTL: time.Minute, MaxCacheEntries: 8}, nil)
	var wg sync.WaitGroup
	var denied atomic.Int64
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				key := goodKey
				want := true
				if (g+i)%3 == 0 {
					key, want = fmt.Sprintf("bad-%d-%d", g, i), false
				}
				if d := v.Verify(context.Background(), key); d.Allow != want {
					denied.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if denied.Load() != 0 {
		t.Errorf("%d concurrent decisions were wrong", denied.Load())
	}
}

func TestIsPublicPath(t *testing.T) {
	public := []string{"/auth/health/live", "/blog/health/ready"}
	tests := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/blog/health/ready", true},
		{"GET", "/blog/health/ready/", true},
		{"HEAD", "/auth/health/live", true},
		{"GET", "/health/ready", false},
		{"GET", "/blog/x/health/ready", false},
		{"POST", "/blog/health/ready", false},
		{"GET", "/blog/health/ready/extra", false},
		{"GET", "/blog/list/latest", false},
	}
	for _, tt := range tests {
		if got := IsPublicPath(tt.method, tt.path, public); got != tt.want {
			t.Errorf("IsPublicPath(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
	if IsPublicPath("GET", "/blog/health/ready", nil) {
		t.Error("no public paths configured must mean none")
	}
	if IsPublicPath("GET", "", []string{""}) {
		t.Error("an empty entry must match nothing")
	}
}

// While no verifier answers, a key accepted within CacheTTL+StaleTTL is still
// accepted; past that, or when a verifier answers "invalid", it is not.
func TestStaleKeyServesThroughAnOutage(t *testing.T) {
	outages := map[string]func(w http.ResponseWriter){
		"connection dropped": func(w http.ResponseWriter) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		},
		"a proxy answers 502": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
		},
	}
	for name, outage := range outages {
		t.Run(name, func(t *testing.T) { testStaleKeyServesThroughAnOutage(t, outage) })
	}
}

func testStaleKeyServesThroughAnOutage(t *testing.T, outage func(http.ResponseWriter)) {
	var down atomic.Bool
	var valid atomic.Bool
	valid.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			outage(w)
			return
		}
		if valid.Load() && r.Header.Get(HeaderName) == "good" {
			w.Write(EnvelopeBody(200, "success"))
			return
		}
		w.WriteHeader(403)
		w.Write(EnvelopeBody(403, MessageInvalidKey))
	}))
	defer srv.Close()
	now := time.Unix(1000, 0)
	v := New(Config{VerificationURLs: []string{srv.URL}, CacheTTL: 5 * time.Second, StaleTTL: time.Minute}, nil)
	v.now = func() time.Time { return now }

	if d := v.Verify(context.Background(), "good"); !d.Allow || d.Cached {
		t.Fatalf("first check: %+v", d)
	}
	down.Store(true)
	now = now.Add(30 * time.Second) // past CacheTTL, inside the stale window
	if d := v.Verify(context.Background(), "good"); !d.Allow || d.Err == nil {
		t.Fatalf("auth down, key seen 30s ago: %+v", d)
	}
	if d := v.Verify(context.Background(), "never-seen"); d.Allow || d.Status != 503 {
		t.Fatalf("auth down, unknown key: %+v", d)
	}
	now = now.Add(time.Minute) // past the stale window
	if d := v.Verify(context.Background(), "good"); d.Allow || d.Status != 503 {
		t.Fatalf("auth down, key too old: %+v", d)
	}
	// A verifier that answers decides, stale or not.
	down.Store(false)
	valid.Store(false)
	if d := v.Verify(context.Background(), "good"); d.Allow || d.Status != 403 {
		t.Fatalf("revoked key: %+v", d)
	}
}

func TestSettingsRateLimiterFromKongJSON(t *testing.T) {
	var s Settings
	raw := `{"verification_urls":["http://auth:8000/verify/apikey"],
		"rate_limits":[{"paths":["/auth/signin/basic","/auth/signup/basic"],"per_minute":2}]}`
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := s.RateLimiter(ratelimit.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i, wantRemaining := range []string{"1", "0"} {
		d := CheckRateLimit(l, "192.0.2.1", "/auth/signin/basic")
		if !d.Allow || d.Body != nil || d.Header.Get("X-RateLimit-Limit-Minute") != "2" || d.Header.Get("X-RateLimit-Remaining-Minute") != wantRemaining {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	d := CheckRateLimit(l, "192.0.2.1", "/auth/signin/basic")
	if d.Allow || d.Status != http.StatusTooManyRequests {
		t.Fatalf("3rd request: %+v, want 429", d)
	}
	if env := decodeEnvelope(t, d.Body); env != (Envelope{Code: ErrorCode, Status: 429, Message: MessageTooManyRequests}) {
		t.Errorf("envelope = %+v", env)
	}
	// Two requests at the start of a window: one slides out half a minute
	// into the next window, 90 s from now.
	if d.Header.Get("Retry-After") != "90" || d.Header.Get("X-RateLimit-Remaining-Minute") != "0" {
		t.Errorf("429 headers = %v, want Retry-After 90 and remaining 0", d.Header)
	}
	if d := CheckRateLimit(l, "192.0.2.1", "/blog/list/latest"); !d.Allow || d.Header != nil {
		t.Errorf("unlimited path: %+v", d)
	}

	bad := Settings{RateLimits: []ratelimit.Rule{{Paths: []string{"/x"}}}}
	if _, err := bad.RateLimiter(ratelimit.Options{}); err == nil {
		t.Error("per_minute 0 accepted")
	}
}

// blockingVerifier answers like verifierStub but holds every call until
// release is closed, counting calls.
func blockingVerifier(t *testing.T, calls *atomic.Int64, release <-chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get(HeaderName) != goodKey {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(EnvelopeBody(http.StatusUnauthorized, MessageInvalidKey))
			return
		}
		_, _ = w.Write([]byte(`{"code":"10000","status":200,"message":"success"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/verify/apikey"
}

// waitForWaiters polls until n requests wait for key's verification.
func waitForWaiters(t *testing.T, v *Verifier, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for v.flights.waiting(key) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d request(s) wait for the verification, want %d", v.flights.waiting(key), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestVerifySingleFlightPerKey(t *testing.T) {
	const n = 32
	tests := []struct {
		name       string
		key        string
		cfg        Config
		wantAllow  bool
		wantStatus int
	}{
		{name: "accepted key, cache on", key: goodKey, cfg: Config{CacheTTL: time.Minute}, wantAllow: true, wantStatus: http.StatusOK},
		{name: "accepted key, cache off", key: goodKey, cfg: Config{}, wantAllow: true, wantStatus: http.StatusOK},
		{name: "rejected key, negative cache off", key: "bad-key", cfg: Config{}, wantStatus: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			release := make(chan struct{})
			cfg := tc.cfg
			cfg.VerificationURLs = []string{blockingVerifier(t, &calls, release)}
			v := New(cfg, nil)

			decisions := make([]Decision, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { decisions[i] = v.Verify(context.Background(), tc.key) })
			}
			waitForWaiters(t, v, tc.key, n-1)
			close(release)
			wg.Wait()

			if got := calls.Load(); got != 1 {
				t.Errorf("%d concurrent first requests made %d verification calls, want 1", n, got)
			}
			for i, d := range decisions {
				if d.Allow != tc.wantAllow || d.Status != tc.wantStatus {
					t.Fatalf("request %d: allow %v status %d, want allow %v status %d", i, d.Allow, d.Status, tc.wantAllow, tc.wantStatus)
				}
			}
			if !tc.wantAllow && decodeEnvelope(t, decisions[n-1].Body).Status != tc.wantStatus {
				t.Errorf("a waiter's denial body is not the verifier's envelope: %s", decisions[n-1].Body)
			}
		})
	}
}

func TestVerifySingleFlightOtherKeysDoNotWait(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	v := New(Config{VerificationURLs: []string{blockingVerifier(t, &calls, release)}}, nil)
	first, second := make(chan Decision, 1), make(chan Decision, 1)
	go func() { first <- v.Verify(context.Background(), goodKey) }()
	go func() { second <- v.Verify(context.Background(), "second-key") }()
	// Each key is its own flight: both reach the verifier while it holds
	// them (a waiter for the other key would never make the second call).
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("verifier calls = %d, want 2 (one per key, concurrently)", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if d := <-first; !d.Allow {
		t.Errorf("first key: status %d, want allowed", d.Status)
	}
	if d := <-second; d.Status != http.StatusUnauthorized {
		t.Errorf("second key: status %d, want 401", d.Status)
	}
}

func TestVerifyWaiterAsksAgainWhenTheAskingRequestGivesUp(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	v := New(Config{VerificationURLs: []string{blockingVerifier(t, &calls, release)}, Timeout: 5 * time.Second}, nil)

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan Decision, 1)
	go func() { leader <- v.Verify(leaderCtx, goodKey) }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiter := make(chan Decision, 1)
	go func() { waiter <- v.Verify(context.Background(), goodKey) }()
	waitForWaiters(t, v, goodKey, 1)

	cancelLeader()
	if d := <-leader; d.Status != http.StatusServiceUnavailable {
		t.Fatalf("the request that gave up: status %d, want 503", d.Status)
	}
	// The waiter's own client is still there: it must not inherit the
	// other request's 503, but ask again and get auth's answer.
	for calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if d := <-waiter; !d.Allow {
		t.Fatalf("waiter: status %d %s, want allowed", d.Status, d.Body)
	}
}

func TestVerifyWaiterStopsWhenItsCallerGivesUp(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	defer close(release)
	v := New(Config{VerificationURLs: []string{blockingVerifier(t, &calls, release)}, Timeout: 5 * time.Second}, nil)
	go v.Verify(context.Background(), goodKey)
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	d := v.Verify(ctx, goodKey)
	if d.Status != http.StatusServiceUnavailable || time.Since(start) > 2*time.Second {
		t.Fatalf("status %d after %v, want a quick 503", d.Status, time.Since(start))
	}
	if calls.Load() != 1 {
		t.Errorf("verifier calls = %d, want 1 (the waiter joined the flight)", calls.Load())
	}
}
