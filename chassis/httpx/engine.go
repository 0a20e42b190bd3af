package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
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
	return func(c *gin.Context) {
		start := time.Now()
		id := SanitizeRequestID(c.GetHeader(RequestIDHeader))
		if id == "" {
			id = NewRequestID()
		}
		c.Header(RequestIDHeader, id)
		c.Header("X-Content-Type-Options", "nosniff")

		ctx := opts.Propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, c.Request.Method+" "+c.Request.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		traceID := ""
		if sc := span.SpanContext(); sc.HasTraceID() {
			traceID = sc.TraceID().String()
		}
		log := opts.Logger.With("requestId", id)
		if traceID != "" {
			log = log.With("traceId", traceID)
		}
		c.Set(loggerKey, log)
		if opts.Unavailable != nil {
			c.Set(unavailableKey, opts.Unavailable)
		}
		c.Request = c.Request.WithContext(withRequestID(ctx, id))

		c.Next()

		status := c.Writer.Status()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		latency := time.Since(start)
		span.SetName(c.Request.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
		if m := opts.Metrics; m != nil {
			labels := []string{route, c.Request.Method, itoa(status)}
			m.HTTPRequests.WithLabelValues(labels...).Inc()
			m.HTTPDuration.WithLabelValues(labels...).Observe(latency.Seconds())
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "http request",
			slog.String("method", c.Request.Method), slog.String("route", route),
			slog.Int("status", status), slog.Float64("latencyMs", float64(latency.Microseconds())/1000),
			slog.String("remote", c.ClientIP()))
	}
}

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
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
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
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
