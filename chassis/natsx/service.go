package natsx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/metrics"
)

// ServiceOptions configure a micro service.
type ServiceOptions struct {
	Name        string
	Version     string
	Description string
	// MaxConcurrent bounds in-flight handlers per service (default 512);
	// beyond it the subscription waits, which is backpressure, not loss.
	MaxConcurrent int
	// HandlerTimeout bounds one handler's context (default 10s).
	HandlerTimeout time.Duration
	Logger         *slog.Logger
	Metrics        *metrics.Metrics
	Tracer         trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Service is a micro service whose handlers run concurrently.
type Service struct {
	nc       *nats.Conn
	svc      micro.Service
	opts     ServiceOptions
	sem      chan struct{}
	inflight sync.WaitGroup
	tracer   trace.Tracer
	// noopTracer: no span is started; a trace context in the request's
	// headers still reaches the handler's context.
	noopTracer bool
}

// HandlerFunc answers one request: data is the envelope's raw `data`; the
// result is sent as `data`, an error as "<status>:<message>".
type HandlerFunc func(ctx context.Context, data json.RawMessage) (any, error)

// NewService registers a micro service (which also answers $SRV.PING, INFO
// and STATS discovery). Endpoints use the default queue group "q", so
// replicas share requests.
func NewService(nc *nats.Conn, o ServiceOptions) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 512
	}
	if o.HandlerTimeout <= 0 {
		o.HandlerTimeout = 10 * time.Second
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	svc, err := micro.AddService(nc, micro.Config{Name: o.Name, Version: o.Version, Description: o.Description})
	if err != nil {
		return nil, fmt.Errorf("natsx: add service %s: %w", o.Name, err)
	}
	_, noopTracer := o.Tracer.(noop.TracerProvider)
	return &Service{nc: nc, svc: svc, opts: o, sem: make(chan struct{}, o.MaxConcurrent),
		tracer: o.Tracer.Tracer("blogplatform/chassis/natsx"), noopTracer: noopTracer}, nil
}

// GroupName applies the reference's rule: the controller path with "/"
// replaced by "." is appended to the service name unless it is just ".".
func GroupName(service, controllerPath string) string {
	ep := strings.ReplaceAll(controllerPath, "/", ".")
	if len(ep) > 1 {
		return service + ep
	}
	return service
}

// AddEndpoint serves subject group+"."+name. When the connection is up, the
// subscription has reached the server by the time it returns, so a request
// sent right after it finds a responder.
func (s *Service) AddEndpoint(group, name string, h HandlerFunc) error {
	subject := group + "." + name
	defer func() {
		if s.nc.IsConnected() {
			// Best effort: while disconnected, the subscription is sent on
			// reconnect instead.
			_ = s.nc.FlushTimeout(2 * time.Second)
		}
	}()
	return s.svc.AddGroup(group).AddEndpoint(name, micro.HandlerFunc(func(req micro.Request) {
		s.sem <- struct{}{}
		s.inflight.Add(1)
		go func() {
			defer func() { <-s.sem; s.inflight.Done() }()
			s.serve(subject, req, h)
		}()
	}))
}

func (s *Service) serve(subject string, req micro.Request, h HandlerFunc) {
	start := time.Now()
	ctx := context.Background()
	if hdr := req.Headers(); len(hdr) > 0 {
		ctx = s.opts.Propagator.Extract(ctx, propagation.HeaderCarrier(hdr))
	}
	var span trace.Span
	if !s.noopTracer {
		ctx, span = s.tracer.Start(ctx, "nats serve "+subject, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.HandlerTimeout)
	defer cancel()

	reply, outcome := s.run(ctx, subject, req.Data(), h)
	if outcome != "ok" && span != nil {
		span.SetStatus(codes.Error, outcome)
	}
	if err := req.Respond(reply); err != nil {
		s.opts.Logger.Warn("nats respond failed", "subject", subject, "error", err.Error())
	}
	s.opts.Metrics.NATS(subject, "server", outcome, time.Since(start).Seconds())
}

func (s *Service) run(ctx context.Context, subject string, raw []byte, h HandlerFunc) (reply []byte, outcome string) {
	defer func() {
		if rec := recover(); rec != nil {
			s.opts.Logger.Error("nats handler panic recovered", "subject", subject, "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			reply, outcome = EncodeError(apperr.WireText(apperr.InternalErr(errors.New("panic")))), "panic"
		}
	}()
	data, ok := dataOnly(raw)
	// The usual request, exactly {"data":value}, is not decoded here: a
	// valid single value after the prefix proves that shape. Anything else
	// is decoded as an envelope.
	if !ok || !json.Valid(data) {
		var msg Message
		if err := json.Unmarshal(raw, &msg); err != nil {
			return EncodeError("400:malformed message: expected a JSON object with a data field"), "bad_request"
		}
		data = msg.Data
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return EncodeError("400:malformed message: data is required"), "bad_request"
	}
	result, err := h(ctx, data)
	if err != nil {
		e := apperr.From(err)
		if e.Status() >= 500 {
			s.opts.Logger.Error("nats handler failed", "subject", subject, "error", err.Error())
		}
		out := "error"
		if e.Status() < 500 {
			out = "rejected"
		}
		return EncodeError(apperr.WireText(err)), out
	}
	b, err := Encode(result)
	if err != nil {
		s.opts.Logger.Error("nats reply encode failed", "subject", subject, "error", err.Error())
		return EncodeError(apperr.WireText(apperr.InternalErr(err))), "error"
	}
	return b, "ok"
}

// Stop stops taking requests (endpoints are drained) and waits up to grace for
// in-flight handlers; the caller drains the connection afterwards.
func (s *Service) Stop(grace time.Duration) error {
	err := s.svc.Stop()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		return errors.Join(err, errors.New("natsx: handlers still running after grace period"))
	}
	return err
}

// Micro exposes the underlying micro service (info and stats).
func (s *Service) Micro() micro.Service { return s.svc }

// Typed adapts a function on a decoded request. The request is decoded
// strictly; a decoding failure or a Validate error is a 400 reply.
func Typed[Req any, Resp any](fn func(ctx context.Context, req Req) (Resp, error)) HandlerFunc {
	return func(ctx context.Context, data json.RawMessage) (any, error) {
		var req Req
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, apperr.BadRequest("malformed message: " + strings.TrimPrefix(err.Error(), "json: "))
		}
		if v, ok := any(&req).(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return nil, err
			}
		}
		return fn(ctx, req)
	}
}
