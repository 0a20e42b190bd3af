package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/health"
	"blogplatform/chassis/httpx"
	"blogplatform/chassis/localcache"
	"blogplatform/chassis/logging"
	"blogplatform/chassis/metrics"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/natsx"
	"blogplatform/chassis/telemetry"
)

// Options are the parts a caller may inject (tests, embedded replicas).
type Options struct {
	LogWriter  io.Writer // default os.Stdout
	Logger     *slog.Logger
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
	// StartupTimeout bounds waiting for Mongo at start (default 2 min).
	StartupTimeout time.Duration
	// RedisKeys is what the service owns in Redis; required behind
	// Sentinel, whose client discards these keys on a new primary.
	RedisKeys cache.KeySpace
}

// Runtime holds a service's connections and its HTTP engine.
type Runtime struct {
	Config     Base
	Log        *slog.Logger
	Metrics    *metrics.Metrics
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
	DB         *mongox.DB
	Redis      redis.UniversalClient // one server, Sentinel or Cluster (REDIS_*)
	NATS       *nats.Conn
	Micro      *natsx.Service
	Health     *health.Health
	Engine     *httpx.Engine

	closers     []func(context.Context) error
	metricsLn   net.Listener // until Serve hands it to the metrics server
	metricsAddr string
}

// New connects to every dependency. NATS and Redis may still be down (they
// are retried in the background and reported by readiness); Mongo is waited
// for, because indexes must exist before serving.
func New(ctx context.Context, cfg Base, o Options) (*Runtime, error) {
	if o.LogWriter == nil {
		o.LogWriter = os.Stdout
	}
	log := o.Logger
	if log == nil {
		log = logging.New(o.LogWriter, cfg.LogLevel, cfg.ServiceName)
	}
	redisOpts, err := withFailover(cfg.Redis, o.RedisKeys, log)
	if err != nil {
		return nil, err
	}
	cfg.Redis = redisOpts
	var shutdownTracing func(context.Context) error
	if o.Tracer == nil {
		tp, shutdown, err := telemetry.Setup(ctx, cfg.ServiceName, cfg.ServiceVersion, cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		o.Tracer, shutdownTracing = tp, shutdown
	}
	if o.Propagator == nil {
		o.Propagator = telemetry.Propagator()
	}
	if o.StartupTimeout <= 0 {
		o.StartupTimeout = 2 * time.Minute
	}
	rt := &Runtime{Config: cfg, Log: log, Metrics: metrics.New(cfg.ServiceName), Tracer: o.Tracer, Propagator: o.Propagator}
	if shutdownTracing != nil {
		// Runs last among the closers registered later, flushing spans.
		rt.OnClose(shutdownTracing)
	}

	db, err := mongox.Connect(cfg.Mongo)
	if err != nil {
		return nil, err
	}
	rt.DB = db
	wctx, cancel := context.WithTimeout(ctx, o.StartupTimeout)
	defer cancel()
	if err := db.WaitReady(wctx, log); err != nil {
		_ = db.Close(context.Background())
		return nil, err
	}

	rt.Redis = cache.NewRedis(cfg.Redis)
	nc, err := natsx.Connect(cfg.NATSConnOptions(log))
	if err != nil {
		_ = db.Close(context.Background())
		_ = rt.Redis.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	rt.NATS = nc
	micro, err := natsx.NewService(nc, natsx.ServiceOptions{
		Name: cfg.ServiceName, Version: cfg.ServiceVersion, Logger: log, Metrics: rt.Metrics,
		Tracer: o.Tracer, Propagator: o.Propagator,
	})
	if err != nil {
		nc.Close()
		_ = db.Close(context.Background())
		_ = rt.Redis.Close()
		return nil, err
	}
	rt.Micro = micro

	rt.Health = health.New(time.Second,
		health.Check{Name: "mongo", Required: true, Ping: db.Ping},
		health.Check{Name: "nats", RequiredUntilUp: true, Ping: func(context.Context) error {
			if nc.IsConnected() {
				return nil
			}
			return errors.New(nc.Status().String())
		}},
		health.Check{Name: "redis", Required: false, Ping: func(ctx context.Context) error { return rt.Redis.Ping(ctx).Err() }},
	)
	rt.Engine = httpx.NewEngine(httpx.Options{
		Logger: log, Metrics: rt.Metrics, Tracer: o.Tracer, Propagator: o.Propagator,
		BodyLimitBytes: cfg.BodyLimitBytes, Debug: cfg.Mode == "debug", TrustedProxies: cfg.TrustedProxies,
		Unavailable: mongox.IsUnavailable, SuccessLogSample: &cfg.LogRequestSample,
	})
	rt.Health.Mount(rt.Engine)
	// Metrics are internal: they get their own listener, which no gateway
	// route reaches, instead of a route on the public engine.
	addr := net.JoinHostPort(cfg.MetricsHost, strconv.Itoa(cfg.MetricsPort))
	rt.metricsLn, err = net.Listen("tcp", addr)
	if err != nil {
		_ = rt.Close(context.Background())
		return nil, fmt.Errorf("metrics listener on %s (METRICS_PORT): %w", addr, err)
	}
	rt.metricsAddr = rt.metricsLn.Addr().String()
	return rt, nil
}

// MetricsAddr is the address of the internal listener that serves /metrics.
// NewLocalCache returns a first-level cache named name sized by
// LOCAL_CACHE_SIZE and LOCAL_CACHE_TTL, or nil (a cache that is turned off)
// when LOCAL_CACHE_TTL is 0. Guard it with Follow.
func NewLocalCache[V any](rt *Runtime, name string) *localcache.Cache[V] {
	if rt.Config.LocalCacheTTL <= 0 {
		return nil
	}
	return localcache.New[V](localcache.Options{Name: name, TTL: rt.Config.LocalCacheTTL,
		MaxEntries: rt.Config.LocalCacheSize, Metrics: rt.Metrics})
}

// Feed opens the acknowledged change feed of subject for this replica's
// lifetime (see changefeed.Feed): closed, saying goodbye to the other
// replicas, before NATS is drained.
func (rt *Runtime) Feed(subject string) (*changefeed.Feed, error) {
	f, err := changefeed.NewFeed(rt.NATS, subject, rt.Log)
	if err != nil {
		return nil, err
	}
	rt.OnClose(func(context.Context) error { f.Close(); return nil })
	return f, nil
}

func (rt *Runtime) MetricsAddr() string { return rt.metricsAddr }

// MetricsHandler serves the Prometheus text format, as the internal listener
// does.
func (rt *Runtime) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", rt.Metrics.Handler())
	return mux
}

// OnClose registers a cleanup that runs after the HTTP server and NATS have
// stopped and before Mongo and Redis close (background workers, flushers).
func (rt *Runtime) OnClose(fn func(context.Context) error) { rt.closers = append(rt.closers, fn) }

// Addr is the configured listen address.
func (rt *Runtime) Addr() string {
	return net.JoinHostPort(rt.Config.Host, strconv.Itoa(rt.Config.Port))
}

// Serve listens on ln until ctx is cancelled, then shuts down in order:
// readiness turns 503, NATS endpoints stop, in-flight HTTP requests finish
// within the grace period, the NATS connection drains, then Redis and Mongo
// close.
func (rt *Runtime) Serve(ctx context.Context, ln net.Listener) error {
	srv := httpx.NewServer(rt.Engine, httpx.ServerOptions{
		ReadHeaderTimeout: rt.Config.ReadHeaderTimeout, ReadTimeout: rt.Config.ReadTimeout,
		WriteTimeout: rt.Config.WriteTimeout, IdleTimeout: rt.Config.IdleTimeout,
	}, rt.Log)
	rt.Log.Info("http server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	metricsSrv := &http.Server{
		Handler:           rt.MetricsHandler(),
		ReadHeaderTimeout: rt.Config.ReadHeaderTimeout,
		ReadTimeout:       rt.Config.ReadTimeout,
		WriteTimeout:      rt.Config.WriteTimeout,
		IdleTimeout:       rt.Config.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(rt.Log.Handler(), slog.LevelWarn),
	}
	metricsLn := rt.metricsLn
	rt.metricsLn = nil // owned by metricsSrv from here on
	rt.Log.Info("metrics server listening", "addr", metricsLn.Addr().String())
	go func() {
		if err := metricsSrv.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.Log.Error("metrics server stopped", "error", err.Error())
		}
	}()
	// Scrapes keep working while in-flight requests drain; the metrics
	// listener closes last.
	defer metricsSrv.Close()
	var serveErr error
	select {
	case serveErr = <-errc:
		if errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = nil
		}
	case <-ctx.Done():
	}
	rt.Log.Info("shutting down", "grace", rt.Config.ShutdownGrace.String())
	rt.Health.Drain()
	if rt.Config.DrainDelay > 0 && serveErr == nil {
		time.Sleep(rt.Config.DrainDelay)
	}
	var errs []error
	if err := rt.Micro.Stop(rt.Config.ShutdownGrace); err != nil {
		errs = append(errs, fmt.Errorf("nats service stop: %w", err))
	}
	sctx, cancel := context.WithTimeout(context.Background(), rt.Config.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	errs = append(errs, rt.Close(sctx))
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	err := errors.Join(errs...)
	if err != nil {
		rt.Log.Error("shutdown finished with errors", "error", err.Error())
	} else {
		rt.Log.Info("shutdown complete")
	}
	return err
}

// Close drains NATS and closes every connection (used by Serve and tests).
func (rt *Runtime) Close(ctx context.Context) error {
	var errs []error
	if rt.metricsLn != nil { // Serve never started
		_ = rt.metricsLn.Close()
		rt.metricsLn = nil
	}
	for i := len(rt.closers) - 1; i >= 0; i-- {
		if err := rt.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	rt.closers = nil
	if rt.NATS != nil && !rt.NATS.IsClosed() {
		if err := rt.NATS.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			rt.NATS.Close()
		}
		deadline := time.Now().Add(5 * time.Second)
		for !rt.NATS.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if rt.Redis != nil {
		_ = rt.Redis.Close()
	}
	if rt.DB != nil {
		if err := rt.DB.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
