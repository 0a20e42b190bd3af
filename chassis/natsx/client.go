package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/metrics"
)

// ErrUnavailable wraps every failure to get a usable answer: no responders,
// timeout, closed connection, open breaker or a reply that is not the
// envelope. Callers map it to 503.
var ErrUnavailable = errors.New("remote service unavailable")

// Defaults of ClientOptions, BreakerOptions and RetryOptions.
const (
	DefaultTimeout             = 2 * time.Second
	DefaultAttemptTimeout      = 100 * time.Millisecond
	DefaultMaxAttempts         = 31
	DefaultRetryBudget         = 1.0
	DefaultBreakerFailureRatio = 0.5
	DefaultBreakerMinRequests  = 20
	DefaultBreakerWindow       = 10 * time.Second
	DefaultBreakerOpenTimeout  = 5 * time.Second
	DefaultBreakerHalfOpen     = 5
)

// BreakerOptions configure the client's circuit breaker. It counts requests,
// not messages: a request whose first message was lost but whose hedge was
// answered is a success. Only unavailability is a failure (a 401 from auth is
// an answer, not an outage), and a caller that gives up counts as nothing.
//
// The breaker opens on a failure ratio over a rolling window with a minimum
// number of requests, not on failures in a row: when one replica of several
// dies, the requests in flight to it fail together (if they cannot be
// retried), and a run of consecutive failures would cut every caller off the
// replicas that still answer.
type BreakerOptions struct {
	Disabled bool
	// FailureRatio opens the breaker when failures/(failures+successes) in
	// Window reaches it (default 0.5)...
	FailureRatio float64
	// ...provided at least MinRequests requests completed in Window
	// (default 20), so a handful of failures at low traffic cannot open it.
	MinRequests uint32
	// Window is the rolling window, counted in ten buckets (default 10s).
	Window time.Duration
	// OpenTimeout is how long it stays open before trial requests (default 5s).
	OpenTimeout time.Duration
	// HalfOpenRequests trial requests are let through when half-open; that
	// many successes close it, one failure opens it again (default 5).
	HalfOpenRequests uint32
}

// RetryOptions configure how an idempotent request is retried and hedged.
//
// A request is first sent as one message. When no answer came within
// AttemptTimeout, it is hedged: a new round of messages is sent while the
// earlier ones stay pending, and the first reply wins. Each round sends twice
// as many messages as the one before (1, 2, 4, 8, …), up to MaxAttempts
// messages in all, while the overall deadline allows. A live but slow
// responder therefore still answers, and a frozen or lost one costs one
// AttemptTimeout.
//
// NATS delivers each message of a queue group to a member chosen at random,
// so with one dead member out of N, k messages all reach it with probability
// (1/N)^k. The defaults (100 ms, 31 messages: rounds of 1, 2, 4, 8 and 16
// sent at 0, 100, 200, 300 and 400 ms) bound that at (1/2)^31 ≈ 5·10⁻¹⁰ for
// two replicas (15 messages would leave 3·10⁻⁵: about one failed request per
// 30,000 while a member is frozen), within 0.5 s, which covers the second or
// two the server needs to drop a frozen member. 100 ms is ~13× the measured
// p99 of an auth request at saturation (2.4–7.8 ms), short enough that a
// protected request making two calls stays well inside the gateway's
// per-attempt read timeout for reads even when both first messages reach a
// frozen member.
//
// "No responders" (nobody subscribed at all, e.g. every replica restarting)
// is retried with one message after a short jittered pause, never in a loop.
//
// Hedges add load, so they are bounded by a budget: over a rolling 10 s the
// extra messages may not exceed Budget times the requests plus a floor of
// 100 per second. When a responder is slow because it is overloaded, the
// hedges thus add at most that much load instead of multiplying it.
type RetryOptions struct {
	// Idempotent lists the subjects (NATS patterns: "*" one token, ">" the
	// rest) whose requests may be delivered more than once. Requests to any
	// other subject are sent exactly once and never retried: a subject that
	// changes state must not be listed.
	Idempotent []string
	// AttemptTimeout is how long a round waits for a reply before the next
	// round is sent (default 100 ms).
	AttemptTimeout time.Duration
	// MaxAttempts bounds the messages sent for one request (default 15).
	MaxAttempts int
	// Budget is the ratio of extra messages to requests allowed over a
	// rolling window (default 1.0).
	Budget float64
	// NoResponderPause is the pause before retrying after "no responders"
	// or a message refused while the connection reconnects (default 25 ms,
	// plus up to as much again of jitter).
	NoResponderPause time.Duration
}

