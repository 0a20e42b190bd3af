package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"blogplatform/chassis/httpx"
)

// target is one backend address of a pool.
type target struct {
	name   string // Kong's target host, e.g. auth1
	addr   string // host:port actually dialled
	weight int

	// ready is the last active health check's verdict (true until the first
	// check, so a gateway started next to running replicas routes at once).
	ready atomic.Bool
	// ejected is the passive health check's verdict: set after too many
	// connection failures or timeouts in a row, cleared only by an active
	// health check that passes (as in Kong, traffic cannot bring a target
	// back, since an ejected target gets none).
	ejected atomic.Bool
	// Consecutive failures of proxied requests, reset by an answer.
	tcpFailures atomic.Int32
	timeouts    atomic.Int32

	// probeTimeouts counts consecutive health probes that timed out.
	probeTimeouts atomic.Int32
	// probePasses counts consecutive passing probes while the target is out
	// of the rotation (not ready or ejected).
	probePasses atomic.Int32

	// conns are the kept-alive connections of the direct path (requests
	// without a body); the others use the gateway's http.Transport.
	conns connPool

	served   atomic.Int64 // responses received from this target
	failures atomic.Int64 // attempts that failed at the transport level

	// currentWeight is the smooth weighted round-robin state; guarded by
	// pool.mu.
	currentWeight int
}

// pool is a load-balanced set of targets: a Kong upstream, or the single
// host of a service URL that names no upstream.
type pool struct {
	name       string
	healthPath string
	targets    []*target
	// Passive health thresholds (Kong's healthchecks.passive.unhealthy
	// tcp_failures and timeouts): that many in a row eject a target; 0
	// never does.
	maxTCPFailures, maxTimeouts int32
	// passesToReturn is how many passing probes in a row bring a target
	// that is out of the rotation back (Kong's healthchecks.active.healthy
	// .successes): a replica that just thawed from a freeze answers its
	// first probe before its own connections (store, NATS) have recovered.
	passesToReturn int32

	mu sync.Mutex // guards the targets' currentWeight
}

// eligibility levels, tried in order by pick: the first level with a
// candidate wins.
const (
	pickReadyAndUp = iota // passes active checks and not ejected by passive ones
	pickUp                // ignore readiness: a replica that is "not ready"
	// because, say, NATS is down still serves public reads, which is better
	// than the gateway refusing everything
	pickAny // every target is ejected: try anyway, one may be back
)

// pick chooses the next target by smooth weighted round robin (nginx's
// algorithm: even spreading, no bursts to one target), skipping targets in
// tried and preferring healthy ones. It returns nil when no untried target
// with a positive weight is left.
func (p *pool) pick(tried []*target) *target {
	p.mu.Lock()
	defer p.mu.Unlock()
	for level := pickReadyAndUp; level <= pickAny; level++ {
		var best *target
		total := 0
		for _, t := range p.targets {
			if t.weight <= 0 || slices.Contains(tried, t) || !t.eligible(level) {
				continue
			}
			t.currentWeight += t.weight
			total += t.weight
			if best == nil || t.currentWeight > best.currentWeight {
				best = t
			}
		}
		if best != nil {
			best.currentWeight -= total
			return best
		}
	}
	return nil
}

func (t *target) eligible(level int) bool {
	switch level {
	case pickReadyAndUp:
		return !t.ejected.Load() && t.ready.Load()
	case pickUp:
		return !t.ejected.Load()
	default:
		return true
	}
}

// reportStatus is the passive check's view of an answer. Like Kong (which
// reports a 504 as a timeout), a 504 counts as a timeout; any other answer
// below 400 (Kong's passive healthy statuses) resets the failure counts. 5xx
// answers otherwise count for nothing: http_failures is 0 in the repo's
// files, because a 503 a service chose says nothing about that replica.
func (p *pool) reportStatus(t *target, status int, log *slog.Logger) {
	switch {
	case status == http.StatusGatewayTimeout:
		p.reportFailure(t, true, log)
	case status < 400:
		// Loads first: the common case writes nothing shared.
		if t.tcpFailures.Load() != 0 {
			t.tcpFailures.Store(0)
		}
		if t.timeouts.Load() != 0 {
			t.timeouts.Store(0)
		}
	}
}

// reportFailure counts a failed attempt (a timeout, or a connection that
// could not be made or broke) and ejects the target at the threshold.
func (p *pool) reportFailure(t *target, timeout bool, log *slog.Logger) {
	counter, limit, kind := &t.tcpFailures, p.maxTCPFailures, "tcp_failures"
	if timeout {
		counter, limit, kind = &t.timeouts, p.maxTimeouts, "timeouts"
	}
	if n := counter.Add(1); limit > 0 && n >= limit && !t.ejected.Swap(true) {
		log.Warn("gateway: target ejected by the passive health check",
			"upstream", p.name, "target", t.name, "addr", t.addr, kind, n)
	}
}

// Active health check tuning. A target's own "not ready" answer (any status
// but 200) or a refused connection counts at once: the replica said so, or
// is gone, and a draining replica must lose its traffic within one interval.
// A probe that merely timed out says more about a busy machine than about
// the target, so it takes probeTimeoutsToFail in a row (Kong's
// unhealthy.timeouts) to mark the target not ready.
const probeTimeoutsToFail = 2

// checkHealth polls every target's health path each interval until ctx ends.
// A 200 marks the target ready and brings back a target the passive check
// ejected.
func (p *pool) checkHealth(ctx context.Context, client *http.Client, interval, timeout time.Duration, log *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		var wg sync.WaitGroup
		for _, t := range p.targets {
			wg.Go(func() { p.probe(ctx, client, t, timeout, log) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (p *pool) probe(parent context.Context, client *http.Client, t *target, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	ready, timedOut := false, false
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr+p.healthPath, nil)
	if err == nil {
		req.Header.Set(requestIDHeader, HealthProbeRequestIDPrefix+httpx.NewRequestID())
		var resp *http.Response
		resp, err = client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		} else {
			timedOut = isTimeout(err) || ctx.Err() != nil
		}
	}
	if parent.Err() != nil {
		return // the gateway is shutting down: the verdict means nothing
	}
	if timedOut {
		if t.probeTimeouts.Add(1) < probeTimeoutsToFail {
			return // keep the last verdict until the next probe confirms
		}
	} else {
		t.probeTimeouts.Store(0)
	}
	if ready && (!t.ready.Load() || t.ejected.Load()) {
		// Out of the rotation: it comes back only after passesToReturn
		// passing probes in a row.
		if t.probePasses.Add(1) < max(p.passesToReturn, 1) {
			return
		}
	}
	t.probePasses.Store(0)
	if was := t.ready.Swap(ready); was != ready {
		log.Info("gateway: target readiness changed", "upstream", p.name, "target", t.name, "addr", t.addr, "ready", ready)
	}
	if ready {
		t.tcpFailures.Store(0)
		t.timeouts.Store(0)
		if t.ejected.Swap(false) {
			log.Info("gateway: ejected target is healthy again", "upstream", p.name, "target", t.name, "addr", t.addr)
		}
	}
}
