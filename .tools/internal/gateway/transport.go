package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// errNoTarget means the pool had no target left to try.
var errNoTarget = errors.New("no upstream target available")

// Per-attempt deadlines, as the cause of the attempt's cancelled context.
var (
	errConnectTimeout = errors.New("upstream connect timed out")
	errWriteTimeout   = errors.New("upstream write timed out")
	errReadTimeout    = errors.New("upstream read timed out")
)

// attemptError is the failure of the last attempt, classified the way nginx
// classifies it: a timeout (the client gets 504) or another error (502).
type attemptError struct {
	err     error
	timeout bool
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }
func (e *attemptError) Timeout() bool { return e.timeout }

// proxyPlan is what the handler decided for one request, handed to the
// transport through the request context.
type proxyPlan struct {
	pool *pool
	// replayable is true when the body can be sent again (none, or buffered
	// in full), a precondition of every retry.
	replayable bool
	// The route's service settings (Kong's connect_timeout, write_timeout,
	// read_timeout and retries).
	connectTimeout, writeTimeout, readTimeout time.Duration
	retries                                   int

	// What rewrite needs to build the upstream request.
	upstreamPath string // escaped
	prefix       string // the route path that matched
	originalPath string // the client's path
	clientIP     string
	clientIPOK   bool // clientIP came from host:port (X-Forwarded-For is set)
	// forwarded backs the X-Forwarded-* and X-Real-IP header values.
	forwarded [7]string
}

type planKey struct{}

func withPlan(ctx context.Context, p *proxyPlan) context.Context {
	return context.WithValue(ctx, planKey{}, p)
}

// balancingTransport sends each request to a target of its plan's pool, with
// Kong's (nginx's) per-attempt timeouts, and retries on another target the
// way nginx's default proxy_next_upstream (error timeout) does:
//   - the connection could not be made (refused, unreachable, or no
//     connection within connect_timeout): nothing reached the target, so any
//     method is retried;
//   - the request was sent and then failed (reset, closed, or no response
//     header within read_timeout after the request was written, or a write
//     stalled longer than write_timeout): retried unless the method is
//     non-idempotent by nginx's definition (POST, LOCK, PATCH), because the
//     target may have acted on it. Such a request is answered at once with
//     502 (error) or 504 (timeout), never sent twice.
//
// At most 1 + retries attempts, each on a target not tried yet for this
// request. A response with any status, 5xx included, is the answer: the
// service chose it, and retrying a 503 "authentication service unavailable"
// elsewhere would only double the load.
//
// Each outcome feeds the pool's passive health check (see target.report*).
// read_timeout also bounds each wait for more of the response body once the
// headers arrived, like nginx's proxy_read_timeout; the body is then cut off.
type balancingTransport struct {
	base http.RoundTripper
	log  *slog.Logger
}

func (bt *balancingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	plan, _ := req.Context().Value(planKey{}).(*proxyPlan)
	if plan == nil {
		return nil, errors.New("gateway: request without a proxy plan")
	}
	var tried []*target
	var lastErr error
	for attempt := 0; attempt <= plan.retries; attempt++ {
		t := plan.pool.pick(tried)
		if t == nil {
			break
		}
		tried = append(tried, t)
		var body io.ReadCloser
		if attempt > 0 && req.GetBody != nil {
			// A fresh copy of the buffered body for each further attempt.
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			body = b
		}
		resp, f := bt.attempt(req, body, t, plan)
		if f == nil {
			t.served.Add(1)
			plan.pool.reportStatus(t, resp.StatusCode, bt.log)
			return resp, nil
		}
		t.failures.Add(1)
		lastErr = &attemptError{err: f.err, timeout: f.timeout}
		if req.Context().Err() != nil {
			return nil, f.err // the client went away: nobody to retry for
		}
		plan.pool.reportFailure(t, f.timeout, bt.log)
		retry := plan.replayable && (!f.sent || !nonIdempotent(req.Method))
		bt.log.Warn("gateway: upstream attempt failed",
			"upstream", plan.pool.name, "target", t.name, "addr", t.addr,
			"method", req.Method, "path", req.URL.Path, "error", f.err.Error(),
			"timeout", f.timeout, "sent", f.sent, "retrying", retry && attempt < plan.retries,
			"requestId", req.Header.Get(requestIDHeader))
		if !retry {
			return nil, lastErr
		}
	}
	if lastErr == nil {
		return nil, errNoTarget
	}
	return nil, lastErr
}