// ClientOptions configure a Client.
type ClientOptions struct {
	Timeout    time.Duration // per request, default 2s; the caller's deadline wins when sooner
	Breaker    BreakerOptions
	Retry      RetryOptions
	Name       string // breaker name for metrics
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
}

// Client sends typed requests.
type Client struct {
	nc      *nats.Conn
	opts    ClientOptions
	breaker *gobreaker.CircuitBreaker[*nats.Msg]
	budget  *retryBudget
	tracer  trace.Tracer
	// noopTracer: no span is started; the caller's trace context (if any)
	// is still injected into the message headers.
	noopTracer bool
}

func NewClient(nc *nats.Conn, o ClientOptions) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.Name == "" {
		o.Name = "nats"
	}
	r := &o.Retry
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = DefaultAttemptTimeout
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.Budget <= 0 {
		r.Budget = DefaultRetryBudget
	}
	if r.NoResponderPause <= 0 {
		r.NoResponderPause = 25 * time.Millisecond
	}
	c := &Client{
		nc: nc, opts: o, tracer: o.Tracer.Tracer("blogplatform/chassis/natsx"),
		budget: newRetryBudget(r.Budget, budgetFloorPerSecond),
	}
	_, c.noopTracer = o.Tracer.(noop.TracerProvider)
	if !o.Breaker.Disabled {
		c.breaker = newBreaker(o)
		if o.Metrics != nil {
			o.Metrics.BreakerState.WithLabelValues(o.Name).Set(0)
		}
	}
	return c
}

// BareError is a well-formed error reply whose text carries no
// "<status>:" prefix. Older auth services (the reference's) answer some
// failures this way, e.g. "mongo: no documents in result". It is an answer,
// not an outage, and never counts against the breaker. It wraps
// ErrUnavailable, so a caller that cannot tell what the text means treats it
// as no usable answer; a caller that knows what it asked (errors.As) gives
// it the status the sender meant.
type BareError struct {
	Subject string
	Message string
}

func (e *BareError) Error() string {
	return ErrUnavailable.Error() + ": " + e.Subject + ": error reply without a status: " + e.Message
}

func (e *BareError) Unwrap() error { return ErrUnavailable }

// errCallerGone marks a request that ended because the caller's context did,
// so the breaker ignores it: it says nothing about the remote side.
var errCallerGone = errors.New("caller gone")

func newBreaker(o ClientOptions) *gobreaker.CircuitBreaker[*nats.Msg] {
	b := o.Breaker
	if b.FailureRatio <= 0 || b.FailureRatio > 1 {
		b.FailureRatio = DefaultBreakerFailureRatio
	}
	if b.MinRequests == 0 {
		b.MinRequests = DefaultBreakerMinRequests
	}
	if b.Window <= 0 {
		b.Window = DefaultBreakerWindow
	}
	if b.OpenTimeout <= 0 {
		b.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = DefaultBreakerHalfOpen
	}
	return gobreaker.NewCircuitBreaker[*nats.Msg](gobreaker.Settings{
		Name:        o.Name,
		MaxRequests: b.HalfOpenRequests,
		// gobreaker keeps the closed-state counts in a rolling window of
		// buckets when BucketPeriod is set.
		Interval:     b.Window,
		BucketPeriod: max(b.Window/10, time.Millisecond),
		Timeout:      b.OpenTimeout,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			done := counts.TotalSuccesses + counts.TotalFailures
			return done >= b.MinRequests && float64(counts.TotalFailures) >= b.FailureRatio*float64(done)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			o.Logger.Warn("circuit breaker state change", "name", name, "from", from.String(), "to", to.String())
			if o.Metrics != nil {
				o.Metrics.BreakerState.WithLabelValues(name).Set(float64(to))
			}
		},
	})
}

// BreakerState reports "closed", "half-open" or "open" ("disabled" without one).
func (c *Client) BreakerState() string {
	if c.breaker == nil {
		return "disabled"
	}
	return c.breaker.State().String()
}

