// Package health serves liveness and readiness. Readiness pings every
// dependency in parallel with a short timeout and reports each one's status
// and latency; a required dependency that is down makes it 503, an optional
// one (Redis: the services fall back to the store) only marks it degraded.
package health

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

type Check struct {
	Name     string
	Required bool
	// RequiredUntilUp makes the dependency required only until its first
	// successful ping: readiness stays 503 at start-up until it is there, but
	// a later outage only degrades readiness. NATS is such a dependency:
	// without it public reads still work, and a gateway that drops a
	// "not ready" replica would otherwise fail those reads too.
	RequiredUntilUp bool
	Ping            func(ctx context.Context) error
}

type Result struct {
	Status    string  `json:"status"` // up | down
	Required  bool    `json:"required"`
	LatencyMs float64 `json:"latencyMs"`
	Error     string  `json:"error,omitempty"`
}

type Report struct {
	Status       string            `json:"status"` // ready | degraded | unavailable | shutting_down
	Dependencies map[string]Result `json:"dependencies"`
}

type Health struct {
	checks   []Check
	everUp   []atomic.Bool // per check, for RequiredUntilUp
	timeout  time.Duration
	draining atomic.Bool
}

func New(timeout time.Duration, checks ...Check) *Health {
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Health{checks: checks, everUp: make([]atomic.Bool, len(checks)), timeout: timeout}
}

// Drain makes readiness answer 503 from now on, so load balancers stop
// sending traffic before the server shuts down.
func (h *Health) Drain() { h.draining.Store(true) }

func (h *Health) Evaluate(ctx context.Context) (int, Report) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	report := Report{Status: "ready", Dependencies: make(map[string]Result, len(h.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Add(1)
		go func(i int, c Check) {
			defer wg.Done()
			start := time.Now()
			err := c.Ping(ctx)
			required := c.Required || c.RequiredUntilUp && !h.everUp[i].Load()
			if err == nil {
				h.everUp[i].Store(true)
			}
			r := Result{Status: "up", Required: required, LatencyMs: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				r.Status = "down"
				r.Error = "unreachable"
				if ctx.Err() != nil {
					r.Error = "timeout"
				}
			}
			mu.Lock()
			report.Dependencies[c.Name] = r
			mu.Unlock()
		}(i, c)
	}
	wg.Wait()
	status := http.StatusOK
	for _, r := range report.Dependencies {
		if r.Status == "down" {
			if r.Required {
				report.Status = "unavailable"
				status = http.StatusServiceUnavailable
			} else if report.Status == "ready" {
				report.Status = "degraded"
			}
		}
	}
	if h.draining.Load() {
		report.Status = "shutting_down"
		status = http.StatusServiceUnavailable
	}
	return status, report
}

// Mount adds GET /health/live and GET /health/ready.
func (h *Health) Mount(r gin.IRoutes) {
	r.GET("/health/live", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "alive"})
	})
	r.GET("/health/ready", func(c *gin.Context) {
		status, report := h.Evaluate(c.Request.Context())
		c.JSON(status, report)
	})
}
