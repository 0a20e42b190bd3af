package httpx

import (
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/metrics"
)

// RequestIDHeader is echoed on every response.
const RequestIDHeader = "X-Request-ID"

// Options configure an engine. Zero values are safe defaults.
type Options struct {
	Logger         *slog.Logger
	Metrics        *metrics.Metrics
	Tracer         trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	BodyLimitBytes int64 // default 1 MiB
	// Debug keeps gin's debug mode; release mode otherwise.
	Debug bool
	// Unavailable classifies errors that mean a dependency is down (the
	// store unreachable): Fail answers them 503 `service unavailable` instead
	// of 500.
	Unavailable func(error) bool
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For is
	// believed for the client address (rate limits, logs). None by default:
	// gin would otherwise trust every peer.
	TrustedProxies []string
	// SuccessLogSample is the share (0..1) of successful requests (status
	// below 400) that the access log writes, each request drawn at random;
	// failed requests are always written. Nil writes every request.
	SuccessLogSample *float64
}

// Engine is a gin engine with the platform's middleware, plus an http.Handler
// front that accepts both slash forms of every route.
type Engine struct {
	*gin.Engine
	opts Options
}

// NewEngine builds the router: request id, panic recovery into the envelope,
// access log, metrics, tracing, body limit, 404 `url not found`, 405 with
// `Allow`.
func NewEngine(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BodyLimitBytes <= 0 {
		opts.BodyLimitBytes = 1 << 20
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider()
	}
	if opts.Propagator == nil {
		opts.Propagator = propagation.TraceContext{}
	}
	gin.SetMode(gin.ReleaseMode) // process-wide but only affects gin's own debug printing
	g := gin.New()
	g.RedirectTrailingSlash = false
	g.RedirectFixedPath = false
	g.HandleMethodNotAllowed = true
	g.ContextWithFallback = true
	if err := g.SetTrustedProxies(opts.TrustedProxies); err != nil {
		opts.Logger.Error("invalid trusted proxies; trusting none", "error", err.Error())
		_ = g.SetTrustedProxies(nil)
	}
	g.Use(requestContext(opts), recovery(), bodyLimit(opts.BodyLimitBytes))
	g.NoRoute(func(c *gin.Context) { FailStatus(c, http.StatusNotFound, "url not found") })
	g.NoMethod(func(c *gin.Context) { FailStatus(c, http.StatusMethodNotAllowed, "method not allowed") })
	return &Engine{Engine: g, opts: opts}
}

// ServeHTTP accepts `/path/` and `/path` alike (no redirects): routes are
// registered without a trailing slash and the slash is trimmed here.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r.URL.Path = strings.TrimRight(p, "/")
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
		r.URL.RawPath = ""
	}
	e.Engine.ServeHTTP(w, r)
}

func requestContext(opts Options) gin.HandlerFunc {
	tracer := opts.Tracer.Tracer("blogplatform/chassis/httpx")
	// With the no-op provider no span is ever started: a request's trace
	// context is only carried (to NATS headers, to the log's traceId), and
	// only when the request brought one in the propagator's headers.
	_, noopTracer := opts.Tracer.(noop.TracerProvider)
	var traceHeaders []string
	for _, f := range opts.Propagator.Fields() {
		traceHeaders = append(traceHeaders, textproto.CanonicalMIMEHeaderKey(f))
	}
	sample := 1.0
	if opts.SuccessLogSample != nil {
		sample = min(max(*opts.SuccessLogSample, 0), 1)
	}
	ids := newRequestIDs()
	return func(c *gin.Context) {
		start := time.Now()
		req := c.Request
		ri := &requestInfo{base: opts.Logger, unavailable: opts.Unavailable}
		if v := req.Header[canonicalRequestIDHeader]; len(v) > 0 {
			ri.id = SanitizeRequestID(v[0])
		}
		if ri.id == "" {
			ri.id = ids.next()
		}
		// Direct map writes with canonical keys: Header.Set would
		// canonicalise the key and allocate a one-element slice per header.
		ri.headerValues = [2]string{ri.id, "nosniff"}
		h := c.Writer.Header()
		h[canonicalRequestIDHeader] = ri.headerValues[0:1:1]
		h["X-Content-Type-Options"] = ri.headerValues[1:2:2]

		ctx := req.Context()
		if carriesTrace(req.Header, traceHeaders) {
			ctx = opts.Propagator.Extract(ctx, propagation.HeaderCarrier(req.Header))
		}
		var span trace.Span
		if !noopTracer {
			ctx, span = tracer.Start(ctx, req.Method+" "+req.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			ri.traceID = sc.TraceID().String()
		}
		ri.Context = ctx
		c.Request = req.WithContext(ri)

		c.Next()

		status := c.Writer.Status()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		latency := time.Since(start)
		method := c.Request.Method
		if span != nil {
			if span.IsRecording() {
				span.SetName(method + " " + route)
				span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.status_code", status))
				if status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
			}
			span.End()
		}
		opts.Metrics.HTTP(route, method, status, latency.Seconds())

		// Every failed request is logged; successful ones at the sampled
		// share, so the log's cost does not grow with success traffic.
		if status < 400 && (sample <= 0 || sample < 1 && rand.Float64() >= sample) {
			return
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		if !opts.Logger.Enabled(ri, level) {
			return
		}
		// The request logger's attributes (requestId, traceId) are written
		// as the line's own, which prints the same line without cloning the
		// logger's handler.
		attrs := make([]slog.Attr, 0, 8)
		attrs = append(attrs, slog.String("requestId", ri.id))
		if ri.traceID != "" {
			attrs = append(attrs, slog.String("traceId", ri.traceID))
		}
		attrs = append(attrs, slog.String("method", method), slog.String("route", route),
			slog.Int("status", status), slog.Float64("latencyMs", float64(latency.Microseconds())/1000),
			slog.String("remote", c.ClientIP()))
		opts.Logger.LogAttrs(ri, level, "http request", attrs...)
	}
}

// carriesTrace reports whether the request has any of the propagator's
// headers; without them extraction would find nothing.
func carriesTrace(h http.Header, fields []string) bool {
	for _, f := range fields {
		if len(h[f]) > 0 {
			return true
		}
	}
	return false
}

// canonicalRequestIDHeader is RequestIDHeader as net/http keys it
// (textproto.CanonicalMIMEHeaderKey; a test keeps the two in step).
const canonicalRequestIDHeader = "X-Request-Id"

func recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				logger(c).Error("panic recovered", "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					Fail(c, apperr.InternalErr(fmt.Errorf("panic: %v", rec)))
				} else {
					c.Abort()
				}
			}
		}()
		c.Next()
	}
}

func bodyLimit(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			Fail(c, apperr.New(apperr.TooLarge, "request body too large"))
			return
		}
		// A request without a body (every GET) has nothing to limit.
		if b := c.Request.Body; b != nil && b != http.NoBody {
			c.Request.Body = http.MaxBytesReader(c.Writer, b, limit)
		}
		c.Next()
	}
}

// SanitizeRequestID keeps a client-supplied id only when it is short and made
// of safe characters, so logs and headers cannot be injected. The local
// gateway applies the same rule.
func SanitizeRequestID(id string) string {
	if id == "" || len(id) > 128 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == ':') {
			return ""
		}
	}
	return id
}

// NewRequestID returns 16 random bytes in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
