// Package ratelimit counts requests per client address and path prefix and
// says when a client is over its per-minute budget.
//
// It has no Kong types on purpose: the Kong plugin and the local Go gateway
// build their limiter from the same configuration (verify.Settings) and call
// the same Allow, so both gateways limit, and answer, identically.
//
// The count is a sliding window: the current minute's requests plus the
// previous minute's weighted by how much of it still lies within the last 60
// seconds. Unlike clock-aligned fixed windows (Kong's bundled plugin), a
// client cannot get twice the budget by straddling a minute boundary, and a
// burst that crosses :00 is still limited.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"blogplatform/kong/apikey_auth_plugin/kongpath"
)

// Window is the length of the budget window: limits are per minute.
const Window = time.Minute

const (
	// DefaultMaxClients caps how many (client, path) counters are kept. A
	// flood of distinct source addresses must not grow the gateway's memory
	// without bound; ~100 bytes each, the default is a few MiB.
	DefaultMaxClients = 100_000
	// MaxPerMinute bounds per_minute so that the weighted count never loses
	// precision; far above any sensible limit.
	MaxPerMinute = 1_000_000
	// sweepEvery is how many counted requests pass between sweeps of idle
	// counters when the cap is not reached (besides at most one per window).
	sweepEvery = 10_000
)

// Response header names, as Kong's bundled rate-limiting plugin sends them.
const (
	HeaderLimit      = "X-RateLimit-Limit-Minute"
	HeaderRemaining  = "X-RateLimit-Remaining-Minute"
	HeaderRetryAfter = "Retry-After"
)

// Rule limits requests whose path starts with one of Paths to PerMinute per
// client address. Each prefix has its own budget: with paths [/a, /b] and
// per_minute 120 a client may send 120 requests to /a and 120 to /b.
type Rule struct {
	// Paths are request-path prefixes as the client sent them (before any
	// gateway rewrite), e.g. /auth/signin/basic.
	Paths []string `json:"paths"`
	// PerMinute is the budget of one client for one prefix over any 60 s.
	PerMinute int `json:"per_minute"`
}

// Options tune a Limiter; the zero value is the production setting.
type Options struct {
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// MaxClients caps the tracked (client, prefix) counters; <= 0 means
	// DefaultMaxClients.
	MaxClients int
}

// Result is the outcome of one Allow.
type Result struct {
	// Limited is true when a rule covers the path; the other fields are
	// meaningful only then. An unlimited path is always allowed.
	Limited bool
	// Allowed is true when the request may go on; it has been counted.
	Allowed bool
	// Limit is the rule's per-minute budget.
	Limit int
	// Remaining is how many more requests the client may send now (after
	// this one, when allowed).
	Remaining int
	// RetryAfter is, when !Allowed, how long until one more request fits.
	RetryAfter time.Duration
}

