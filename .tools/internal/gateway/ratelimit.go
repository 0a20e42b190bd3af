package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"blogplatform/tools/internal/kongconf"
)

// Kong's rate-limiting defaults.
const (
	defaultRateLimitStatus  = http.StatusTooManyRequests
	defaultRateLimitMessage = "API rate limit exceeded"
	// rateLimitSweepEvery bounds the per-client map: entries of windows that
	// ended are dropped once this many requests have been counted since the
	// last sweep.
	rateLimitSweepEvery = 4096
)

// rateLimiter is Kong's rate-limiting plugin with policy local: fixed windows
// aligned to the clock (a minute window starts at :00), counted per client
// address, per route instance. Kong counts per node; the local gateway is one
// node.
type rateLimiter struct {
	windows []limitWindow
	status  int
	message string
	headers bool // add X-RateLimit-* / RateLimit-* headers

	mu     sync.Mutex
	counts map[rateKey]int
	since  int // counts recorded since the last sweep
}

type limitWindow struct {
	name   string // Second, Minute, ... (Kong's header suffix)
	length time.Duration
	limit  int
}

type rateKey struct {
	client string
	window int   // index into windows
	start  int64 // window start, unix seconds
}

func newRateLimiter(c kongconf.RateLimitConfig) (*rateLimiter, error) {
	if c.Policy != "" && c.Policy != "local" {
		// cluster/redis policies share counts between Kong nodes; one local
		// node counting locally is equivalent.
		c.Policy = "local"
	}
	if c.LimitBy != "" && c.LimitBy != "ip" {
		return nil, fmt.Errorf("rate-limiting: limit_by %q is not supported by the local gateway (ip only)", c.LimitBy)
	}
	l := &rateLimiter{
		status:  c.ErrorCode,
		message: c.ErrorMessage,
		headers: !c.HideClientHeaders,
		counts:  map[rateKey]int{},
	}
	if l.status == 0 {
		l.status = defaultRateLimitStatus
	}
	if l.message == "" {
		l.message = defaultRateLimitMessage
	}
	for _, w := range []struct {
		name   string
		length time.Duration
		limit  float64
	}{
		{"Second", time.Second, c.Second},
		{"Minute", time.Minute, c.Minute},
		{"Hour", time.Hour, c.Hour},
		{"Day", 24 * time.Hour, c.Day},
	} {
		if w.limit > 0 {
			l.windows = append(l.windows, limitWindow{w.name, w.length, int(w.limit)})
		}
	}
	if len(l.windows) == 0 {
		return nil, fmt.Errorf("rate-limiting: no limit configured (second, minute, hour or day)")
	}
	return l, nil
}

// admit counts one request of client at now. When a window's limit is
// already reached it returns false and how long until that window ends.
// Headers for the client are added to h either way.
func (l *rateLimiter) admit(client string, now time.Time, h http.Header) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)

	allowed := true
	var retryAfter time.Duration
	keys := make([]rateKey, len(l.windows))
	tightestRemaining := math.MaxInt
	var tightest limitWindow
	var tightestReset time.Duration
	for i, w := range l.windows {
		start := now.Truncate(w.length)
		keys[i] = rateKey{client: client, window: i, start: start.Unix()}
		used := l.counts[keys[i]]
		reset := start.Add(w.length).Sub(now)
		remaining := w.limit - used
		if remaining <= 0 {
			allowed = false
			retryAfter = max(retryAfter, reset)
			remaining = 0
		} else {
			remaining-- // this request
		}
		if l.headers {
			h.Set("X-RateLimit-Limit-"+w.name, strconv.Itoa(w.limit))
			h.Set("X-RateLimit-Remaining-"+w.name, strconv.Itoa(remaining))
		}
		if remaining < tightestRemaining {
			tightestRemaining, tightest, tightestReset = remaining, w, reset
		}
	}
	if l.headers {
		h.Set("RateLimit-Limit", strconv.Itoa(tightest.limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(tightestRemaining))
		h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(tightestReset)))
	}
	if !allowed {
		return false, retryAfter
	}
	for _, k := range keys {
		l.counts[k]++
	}
	l.since++
	return true, 0
}

// maybeSweep drops the counts of windows that have ended.
func (l *rateLimiter) maybeSweep(now time.Time) {
	if l.since < rateLimitSweepEvery {
		return
	}
	l.since = 0
	for k := range l.counts {
		if time.Unix(k.start, 0).Add(l.windows[k.window].length).Before(now) {
			delete(l.counts, k)
		}
	}
}

func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
