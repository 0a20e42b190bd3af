// Package verify decides whether a request carrying an x-api-key header may
// pass the gateway, by asking auth_service's GET /verify/apikey.
//
// It has no Kong types on purpose: the Kong plugin (package main next to this
// one) and the local Go gateway both call Verify, so the two gateways answer
// clients identically. CheckRateLimit turns a ratelimit.Limiter's verdict
// into the same kind of Decision, and Settings is the configuration both
// read from a Kong file.
//
// Differences from the reference plugin:
//   - a missing or empty key is rejected with 401 without calling auth;
//   - every HTTP call has a timeout;
//   - URLs are tried round robin; a transport error, a 5xx or an answer that
//     is not the verifier's (see retryable) fails over to the next URL, while
//     a 401/403 is an answer and is never retried;
//   - a positive answer may be cached for a short TTL, and a rejection (401 or
//     403 from the verifier) for a separate, shorter one, so a flood of
//     random keys costs auth one call per key and TTL at most;
//   - requests carrying a key that is being verified wait for that
//     verification instead of asking auth too (one call per key at a time);
//   - every denial body is the goserve envelope with a numeric status.
package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"blogplatform/kong/apikey_auth_plugin/ratelimit"
)

// HeaderName is the request header that carries the API key, both on the
// client's request and on the call to the verifier.
const HeaderName = "x-api-key"

const (
	// DefaultTimeout bounds one call to one verification URL.
	DefaultTimeout = 2000 * time.Millisecond
	// DefaultMaxCacheEntries caps the positive cache so that a flood of
	// distinct valid keys cannot grow the gateway's memory without bound.
	DefaultMaxCacheEntries = 10_000
	// DefaultNegativeTTL is how long a rejected key is refused without
	// asking again when the Kong file does not say (negative_ttl_seconds
	// absent or 0). It is also the longest a key that auth starts accepting
	// (just created, or a replica that wrongly refused it) can still be
	// refused by this gateway.
	DefaultNegativeTTL = 5 * time.Second
	// DefaultMaxNegativeEntries caps the negative cache. Entries are keyed
	// by the key's SHA-256, so a client sending huge random keys stores 32
	// bytes (plus the small denial body) per key, a few MiB at the cap.
	DefaultMaxNegativeEntries = 50_000
	// maxCachedDenialBody bounds a remembered denial body; a longer one
	// (never auth's envelope) is remembered as the plain invalid-key denial.
	maxCachedDenialBody = 512
	// failureCooldown is how long a URL that failed (transport error or 5xx) is
	// tried only after the others, so a dead replica does not cost every
	// other request a connect error (or a whole timeout) first.
	failureCooldown = 5 * time.Second
	// maxVerifierBody caps how much of a verifier's answer is read; the
	// envelope is tiny, anything larger is not an envelope.
	maxVerifierBody = 64 << 10
)

// Client-visible messages (goserve wording).
const (
	MessageMissingKey  = "permission denied: missing x-api-key header"
	MessageInvalidKey  = "permission denied: invalid x-api-key"
	MessageUnavailable = "api key verification unavailable"
	// MessageTooManyRequests is the 429 message of the services' own limiter
	// too, so a client sees one wording whichever layer limited it.
	MessageTooManyRequests = "too many requests"
)

