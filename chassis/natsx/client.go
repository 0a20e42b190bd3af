package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sony/gobreaker/v2"
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

// BreakerOptions configure the client's circuit breaker. It counts only
// unavailability as failure: a 401 from auth is an answer, not an outage.
type BreakerOptions struct {
	Disabled            bool
	ConsecutiveFailures uint32        // open after this many in a row (default 5)
	OpenTimeout         time.Duration // stay open this long before a trial (default 5s)
	HalfOpenRequests    uint32        // trial requests allowed when half-open (default 1)
}

// ClientOptions configure a Client.
type ClientOptions struct {
	Timeout    time.Duration // per request, default 2s; the caller's deadline wins when sooner
	Breaker    BreakerOptions
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
	tracer  trace.Tracer
}

func NewClient(nc *nats.Conn, o ClientOptions) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
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
	c := &Client{nc: nc, opts: o, tracer: o.Tracer.Tracer("blogplatform/chassis/natsx")}
	if !o.Breaker.Disabled {
		b := o.Breaker
		if b.ConsecutiveFailures == 0 {
			b.ConsecutiveFailures = 5
		}
		if b.OpenTimeout <= 0 {
			b.OpenTimeout = 5 * time.Second
		}
		if b.HalfOpenRequests == 0 {
			b.HalfOpenRequests = 1
		}
		c.breaker = gobreaker.NewCircuitBreaker[*nats.Msg](gobreaker.Settings{
			Name:        o.Name,
			MaxRequests: b.HalfOpenRequests,
			Timeout:     b.OpenTimeout,
			ReadyToTrip: func(counts gobreaker.Counts) bool {
				return counts.ConsecutiveFailures >= b.ConsecutiveFailures
			},
			IsExcluded: func(err error) bool {
				// The caller going away says nothing about the remote side.
				return errors.Is(err, context.Canceled)
			},
			OnStateChange: func(name string, from, to gobreaker.State) {
				o.Logger.Warn("circuit breaker state change", "name", name, "from", from.String(), "to", to.String())
				if o.Metrics != nil {
					o.Metrics.BreakerState.WithLabelValues(name).Set(float64(to))
				}
			},
		})
		if o.Metrics != nil {
			o.Metrics.BreakerState.WithLabelValues(o.Name).Set(0)
		}
	}
	return c
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
// "<status>:<message>", or an error wrapping ErrUnavailable.
func (c *Client) Request(ctx context.Context, subject string, req, resp any) (err error) {
	start := time.Now()
	outcome := "ok"
	ctx, span := c.tracer.Start(ctx, "nats request "+subject, trace.WithSpanKind(trace.SpanKindClient))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, outcome)
		}
		span.End()
		if m := c.opts.Metrics; m != nil {
			m.NATSRequests.WithLabelValues(subject, "client", outcome).Inc()
			m.NATSDuration.WithLabelValues(subject, "client", outcome).Observe(time.Since(start).Seconds())
		}
	}()

	payload, err := Encode(req)
	if err != nil {
		outcome = "encode_error"
		return apperr.InternalErr(err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = payload
	c.opts.Propagator.Inject(ctx, propagation.HeaderCarrier(msg.Header))

	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	send := func() (*nats.Msg, error) { return c.nc.RequestMsgWithContext(ctx, msg) }
	var reply *nats.Msg
	if c.breaker != nil {
		reply, err = c.breaker.Execute(send)
	} else {
		reply, err = send()
	}
	if err != nil {
		outcome = "unavailable"
		if errors.Is(err, context.Canceled) {
			outcome = "cancelled"
		}
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, subject, err)
	}
	var env Message
	if err := json.Unmarshal(reply.Data, &env); err != nil {
		outcome = "bad_reply"
		return fmt.Errorf("%w: %s: reply is not an envelope", ErrUnavailable, subject)
	}
	if env.Error != "" {
		remote, ok := apperr.ParseWire(env.Error)
		if !ok {
			outcome = "bad_reply"
			return fmt.Errorf("%w: %s: unrecognised error %q", ErrUnavailable, subject, env.Error)
		}
		outcome = "remote_error"
		return remote
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