// Request sends {"data":req} to subject and decodes the reply's data into
// resp. It returns nil, an *apperr.Error carrying the remote
// "<status>:<message>", a *BareError for an error reply without a status,
// or an error wrapping ErrUnavailable. Requests to subjects listed in
// RetryOptions.Idempotent are retried and hedged.
//
// The breaker judges the transport only: a reply that arrives is a success
// for it whatever it says, so no answer of the remote service (an error
// reply with or without a status, a 5xx, even an undecodable body) can open
// it. Only no responders, timeouts and a closed connection count.
func (c *Client) Request(ctx context.Context, subject string, req, resp any) (err error) {
	start := time.Now()
	outcome := "ok"
	var span trace.Span
	if !c.noopTracer {
		ctx, span = c.tracer.Start(ctx, "nats request "+subject, trace.WithSpanKind(trace.SpanKindClient))
	}
	var sent attempts
	defer func() {
		if span != nil {
			if span.IsRecording() {
				span.SetAttributes(attribute.Int("messaging.nats.attempts", sent.total()))
				if err != nil {
					span.SetStatus(codes.Error, outcome)
				}
			}
			span.End()
		}
		if m := c.opts.Metrics; m != nil {
			m.NATS(subject, "client", outcome, time.Since(start).Seconds())
			sent.record(m, subject)
		}
	}()

	payload, err := Encode(req)
	if err != nil {
		outcome = "encode_error"
		return apperr.InternalErr(err)
	}
	msg := &nats.Msg{Subject: subject, Data: payload}
	// The header map is made only when there is a trace context to carry.
	c.opts.Propagator.Inject(ctx, msgCarrier{msg})

	callerCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	retry := c.isIdempotent(subject)
	send := func() (*nats.Msg, error) {
		reply, err := c.send(ctx, msg, retry, &sent)
		if err != nil && callerCtx.Err() != nil {
			err = fmt.Errorf("%w: %w", errCallerGone, err)
		}
		return reply, err
	}
	var reply *nats.Msg
	// Decoding stays outside the breaker (see above).
	if c.breaker != nil {
		reply, err = c.breaker.Execute(send)
	} else {
		reply, err = send()
	}
	if err != nil {
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			outcome = "breaker_open"
		case callerCtx.Err() != nil:
			outcome = "cancelled"
		default:
			outcome = "unavailable"
		}
		// Both wrapped: a caller may tell no responders (nothing serves
		// the subject) from a timeout or an open breaker.
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, subject, err)
	}
	if resp != nil {
		// A plain data reply (the usual answer) is decoded in one pass. The
		// decode rejects anything but one JSON value, so a success here means
		// the reply was exactly {"data":value}; a syntax error means another
		// shape, decoded as a whole below (before any field was set).
		if data, ok := dataOnly(reply.Data); ok {
			err := json.Unmarshal(data, resp)
			if err == nil {
				return nil
			}
			var syntax *json.SyntaxError
			if !errors.As(err, &syntax) {
				outcome = "bad_reply"
				return fmt.Errorf("%w: %s: reply data does not decode", ErrUnavailable, subject)
			}
		}
	}
	var env Message
	if err := json.Unmarshal(reply.Data, &env); err != nil {
		outcome = "bad_reply"
		return fmt.Errorf("%w: %s: reply is not an envelope", ErrUnavailable, subject)
	}
	if env.Error != "" {
		outcome = "remote_error"
		if remote, ok := apperr.ParseWire(env.Error); ok {
			return remote
		}
		return &BareError{Subject: subject, Message: env.Error}
	}
	if resp != nil {
		if len(env.Data) == 0 {
			outcome = "bad_reply"
			return fmt.Errorf("%w: %s: reply has no data", ErrUnavailable, subject)
		}
		if err := json.Unmarshal(env.Data, resp); err != nil {
			outcome = "bad_reply"
			return fmt.Errorf("%w: %s: reply data does not decode", ErrUnavailable, subject)
		}
	}
	return nil
}

// msgCarrier injects trace context into a message's headers, making the
// header map only when something is set. Keys are canonicalised as
// propagation.HeaderCarrier does, which is what receivers look up.
type msgCarrier struct{ msg *nats.Msg }

func (m msgCarrier) Get(key string) string { return http.Header(m.msg.Header).Get(key) }

func (m msgCarrier) Set(key, value string) {
	if m.msg.Header == nil {
		m.msg.Header = nats.Header{}
	}
	http.Header(m.msg.Header).Set(key, value)
}

func (m msgCarrier) Keys() []string { return propagation.HeaderCarrier(m.msg.Header).Keys() }

func (c *Client) isIdempotent(subject string) bool {
	for _, p := range c.opts.Retry.Idempotent {
		if subjectMatches(p, subject) {
			return true
		}
	}
	return false
}

// attempts counts the messages one request sent, by kind.
type attempts struct{ first, hedges, retries int }