// Config configures a Verifier.
type Config struct {
	// VerificationURLs are full URLs of GET /verify/apikey endpoints, e.g.
	// http://auth1:8000/verify/apikey. Replicas of one auth service.
	VerificationURLs []string
	// Timeout bounds each attempt; <= 0 means DefaultTimeout.
	Timeout time.Duration
	// CacheTTL is how long a key the verifier accepted is accepted again
	// without asking; <= 0 disables the cache.
	CacheTTL time.Duration
	// StaleTTL is how much longer than CacheTTL an accepted key is still
	// accepted while no verifier answers at all (auth down): public reads
	// keep working through an auth outage for keys seen recently. A verifier
	// that answers always decides. <= 0 disables it.
	StaleTTL time.Duration
	// MaxCacheEntries caps the cache; <= 0 means DefaultMaxCacheEntries.
	MaxCacheEntries int
	// NegativeTTL is how long a key the verifier rejected (401 or 403) is
	// rejected again, with the same answer, without asking; <= 0 disables
	// the negative cache. A hit does not extend it, so a key auth accepts
	// later is refused for at most NegativeTTL. It is separate from the
	// positive cache: a flood of bad keys cannot evict good ones.
	NegativeTTL time.Duration
	// MaxNegativeEntries caps the negative cache; <= 0 means
	// DefaultMaxNegativeEntries.
	MaxNegativeEntries int
}

// Settings is the plugin's configuration as written in a Kong file, under
// the schema's JSON names. The local gateway decodes it directly; the Kong
// plugin declares the same fields (go-pdk derives Kong's schema from that
// struct) and converts through Settings, so both read them one way.
type Settings struct {
	VerificationURLs []string `json:"verification_urls"`
	TimeoutMS        int      `json:"timeout_ms"`        // absent or <= 0: DefaultTimeout
	CacheTTLSeconds  int      `json:"cache_ttl_seconds"` // absent or <= 0: no cache
	StaleTTLSeconds  int      `json:"stale_ttl_seconds"` // absent or <= 0: no stale window
	// NegativeTTLSeconds: how long a rejected key is rejected without asking
	// auth again. Absent or 0: DefaultNegativeTTL; < 0: off.
	NegativeTTLSeconds int      `json:"negative_ttl_seconds"`
	PublicPaths        []string `json:"public_paths"`
	Bypass             bool     `json:"bypass"`
	// RateLimits limit requests per client address and path prefix; see
	// package ratelimit. Build the limiter with RateLimiter.
	RateLimits []ratelimit.Rule `json:"rate_limits"`
}

// RateLimiter builds the limiter of s.RateLimits (one that limits nothing
// when there are none). Build it once per plugin configuration and keep it:
// the counts live in it. An error names the invalid rule.
func (s Settings) RateLimiter(opts ratelimit.Options) (*ratelimit.Limiter, error) {
	return ratelimit.New(s.RateLimits, opts)
}

// Config converts the file's units into a Verifier's configuration.
func (s Settings) Config() Config {
	timeout := time.Duration(s.TimeoutMS) * time.Millisecond
	if s.TimeoutMS <= 0 {
		timeout = DefaultTimeout
	}
	negative := time.Duration(s.NegativeTTLSeconds) * time.Second
	if s.NegativeTTLSeconds == 0 {
		negative = DefaultNegativeTTL
	}
	return Config{
		VerificationURLs: s.VerificationURLs,
		Timeout:          timeout,
		CacheTTL:         time.Duration(s.CacheTTLSeconds) * time.Second,
		StaleTTL:         time.Duration(s.StaleTTLSeconds) * time.Second,
		NegativeTTL:      max(negative, 0),
	}
}

// Decision is the outcome of one verification.
type Decision struct {
	// Allow is true when the request may continue to its upstream.
	Allow bool
	// Status is the HTTP status to answer with when !Allow (200 when allowed).
	Status int
	// Body is the JSON envelope to send when !Allow (nil when allowed).
	Body []byte
	// Header holds headers to add to the client's response, allowed or not
	// (rate-limit budget, Retry-After). Nil when there are none.
	Header http.Header
	// Cached is true when the decision came from a cache (an accepted key,
	// or a rejected one within the negative TTL) instead of the verifier.
	Cached bool
	// Err carries internal detail for the gateway's log (transport errors,
	// an unusable verifier answer). It is never meant for the client.
	Err error
}

// Envelope is the goserve error body. Status is a number, never a string.
type Envelope struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// ErrorCode is the goserve envelope code of every failure.
const ErrorCode = "10001"

