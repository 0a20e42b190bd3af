// Package throttle limits sign-in and sign-up across all replicas: per client
// address (a token bucket) and per account (attempts per window), both kept
// in Redis so that adding replicas does not multiply the budgets. When Redis
// cannot answer, each replica falls back to a budget of its own (in process)
// and logs that it did: sign-in never fails because Redis is down, it is only
// limited less tightly (a budget per replica instead of one in total).
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/httpx"
)

// degradation logs once when a limiter starts falling back and once when
// Redis answers again, not once per request.
type degradation struct {
	name     string
	log      *slog.Logger
	degraded atomic.Bool
}

func (d *degradation) failed(err error) {
	if !d.degraded.Swap(true) {
		d.log.Warn("rate limit store unreachable; limiting per replica until it answers", "limiter", d.name, "error", err.Error())
	}
}

func (d *degradation) ok() {
	if d.degraded.Swap(false) {
		d.log.Info("rate limit store answers again; limits are shared across replicas", "limiter", d.name)
	}
}

// hashed keeps client identities (addresses, emails) out of Redis key names
// and bounds the key length.
func hashed(prefix, id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:16])
}

// RetryAfterSeconds is the Retry-After value for a wait: whole seconds, at
// least 1.
func RetryAfterSeconds(wait time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(wait.Seconds()))))
}

// gcra is a token bucket as a "theoretical arrival time" (GCRA): the key
// holds the time (µs, Redis's clock, so replicas' clocks do not matter) at
// which the bucket is full again. A request adds one interval; it is refused
// when that would put the time more than burst intervals ahead of now. It
// returns 0 when allowed, otherwise the wait in µs.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local limit = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + interval
if new - now > limit then return string.format('%.0f', new - now - limit) end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
return '0'`)

// AddressLimiter is the per-address budget of one route (sign-in or
// sign-up), shared by every replica through Redis.
type AddressLimiter struct {
	rdb      redis.UniversalClient
	prefix   string
	interval time.Duration
	burst    int
	fallback *httpx.RateLimiter
	state    degradation
}

// NewAddressLimiter allows perMinute requests per address with bursts of
// burst. name ("signin", "signup") separates the routes' budgets.
func NewAddressLimiter(rdb redis.UniversalClient, name string, perMinute, burst int, log *slog.Logger) *AddressLimiter {
	return &AddressLimiter{
		rdb: rdb, prefix: "auth_ratelimit_" + name + "_",
		interval: time.Minute / time.Duration(perMinute), burst: burst,
		fallback: httpx.NewRateLimiter(httpx.RateLimitOptions{PerMinute: perMinute, Burst: burst}),
		state:    degradation{name: name, log: log},
	}
}

// Allow takes one request from client's budget; when refused it returns how
// long until the next one is allowed.
func (l *AddressLimiter) Allow(ctx context.Context, client string) (bool, time.Duration) {
	res, err := gcra.Run(ctx, l.rdb, []string{hashed(l.prefix, client)}, l.interval.Microseconds(), l.burst).Text()
	if err != nil {
		l.state.failed(err)
		return l.fallback.Allow(client)
	}
	l.state.ok()
	wait, err := strconv.ParseInt(res, 10, 64)
	if err != nil || wait <= 0 {
		return true, 0
	}
	return false, time.Duration(wait) * time.Microsecond
}

// attempt counts one sign-in attempt of an account unless its budget is
// spent, atomically (parallel attempts cannot all pass a check made before
// any of them was counted). It returns 0 when counted, otherwise the wait in
// ms until the window ends.
var attempt = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return ttl
end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

// undo gives back the attempt of a successful sign-in (failures stay
// counted: a user signing in does not hand an attacker a fresh budget).
var undo = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0`)

// AccountLimiter bounds sign-in attempts per account (email), whatever the
// address and replica they come from: limit attempts that did not succeed
// per window, counted from the first.
type AccountLimiter struct {
	rdb    redis.UniversalClient
	limit  int
	window time.Duration
	local  *windowCounter
	state  degradation
}

func NewAccountLimiter(rdb redis.UniversalClient, limit int, window time.Duration, log *slog.Logger) *AccountLimiter {
	return &AccountLimiter{rdb: rdb, limit: limit, window: window,
		local: newWindowCounter(limit, window, 100_000), state: degradation{name: "signin_account", log: log}}
}

func (l *AccountLimiter) key(account string) string { return hashed("auth_signin_attempts_", account) }

// Begin counts an attempt for account. When the budget is spent it returns
// false and the wait until the window ends; the attempt is then not made.
func (l *AccountLimiter) Begin(ctx context.Context, account string) (bool, time.Duration) {
	wait, err := attempt.Run(ctx, l.rdb, []string{l.key(account)}, l.limit, l.window.Milliseconds()).Int64()
	if err != nil {
		l.state.failed(err)
		return l.local.begin(account)
	}
	l.state.ok()
	if wait > 0 {
		return false, time.Duration(wait) * time.Millisecond
	}
	return true, 0
}

// Succeeded gives back the attempt Begin counted.
func (l *AccountLimiter) Succeeded(ctx context.Context, account string) {
	if err := undo.Run(ctx, l.rdb, []string{l.key(account)}).Err(); err != nil {
		l.state.failed(err)
		l.local.undo(account)
	}
}

// windowCounter is AccountLimiter's in-process fallback: the same counting,
// per replica, over a bounded number of accounts.
type windowCounter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	max    int
	now    func() time.Time
	m      map[string]*windowCount
}

type windowCount struct {
	n     int
	reset time.Time
}

func newWindowCounter(limit int, window time.Duration, size int) *windowCounter {
	return &windowCounter{limit: limit, window: window, max: size, now: time.Now, m: make(map[string]*windowCount)}
}

func (w *windowCounter) begin(account string) (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	c, ok := w.m[account]
	if !ok || !now.Before(c.reset) {
		if !ok && len(w.m) >= w.max {
			w.evictLocked(now)
		}
		c = &windowCount{reset: now.Add(w.window)}
		w.m[account] = c
	}
	if c.n >= w.limit {
		return false, c.reset.Sub(now)
	}
	c.n++
	return true, 0
}

func (w *windowCounter) undo(account string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.m[account]; ok && c.n > 0 {
		c.n--
	}
}

// evictLocked drops ended windows; if none has ended, an arbitrary one.
func (w *windowCounter) evictLocked(now time.Time) {
	for k, c := range w.m {
		if !now.Before(c.reset) {
			delete(w.m, k)
		}
	}
	for k := range w.m {
		if len(w.m) < w.max {
			return
		}
		delete(w.m, k)
	}
}