func (a attempts) total() int { return a.first + a.hedges + a.retries }

func (a attempts) record(m *metrics.Metrics, subject string) {
	m.NATSAttempt(subject, "first", a.first)
	m.NATSAttempt(subject, "hedge", a.hedges)
	m.NATSAttempt(subject, "retry", a.retries)
}

type noResponderRetryKey struct{}

// WithoutNoResponderRetry marks ctx so that its requests give up at the
// first "no responders" instead of pausing and retrying: for a caller with
// another subject to fall back to when nothing serves this one, where a wait
// would only delay the fallback (which retries on its own). A message
// refused while the connection reconnects is still sent again.
func WithoutNoResponderRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, noResponderRetryKey{}, true)
}

type attemptResult struct {
	reply *nats.Msg
	err   error
}

// send delivers msg until one reply arrives, following the schedule described
// on RetryOptions; without retry it is a single request. Every message waits
// on ctx, so a reply to an earlier message still wins after later ones were
// sent, and returning (which cancels ctx in the caller) ends them all.
func (c *Client) send(ctx context.Context, msg *nats.Msg, retry bool, sent *attempts) (*nats.Msg, error) {
	c.budget.request()
	if !retry {
		sent.first++
		return c.nc.RequestMsgWithContext(ctx, msg)
	}
	ro := c.opts.Retry
	// Buffered for every message, so no sender blocks after we return.
	results := make(chan attemptResult, ro.MaxAttempts)
	pending := 0
	launch := func(n int) {
		for range n {
			pending++
			go func() {
				reply, err := c.nc.RequestMsgWithContext(ctx, msg)
				results <- attemptResult{reply, err}
			}()
		}
	}
	launch(1)
	sent.first = 1
	round := 1 // size of the last round sent after a timeout
	var lastErr error
	afterNoResponders := false
	timer := time.NewTimer(ro.AttemptTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if lastErr != nil && !errors.Is(lastErr, nats.ErrNoResponders) {
				return nil, fmt.Errorf("%w (earlier: %v)", ctx.Err(), lastErr)
			}
			return nil, ctx.Err()
		case r := <-results:
			pending--
			if r.err == nil {
				return r.reply, nil
			}
			lastErr = r.err
			if pending > 0 {
				continue // an earlier or sibling message may still be answered
			}
			if !resendable(ctx, r.err) || sent.total() >= ro.MaxAttempts {
				return nil, r.err
			}
			// Nobody is subscribed, or the connection is between servers
			// (it buffers nothing, so the message was not sent): pause
			// briefly (jittered, so callers do not retry in lockstep) and
			// send one message again.
			pause := ro.NoResponderPause + rand.N(ro.NoResponderPause+1)
			timer.Reset(pause)
			afterNoResponders = true
		case <-timer.C:
			left := ro.MaxAttempts - sent.total()
			if left <= 0 {
				continue // wait for the pending messages until the deadline
			}
			if afterNoResponders {
				afterNoResponders = false
				launch(1)
				sent.retries++
				round = 1
			} else {
				// No reply within the attempt timeout: hedge with twice as many
				// messages as the last round, within the budget.
				n := c.budget.take(min(2*round, left))
				if n == 0 {
					continue
				}
				launch(n)
				sent.hedges += n
				round = n
			}
			timer.Reset(ro.AttemptTimeout)
		}
	}
}

// resendable reports an attempt that reached no responder and is to be
// sent again after a pause: "no responders" (unless ctx is marked
// WithoutNoResponderRetry), or a publish refused while the connection is
// between servers (Connect buffers nothing, so it was not sent; a fallback
// subject would be refused just the same, so the mark does not apply).
func resendable(ctx context.Context, err error) bool {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		return true
	case errors.Is(err, nats.ErrNoResponders):
		return ctx.Value(noResponderRetryKey{}) == nil
	}
	return false
}

// subjectMatches reports whether subject matches the NATS pattern ("*"
// matches one token, a final ">" one or more).
func subjectMatches(pattern, subject string) bool {
	for {
		pTok, pRest, pMore := cut(pattern)
		sTok, sRest, sMore := cut(subject)
		if pTok == ">" && !pMore {
			return sTok != ""
		}
		if pTok != "*" && pTok != sTok || sTok == "" {
			return false
		}
		if !pMore || !sMore {
			return pMore == sMore
		}
		pattern, subject = pRest, sRest
	}
}

func cut(s string) (tok, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