// Verifier checks API keys. It is safe for concurrent use.
type Verifier struct {
	urls     []string
	timeout  time.Duration
	cacheTTL time.Duration
	staleTTL time.Duration
	client   *http.Client
	next     atomic.Uint64  // round-robin start position
	downTill []atomic.Int64 // per URL: unix nanos until which it is tried last
	cache    *keyCache
	rejected *expiringMap[keyDigest, denial] // nil: no negative cache
	negTTL   time.Duration
	now      func() time.Time
	flights  flights
}

// keyDigest names a rejected key in the negative cache: fixed size whatever
// the key's length.
type keyDigest [sha256.Size]byte

// denial is a remembered rejection, answered again as it was.
type denial struct {
	status int
	body   []byte
}

// New builds a Verifier. A nil client means a dedicated client with the
// configured timeout; with a caller's client the per-attempt timeout is still
// enforced through the request context.
func New(cfg Config, client *http.Client) *Verifier {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if client == nil {
		client = newDefaultClient(timeout)
	}
	v := &Verifier{
		urls:     append([]string(nil), cfg.VerificationURLs...),
		timeout:  timeout,
		cacheTTL: cfg.CacheTTL,
		staleTTL: max(cfg.StaleTTL, 0),
		client:   client,
		downTill: make([]atomic.Int64, len(cfg.VerificationURLs)),
		now:      time.Now,
	}
	if cfg.CacheTTL > 0 {
		limit := cfg.MaxCacheEntries
		if limit <= 0 {
			limit = DefaultMaxCacheEntries
		}
		v.cache = newKeyCache(limit, cfg.CacheTTL, cfg.CacheTTL+max(cfg.StaleTTL, 0))
	}
	if cfg.NegativeTTL > 0 {
		limit := cfg.MaxNegativeEntries
		if limit <= 0 {
			limit = DefaultMaxNegativeEntries
		}
		v.negTTL = cfg.NegativeTTL
		v.rejected = newExpiringMap[keyDigest, denial](limit, cfg.NegativeTTL)
	}
	return v
}