// failure describes one failed attempt.
type failure struct {
	err     error
	timeout bool // a deadline passed (connect, write or read)
	sent    bool // a connection existed, so (part of) the request may have reached the target
}

// attempt sends one copy of req to t. body replaces req.Body when not nil.
func (bt *balancingTransport) attempt(req *http.Request, body io.ReadCloser, t *target, plan *proxyPlan) (*http.Response, *failure) {
	if body == nil && canGoDirect(req) {
		return bt.attemptDirect(req, t, plan)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{cancel: cancel}
	w.arm(plan.connectTimeout, errConnectTimeout)
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			w.mu.Lock()
			w.gotConn = true
			w.mu.Unlock()
			w.arm(plan.writeTimeout, errWriteTimeout)
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { w.arm(plan.readTimeout, errReadTimeout) },
	}
	// The transport owns the request until RoundTrip returns: each attempt
	// gets its own shallow copy and URL.
	out := req.WithContext(httptrace.WithClientTrace(ctx, trace))
	u := *req.URL
	u.Host = t.addr
	out.URL = &u
	if body != nil {
		out.Body = body
	}
	resp, err := bt.base.RoundTrip(out)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection (WebSocket) belongs to the two ends now:
		// no read timeout, and its body must stay the raw connection.
		w.stop()
		return resp, nil
	}
	if err == nil {
		// The headers are in; read_timeout now bounds each body read.
		w.arm(plan.readTimeout, errReadTimeout)
		resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, readTimeout: plan.readTimeout}
		return resp, nil
	}
	cause, gotConn := w.finish()
	if cause != nil {
		err = cause
	}
	return nil, &failure{err: err, timeout: cause != nil || isTimeout(err), sent: gotConn}
}

// watchdog cancels an attempt's context when its current deadline passes,
// with the phase's error as the cause. One timer per attempt: moving the
// deadline later costs no timer operation (the timer, firing early, re-arms
// itself for the rest).
type watchdog struct {
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	timer     *time.Timer
	deadline  time.Time // current deadline
	scheduled time.Time // when the timer will fire
	cause     error     // the error of the current phase
	fired     error     // set once the deadline passed
	gotConn   bool
	done      bool
}

func (w *watchdog) arm(d time.Duration, cause error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.fired != nil {
		return
	}
	w.deadline, w.cause = now.Add(d), cause
	switch {
	case w.timer == nil:
		w.timer = time.AfterFunc(d, w.expire)
		w.scheduled = w.deadline
	case w.deadline.Before(w.scheduled):
		w.timer.Reset(d)
		w.scheduled = w.deadline
	}
}

func (w *watchdog) expire() {
	w.mu.Lock()
	if w.done || w.fired != nil {
		w.mu.Unlock()
		return
	}
	if left := time.Until(w.deadline); left > 0 {
		w.timer.Reset(left)
		w.scheduled = w.deadline
		w.mu.Unlock()
		return
	}
	w.fired = w.cause
	w.mu.Unlock()
	w.cancel(w.fired)
}

// finish stops the watchdog and releases the attempt's context. It returns
// the deadline error if one passed, and whether a connection was obtained.
func (w *watchdog) finish() (error, bool) {
	w.mu.Lock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	fired, gotConn := w.fired, w.gotConn
	w.mu.Unlock()
	w.cancel(nil)
	return fired, gotConn
}

// watchedBody applies read_timeout to each read of the response body: a
// target that stops sending in the middle of a body is cut off, as nginx
// does, instead of holding the client forever.
type watchedBody struct {
	io.ReadCloser
	w           *watchdog
	readTimeout time.Duration
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.arm(b.readTimeout, errReadTimeout)
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		if cause, _ := b.w.peek(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.finish()
	return err
}

// stop disarms the watchdog without ending the attempt's context.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *watchdog) peek() (error, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired, w.gotConn
}

// nonIdempotent lists the methods nginx never passes to the next upstream
// once the request was sent (proxy_next_upstream without non_idempotent).
func nonIdempotent(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, "LOCK":
		return true
	}
	return false
}