// Header returns the headers a gateway adds to its response: the limit and
// remaining budget on every response of a limited path, plus Retry-After
// (whole seconds, at least 1) on a denial. Nil for an unlimited path.
func (r Result) Header() http.Header {
	if !r.Limited {
		return nil
	}
	h := http.Header{}
	h.Set(HeaderLimit, strconv.Itoa(r.Limit))
	h.Set(HeaderRemaining, strconv.Itoa(r.Remaining))
	if !r.Allowed {
		h.Set(HeaderRetryAfter, strconv.Itoa(RetryAfterSeconds(r.RetryAfter)))
	}
	return h
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1, as
// Retry-After requires.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Limiter counts requests. It is safe for concurrent use. A nil *Limiter
// limits nothing.
type Limiter struct {
	rules      []compiledRule
	now        func() time.Time
	maxClients int

	mu        sync.Mutex
	counters  map[counterKey]*counter
	sinceScan int   // counted requests since the last sweep
	lastScan  int64 // window index of the last sweep
}

type compiledRule struct {
	prefixes  []string
	cleaned   []string // path.Clean of each prefix
	perMinute int
}

type counterKey struct {
	client string
	rule   int // index into rules
	prefix int // index into the rule's prefixes
}

// counter is one client's count for one prefix in the window that starts at
// window*Window (unix time) and the window before it.
type counter struct {
	window int64
	cur    int
	prev   int
}

// New validates rules and builds a Limiter. A rule needs at least one path,
// each starting with "/", and 1 <= per_minute <= MaxPerMinute.
func New(rules []Rule, opts Options) (*Limiter, error) {
	l := &Limiter{
		now:        opts.Now,
		maxClients: opts.MaxClients,
		counters:   map[counterKey]*counter{},
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxClients <= 0 {
		l.maxClients = DefaultMaxClients
	}
	var errs []error
	for i, r := range rules {
		if r.PerMinute < 1 || r.PerMinute > MaxPerMinute {
			errs = append(errs, fmt.Errorf("rate_limits[%d]: per_minute %d, want 1..%d", i, r.PerMinute, MaxPerMinute))
		}
		if len(r.Paths) == 0 {
			errs = append(errs, fmt.Errorf("rate_limits[%d]: paths is empty", i))
		}
		c := compiledRule{perMinute: r.PerMinute}
		for _, p := range r.Paths {
			if !strings.HasPrefix(p, "/") {
				errs = append(errs, fmt.Errorf("rate_limits[%d]: path %q does not start with /", i, p))
				continue
			}
			c.prefixes = append(c.prefixes, p)
			c.cleaned = append(c.cleaned, path.Clean(p))
		}
		l.rules = append(l.rules, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return l, nil
}

// Allow counts one request of client (its address) to path (the path the
// client sent) and says whether it is within budget. A denied request is not
// counted, so a client that keeps retrying gets through again as soon as
// Retry-After has passed. The first rule with a matching prefix applies.
func (l *Limiter) Allow(client, reqPath string) Result {
	if l == nil || len(l.rules) == 0 {
		return Result{Allowed: true}
	}
	ri, pi, ok := l.match(reqPath)
	if !ok {
		return Result{Allowed: true}
	}
	limit := l.rules[ri].perMinute
	now := l.now()
	window := now.UnixNano() / int64(Window)
	elapsed := time.Duration(now.UnixNano() - window*int64(Window)) // into the current window

	l.mu.Lock()
	defer l.mu.Unlock()
	key := counterKey{client: client, rule: ri, prefix: pi}
	c := l.counters[key]
	if c == nil {
		l.makeRoom(window)
		c = &counter{window: window}
		l.counters[key] = c
	}
	c.roll(window)

	// The previous window's share that still lies within the last minute.
	weight := 1 - float64(elapsed)/float64(Window)
	used := float64(c.cur) + float64(c.prev)*weight
	if used+1 > float64(limit) {
		return Result{Limited: true, Limit: limit, Remaining: 0, RetryAfter: c.retryAfter(limit, elapsed)}
	}
	c.cur++
	l.sinceScan++
	if l.sinceScan >= sweepEvery {
		l.sweep(window)
	}
	return Result{Limited: true, Allowed: true, Limit: limit, Remaining: max(0, int(float64(limit)-used-1))}
}

// Covers reports whether a rule limits reqPath, so a gateway can skip
// finding out the client's address (a round trip to Kong) for other paths.
func (l *Limiter) Covers(reqPath string) bool {
	if l == nil {
		return false
	}
	_, _, ok := l.match(reqPath)
	return ok
}

// match finds the rule and prefix covering reqPath. The path is also
// percent-decoded and cleaned (dot segments, doubled slashes) so that
// /auth//signin/basic, /auth/./signin/basic or /auth/%73ignin/basic, which
// a router or the upstream may well treat like the plain path, cannot slip
// past a prefix.
func (l *Limiter) match(reqPath string) (rule, prefix int, ok bool) {
	if reqPath == "" {
		reqPath = "/"
	}
	// Every well-formed triplet is decoded even when another one is
	// malformed (url.PathUnescape would give up on the whole path).
	// A path that needs neither decoding nor cleaning (the usual one, and
	// every path the gateways normalised first) costs no allocation.
	decoded := kongpath.Unescape(reqPath)
	if decoded == "" || decoded[0] != '/' {
		decoded = "/" + decoded
	}
	cleaned := path.Clean(decoded)
	for ri, r := range l.rules {
		for pi, p := range r.prefixes {
			if strings.HasPrefix(reqPath, p) || strings.HasPrefix(cleaned, r.cleaned[pi]) {
				return ri, pi, true
			}
		}
	}
	return 0, 0, false
}

// roll moves the counter to window, shifting or dropping older counts.
func (c *counter) roll(window int64) {
	switch {
	case window == c.window:
	case window == c.window+1:
		c.prev, c.cur, c.window = c.cur, 0, window
	default:
		c.prev, c.cur, c.window = 0, 0, window
	}
}

// retryAfter is how long from now until cur + prev*weight + 1 <= limit, given
// the counter is rolled to the current window and elapsed into it.
func (c *counter) retryAfter(limit int, elapsed time.Duration) time.Duration {
	w := float64(Window)
	e := float64(elapsed)
	free := float64(limit - 1 - c.cur) // room the previous window's share must shrink to
	if free >= 0 && c.prev > 0 {
		// Within this window: prev*(1-(e+t)/w) <= free.
		return ceilMillis(w*(1-free/float64(c.prev)) - e)
	}
	// Only in the next window, where this window's count becomes the
	// weighted one: cur*(1-t'/w) <= limit-1.
	t := w - e
	if c.cur > 0 {
		t += max(0, w*(1-float64(limit-1)/float64(c.cur)))
	}
	return ceilMillis(t)
}

// ceilMillis rounds nanoseconds up to a whole millisecond, which absorbs the
// float error of the weighting: at the returned instant the request fits.
func ceilMillis(ns float64) time.Duration {
	return time.Duration(math.Ceil(max(ns, 0)/1e6)) * time.Millisecond
}

// makeRoom keeps the map under maxClients before a new counter is added.
// Idle counters go first; if every tracked client is active (a flood of
// distinct addresses), arbitrary ones are dropped down to 90% of the cap:
// an evicted client starts with a fresh budget, which bounds memory at the
// price of some leniency only under such a flood. Called with l.mu held.
func (l *Limiter) makeRoom(window int64) {
	if len(l.counters) < l.maxClients {
		if window > l.lastScan {
			// At most one sweep per window keeps idle clients from piling up
			// in a long-running gateway.
			l.sweep(window)
		}
		return
	}
	l.sweep(window)
	target := l.maxClients - max(1, l.maxClients/10)
	for key := range l.counters {
		if len(l.counters) <= target {
			return
		}
		delete(l.counters, key)
	}
}

// sweep drops counters with nothing left in the sliding window. Called with
// l.mu held.
func (l *Limiter) sweep(window int64) {
	l.sinceScan = 0
	l.lastScan = window
	for key, c := range l.counters {
		if c.window < window-1 || (c.window == window-1 && c.cur == 0) {
			delete(l.counters, key)
		}
	}
}

// Len reports how many counters are tracked (for tests and metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counters)
}