func newDefaultClient(timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// The verifiers are internal services reached directly: an HTTP(S)_PROXY
	// from the environment must not see the keys.
	transport.Proxy = nil
	// Every proxied request makes one verification call (minus cache hits);
	// keep enough idle connections per replica to avoid a handshake each time.
	transport.MaxIdleConnsPerHost = 64
	return &http.Client{
		Timeout:   timeout,
		Transport: transport,
		// A redirect would resend x-api-key to wherever it points; the verifier
		// never redirects, so a 3xx is treated as an unusable answer instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Verify decides for one request. ctx bounds the whole decision (all
// attempts); each attempt is also bounded by the configured timeout.
func (v *Verifier) Verify(ctx context.Context, apiKey string) Decision {
	if apiKey == "" {
		return deny(http.StatusUnauthorized, MessageMissingKey, nil)
	}
	if v.cache != nil && v.cache.fresh(apiKey, v.now()) {
		return Decision{Allow: true, Status: http.StatusOK, Cached: true}
	}
	var digest keyDigest
	if v.rejected != nil {
		digest = sha256.Sum256([]byte(apiKey))
		if d, ok := v.rejected.get(digest, v.now(), v.negTTL); ok {
			return Decision{Status: d.status, Body: d.body, Cached: true}
		}
	}
	if len(v.urls) == 0 {
		return deny(http.StatusServiceUnavailable, MessageUnavailable, errors.New("no verification URLs configured"))
	}
	// One verification per key at a time: requests that arrive with a key
	// while it is being verified wait for that answer instead of each asking
	// auth (a burst of first requests, or every request with a key when the
	// cache is off or its entry just expired, costs auth one call).
	for {
		f, leader := v.flights.join(apiKey)
		if leader {
			d, abandoned := v.verifyUncached(ctx, apiKey, digest)
			v.flights.finish(apiKey, f, d, abandoned)
			return d
		}
		select {
		case <-f.done:
			if !f.abandoned {
				return f.decision
			}
			// The request that was asking went away before auth answered;
			// this one is still here, so it asks (or joins whoever does).
			if ctx.Err() == nil {
				continue
			}
		case <-ctx.Done():
		}
		return deny(http.StatusServiceUnavailable, MessageUnavailable, fmt.Errorf("gave up waiting for the key's verification: %w", ctx.Err()))
	}
}

// verifyUncached asks the verifiers for one key. abandoned is true when ctx
// ended before any verifier decided: the denial then says nothing about the
// key, so requests waiting for it must not take it as theirs.
func (v *Verifier) verifyUncached(ctx context.Context, apiKey string, digest keyDigest) (Decision, bool) {
	var failures []error
	for _, i := range v.attemptOrder() {
		url := v.urls[i]
		status, body, err := v.ask(ctx, url, apiKey)
		if err == nil {
			err = retryable(status, body)
		}
		if err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", url, err))
			if ctx.Err() != nil {
				// The caller gave up (client went away or its deadline passed):
				// not the replica's fault, and trying the next cannot help.
				break
			}
			v.downTill[i].Store(v.now().Add(failureCooldown).UnixNano())
			continue
		}
		if v.downTill[i].Load() != 0 {
			v.downTill[i].Store(0)
		}
		d := v.decide(apiKey, status, body, url)
		if v.rejected != nil && (d.Status == http.StatusUnauthorized || d.Status == http.StatusForbidden) {
			// Only auth's own rejections: a 503 (no verifier) must be
			// retried at once, and other 4xx answers are not about the key.
			remembered := d.Body
			if len(remembered) > maxCachedDenialBody {
				remembered = EnvelopeBody(d.Status, MessageInvalidKey)
			}
			v.rejected.add(digest, denial{status: d.Status, body: remembered}, v.now())
		}
		return d, false
	}
	unavailable := errors.Join(failures...)
	if ctx.Err() != nil {
		return deny(http.StatusServiceUnavailable, MessageUnavailable, unavailable), true
	}
	if v.cache != nil && v.staleTTL > 0 && v.cache.acceptedWithin(apiKey, v.now(), v.cacheTTL+v.staleTTL) {
		return Decision{Allow: true, Status: http.StatusOK, Cached: true,
			Err: fmt.Errorf("no verifier answered; accepted a recently verified key: %w", unavailable)}, false
	}
	return deny(http.StatusServiceUnavailable, MessageUnavailable, unavailable), false
}

// flights tracks the verifications in progress, one per key.
type flights struct {
	mu      sync.Mutex
	pending map[string]*flight
}

// flight is one verification in progress; done is closed once decision
// (or abandoned) is set.
type flight struct {
	done      chan struct{}
	decision  Decision
	abandoned bool
	waiters   int // requests that joined it (for tests)
}

// join returns the key's flight, creating it (leader true: the caller must
// verify and finish it) when none is in progress.
func (fs *flights) join(key string) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.pending[key]; ok {
		f.waiters++
		return f, false
	}
	if fs.pending == nil {
		fs.pending = make(map[string]*flight)
	}
	f = &flight{done: make(chan struct{})}
	fs.pending[key] = f
	return f, true
}

// finish publishes the leader's outcome to the flight's waiters. Requests
// arriving from now on find the caches the verification filled.
func (fs *flights) finish(key string, f *flight, d Decision, abandoned bool) {
	fs.mu.Lock()
	delete(fs.pending, key)
	fs.mu.Unlock()
	f.decision, f.abandoned = d, abandoned
	close(f.done)
}

// waiting is how many requests wait for key's verification in progress.
func (fs *flights) waiting(key string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.pending[key]; ok {
		return f.waiters
	}
	return 0
}

