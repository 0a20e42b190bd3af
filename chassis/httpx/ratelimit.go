package httpx

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"blogplatform/chassis/apperr"
)

// RateLimitOptions: PerMinute sustained requests per client address with
// bursts of Burst. The client address is gin's ClientIP, which trusts
// X-Forwarded-For only from the engine's trusted proxies.
type RateLimitOptions struct {
	PerMinute int
	Burst     int
	// MaxClients bounds memory: the least recently seen clients are dropped
	// beyond it (default 100k).
	MaxClients int
	Now        func() time.Time
}

// RateLimiter is a per-client token bucket. One limiter instance is one
// budget: use separate instances for separately limited routes.
type RateLimiter struct {
	opts    RateLimitOptions
	mu      sync.Mutex
	clients map[string]*clientBucket
}

type clientBucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

func NewRateLimiter(o RateLimitOptions) *RateLimiter {
	if o.PerMinute <= 0 {
		o.PerMinute = 120
	}
	if o.Burst <= 0 {
		o.Burst = 30
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &RateLimiter{opts: o, clients: make(map[string]*clientBucket)}
}

// Allow takes one token for client; when refused it returns how long until
// the next token.
func (l *RateLimiter) Allow(client string) (bool, time.Duration) {
	now := l.opts.Now()
	l.mu.Lock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= l.opts.MaxClients {
			l.evictLocked(now)
		}
		b = &clientBucket{limiter: rate.NewLimiter(rate.Limit(float64(l.opts.PerMinute)/60), l.opts.Burst)}
		l.clients[client] = b
	}
	b.lastSeen = now
	r := b.limiter.ReserveN(now, 1)
	l.mu.Unlock()
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evictLocked drops clients idle long enough for their bucket to be full
// again (they lose nothing); if none is, it drops the oldest one.
func (l *RateLimiter) evictLocked(now time.Time) {
	refill := time.Duration(float64(l.opts.Burst) / (float64(l.opts.PerMinute) / 60) * float64(time.Second))
	var oldestKey string
	var oldest time.Time
	for k, b := range l.clients {
		if now.Sub(b.lastSeen) > refill {
			delete(l.clients, k)
			continue
		}
		if oldestKey == "" || b.lastSeen.Before(oldest) {
			oldestKey, oldest = k, b.lastSeen
		}
	}
	if len(l.clients) >= l.opts.MaxClients && oldestKey != "" {
		delete(l.clients, oldestKey)
	}
}

// Middleware answers 429 `too many requests` with Retry-After (whole seconds,
// at least 1) when the client's budget is spent.
func (l *RateLimiter) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		ok, wait := l.Allow(c.ClientIP())
		if !ok {
			c.Header("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(wait.Seconds())))))
			Fail(c, apperr.New(apperr.TooManyRequests, "too many requests"))
			return
		}
		c.Next()
	}
}
