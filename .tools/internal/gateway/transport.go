package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// errNoTarget means the pool had no target left to try.
var errNoTarget = errors.New("no upstream target available")

// proxyPlan is what the handler decided for one request, handed to the
// transport through the request context.
type proxyPlan struct {
	pool *pool
	// replayable is true when the body can be sent again (none, or buffered
	// in full), a precondition of every retry.
	replayable bool
}

type planKey struct{}

func withPlan(ctx context.Context, p *proxyPlan) context.Context {
	return context.WithValue(ctx, planKey{}, p)
}

// balancingTransport sends each request to a target of its plan's pool, and
// retries on another target when that is safe:
//   - the connection could not be made (refused, unreachable, dial timeout):
//     nothing reached the target, so any method is retried, and the target is
//     marked down for a while;
//   - any other transport failure (reset, EOF before the answer) of an
//     idempotent method (GET, HEAD, OPTIONS, PUT, DELETE), which by HTTP's
//     definition may be repeated.
//
// A response with any status, 5xx included, is the answer: the service chose
// it, and retrying a 503 "authentication service unavailable" elsewhere would
// only double the load.
type balancingTransport struct {
	base     http.RoundTripper
	downFor  time.Duration
	maxTries int
	now      func() time.Time
	log      *slog.Logger
}

func (bt *balancingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	plan, _ := req.Context().Value(planKey{}).(*proxyPlan)
	if plan == nil {
		return nil, errors.New("gateway: request without a proxy plan")
	}
	tried := map[*target]bool{}
	var lastErr error
	for attempt := 0; attempt < bt.maxTries; attempt++ {
		t := plan.pool.pick(tried, bt.now())
		if t == nil {
			break
		}
		tried[t] = true
		out := req
		if attempt > 0 {
			// Each attempt needs its own request (the transport owns it
			// until it returns) and a fresh copy of the buffered body.
			out = req.Clone(req.Context())
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				out.Body = body
			}
		}
		out.URL.Host = t.addr
		resp, err := bt.base.RoundTrip(out)
		if err == nil {
			t.served.Add(1)
			return resp, nil
		}
		t.failures.Add(1)
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err // the client went away: nobody to retry for
		}
		connectFailed := isConnectFailure(err)
		if connectFailed {
			t.markDown(bt.now(), bt.downFor)
		}
		retry := plan.replayable && (connectFailed || isIdempotent(req.Method))
		bt.log.Warn("gateway: upstream attempt failed",
			"upstream", plan.pool.name, "target", t.name, "addr", t.addr,
			"method", req.Method, "path", req.URL.Path, "error", err.Error(), "retrying", retry,
			"requestId", req.Header.Get(requestIDHeader))
		if !retry {
			return nil, err
		}
	}
	if lastErr == nil {
		return nil, errNoTarget
	}
	return nil, lastErr
}

// isConnectFailure reports whether err happened before a connection existed,
// so the request cannot have reached the target.
func isConnectFailure(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// isIdempotent lists the methods HTTP defines as idempotent (RFC 9110 §9.2.2)
// that clients of this platform use.
func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