// attemptOrder lists every URL index once: round robin from a rotating start
// so load spreads over the replicas, with URLs that recently failed moved to
// the end (still tried, so a recovered replica is found again).
func (v *Verifier) attemptOrder() []int {
	n := len(v.urls)
	start := int((v.next.Add(1) - 1) % uint64(n))
	now := v.now().UnixNano()
	order := make([]int, 0, n)
	var coolingDown []int
	for k := range n {
		i := (start + k) % n
		if v.downTill[i].Load() > now {
			coolingDown = append(coolingDown, i)
			continue
		}
		order = append(order, i)
	}
	return append(order, coolingDown...)
}

// retryable reports why an answer is not the verifier's decision, so the next
// URL is asked instead; nil when it is one. 200 allows; 401 and 403 deny
// (whatever the body: auth said no, and asking a replica again would only
// let a client probe keys faster); another 4xx decides only when it is the
// platform envelope. A 5xx (a replica failing, a proxy's 502/503/504 in
// front of a replica that is down), a non-envelope 4xx (a proxy or a wrong
// URL answering, not auth) or any other status is not an answer.
func retryable(status int, body []byte) error {
	switch {
	case status == http.StatusOK, status == http.StatusUnauthorized, status == http.StatusForbidden:
		return nil
	case status >= 400 && status < 500 && isEnvelopeFor(body, status):
		return nil
	case status >= 500:
		return fmt.Errorf("answered %d", status)
	default:
		return fmt.Errorf("answered %d, which is not a verification answer", status)
	}
}

// ask makes one attempt. An error means the verifier could not be asked
// (refused, reset, timed out, unreadable answer): the caller fails over.
func (v *Verifier) ask(ctx context.Context, url, apiKey string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(HeaderName, apiKey)
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVerifierBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading verifier answer: %w", err)
	}
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, body, nil
}

func (v *Verifier) decide(apiKey string, status int, body []byte, url string) Decision {
	switch {
	case status == http.StatusOK:
		if v.cache != nil {
			v.cache.add(apiKey, v.now())
		}
		// A negative entry cannot exist here (it would have answered), except
		// when it expired meanwhile or a concurrent request added one.
		if v.rejected != nil {
			v.rejected.remove(sha256.Sum256([]byte(apiKey)))
		}
		return Decision{Allow: true, Status: http.StatusOK}
	case isEnvelopeFor(body, status):
		return Decision{Status: status, Body: body}
	default:
		// A 401/403 whose body is not the envelope (retryable let no other
		// status through): still a denial, in the platform's envelope.
		return deny(status, MessageInvalidKey, fmt.Errorf("%s answered %d with a body that is not an envelope", url, status))
	}
}

// isEnvelopeFor reports whether body is a goserve error envelope whose numeric
// status matches the HTTP status, so it can be passed to the client as is.
func isEnvelopeFor(body []byte, status int) bool {
	if len(body) == 0 || len(body) > maxVerifierBody {
		return false
	}
	var probe struct {
		Code    *string          `json:"code"`
		Status  *json.RawMessage `json:"status"`
		Message *string          `json:"message"`
	}
	if err := json.Unmarshal(body, &probe); err != nil || probe.Code == nil || probe.Status == nil || probe.Message == nil {
		return false
	}
	var n int
	if err := json.Unmarshal(*probe.Status, &n); err != nil {
		return false // e.g. the reference's string status
	}
	return n == status
}

func deny(status int, message string, cause error) Decision {
	return Decision{Status: status, Body: EnvelopeBody(status, message), Err: cause}
}

// CheckRateLimit counts one request of client (the address the gateway sees)
// to reqPath (the path the client sent) against l. Over the budget it is a
// 429 envelope with Retry-After; on a limited path the decision's Header
// carries the X-RateLimit-* budget either way. A nil l allows everything.
func CheckRateLimit(l *ratelimit.Limiter, client, reqPath string) Decision {
	r := l.Allow(client, reqPath)
	if r.Allowed {
		return Decision{Allow: true, Status: http.StatusOK, Header: r.Header()}
	}
	d := deny(http.StatusTooManyRequests, MessageTooManyRequests, nil)
	d.Header = r.Header()
	return d
}

// EnvelopeBody renders the goserve error envelope.
func EnvelopeBody(status int, message string) []byte {
	body, err := json.Marshal(Envelope{Code: ErrorCode, Status: status, Message: message})
	if err != nil {
		// Marshalling a struct of a string, an int and a string cannot fail.
		panic(err)
	}
	return body
}

// expiringMap remembers a value per key for keep after it was stored (a
// lookup never extends that). It is bounded: when full, expired entries are
// swept and, if that frees too little, arbitrary entries (Go map order) are
// evicted down to 90% of the limit, so the O(n) sweep is paid once per many
// inserts rather than on every insert. An evicted entry only costs one
// extra verification call.
type expiringMap[K comparable, V any] struct {
	mu      sync.Mutex
	limit   int
	keep    time.Duration
	entries map[K]stamped[V]
}

type stamped[V any] struct {
	at  time.Time
	val V
}

func newExpiringMap[K comparable, V any](limit int, keep time.Duration) *expiringMap[K, V] {
	return &expiringMap[K, V]{limit: limit, keep: keep, entries: make(map[K]stamped[V])}
}

// get returns the value stored for key less than window ago (window <=
// keep); entries past keep are dropped on the way.
func (c *expiringMap[K, V]) get(key K, now time.Time, window time.Duration) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	var zero V
	if !ok {
		return zero, false
	}
	if now.Sub(e.at) >= c.keep {
		delete(c.entries, key)
		return zero, false
	}
	if now.Sub(e.at) >= window {
		return zero, false
	}
	return e.val, true
}

func (c *expiringMap[K, V]) add(key K, val V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, present := c.entries[key]; !present && len(c.entries) >= c.limit {
		c.makeRoom(now)
	}
	c.entries[key] = stamped[V]{at: now, val: val}
}

func (c *expiringMap[K, V]) remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// makeRoom frees at least one slot. Called with c.mu held.
func (c *expiringMap[K, V]) makeRoom(now time.Time) {
	for key, e := range c.entries {
		if now.Sub(e.at) >= c.keep {
			delete(c.entries, key)
		}
	}
	target := c.limit - max(1, c.limit/10)
	for key := range c.entries {
		if len(c.entries) <= target {
			return
		}
		delete(c.entries, key)
	}
}

func (c *expiringMap[K, V]) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// keyCache remembers when each key was last accepted. Entries are fresh for
// the cache TTL and kept for the stale window after that.
type keyCache struct {
	*expiringMap[string, struct{}]
	ttl time.Duration
}

func newKeyCache(limit int, ttl, keep time.Duration) *keyCache {
	return &keyCache{expiringMap: newExpiringMap[string, struct{}](limit, keep), ttl: ttl}
}

func (c *keyCache) fresh(key string, now time.Time) bool {
	return c.acceptedWithin(key, now, c.ttl)
}

func (c *keyCache) acceptedWithin(key string, now time.Time, window time.Duration) bool {
	_, ok := c.get(key, now, window)
	return ok
}

func (c *keyCache) add(key string, now time.Time) { c.expiringMap.add(key, struct{}{}, now) }

// IsPublicPath reports whether a request may skip the key check: a GET or
// HEAD whose client path is exactly one of publicPaths (a trailing slash is
// ignored), e.g. /blog/health/ready. Kong cannot exempt a route from a global
// plugin, so the exemption lives here, shared with the local gateway.
func IsPublicPath(method, path string, publicPaths []string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	for _, p := range publicPaths {
		if p != "" && p == path {
			return true
		}
	}
	return false
}
