// Package runtime assembles what every service needs (configuration, logger,
// metrics, Mongo, Redis, NATS, health, HTTP engine) and runs it with an
// ordered graceful shutdown. Services add only their own routes, endpoints
// and indexes.
package runtime

import (
	"log/slog"
	"time"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/config"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/natsx"
)

// Base is the configuration shared by both services. Reference variable
// names are kept; new variables have defaults in code.
type Base struct {
	Mode           string // GO_MODE: debug | release | test
	Host           string
	Port           int
	LogLevel       string
	Mongo          mongox.Options
	Redis          cache.RedisOptions
	NATSURL        string // one server or a comma-separated list
	NATSUser       string
	NATSPassword   string
	ServiceName    string
	ServiceVersion string
	NATSTimeout    time.Duration
	// NATS request retries (idempotent subjects only): a round of messages
	// waits NATSAttemptTimeout before the next, larger round; at most
	// NATSMaxAttempts messages per request; extra messages at most
	// NATSRetryBudget times the requests of the last 10 s (plus a floor).
	NATSAttemptTimeout time.Duration
	NATSMaxAttempts    int
	NATSRetryBudget    float64

	// NATSCreds (a credentials file), NATSTLS, NATSInboxPrefix and
	// NATSListedOrder: see NATSConnOptions.
	NATSCreds       string
	NATSTLS         natsx.TLSOptions
	NATSInboxPrefix string
	NATSListedOrder bool

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownGrace     time.Duration
	// DrainDelay is how long readiness reports 503 before the listener closes,
	// so a load balancer can stop routing to this replica first.
	DrainDelay     time.Duration
	BodyLimitBytes int64
	OTLPEndpoint   string
	TrustedProxies []string
	// MetricsHost and MetricsPort are the internal listener that serves
	// /metrics. It is separate from the public port so the gateway never
	// exposes it; port 0 picks a free port (tests, several replicas in one
	// process).
	MetricsHost string
	MetricsPort int
	// LocalCacheTTL and LocalCacheSize bound each per-replica first-level
	// cache (package localcache) in front of Redis and NATS round trips:
	// entries live at most LocalCacheTTL (the staleness bound should a
	// change event ever be lost; 0 turns those caches off) and each cache
	// holds at most LocalCacheSize entries.
	LocalCacheTTL  time.Duration
	LocalCacheSize int
	// LogRequestSample is the share (0..1) of successful (status < 400)
	// requests written to the access log; every failed request is logged.
	// 1 logs every request.
	LogRequestSample float64
	// AllowExampleSecrets lets a release-mode service start with the secrets
	// published in .env.example (local trials only).
	AllowExampleSecrets bool
}

// NATSConnOptions are the connection settings of the NATS variables.
func (b Base) NATSConnOptions(log *slog.Logger) natsx.ConnOptions {
	return natsx.ConnOptions{URL: b.NATSURL, Name: b.ServiceName, User: b.NATSUser, Password: b.NATSPassword,
		CredsFile: b.NATSCreds, TLS: b.NATSTLS, InboxPrefix: b.NATSInboxPrefix, NoRandomize: b.NATSListedOrder, Logger: log}
}

// DefaultMetricsPort is the internal metrics listener's port.
const DefaultMetricsPort = 9464

// RequireRealSecrets reports whether secrets that are still the published
// example values must stop the service: in release mode, unless the operator
// explicitly allowed them.
func (b Base) RequireRealSecrets() bool { return b.Mode == "release" && !b.AllowExampleSecrets }

// Defaults differ per service.
type Defaults struct {
	DBName      string
	ServiceName string
	RedisDB     int
}

// LoadBase reads the shared variables; check src.Err() afterwards.
func LoadBase(src *config.Source, d Defaults) Base {
	b := Base{
		Mode:     src.OneOf("GO_MODE", "release", "debug", "release", "test"),
		Host:     src.String("SERVER_HOST", "0.0.0.0"),
		Port:     src.Int("SERVER_PORT", 8000, 0, 65535),
		LogLevel: src.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		Mongo: mongox.Options{
			Host:         src.String("DB_HOST", "localhost"),
			Port:         src.Int("DB_PORT", 27017, 1, 65535),
			Name:         src.String("DB_NAME", d.DBName),
			User:         src.String("DB_USER", ""),
			Password:     src.String("DB_USER_PWD", ""),
			MinPool:      uint64(src.Int("DB_MIN_POOL_SIZE", 2, 0, 10000)),
			MaxPool:      uint64(src.Int("DB_MAX_POOL_SIZE", 5, 1, 10000)),
			QueryTimeout: src.Duration("DB_QUERY_TIMEOUT_SEC", 10*time.Second, time.Second, time.Millisecond, 10*time.Minute),
			ServerSelectionTimeout: src.Duration("DB_SERVER_SELECTION_TIMEOUT", 2*time.Second, time.Second,
				100*time.Millisecond, 5*time.Minute),
			AppName:        d.ServiceName,
			URI:            src.String("DB_URI", ""),
			ReadPreference: src.OneOf("DB_READ_PREFERENCE", "", mongox.ReadPreferences...),
			WriteConcern:   src.String("DB_WRITE_CONCERN", ""),
		},
		Redis:          loadRedis(src, d.RedisDB),
		NATSURL:        src.String("NATS_URL", "nats://localhost:4222"),
		NATSUser:       src.String("NATS_USER", ""),
		NATSPassword:   src.String("NATS_PASSWORD", ""),
		ServiceName:    src.String("NATS_SERVICE_NAME", d.ServiceName),
		ServiceVersion: src.String("NATS_SERVICE_VERSION", "1.0.0"),
		NATSTimeout:    src.Duration("NATS_REQUEST_TIMEOUT", 2*time.Second, time.Millisecond, time.Millisecond, time.Minute),
		NATSAttemptTimeout: src.Duration("NATS_ATTEMPT_TIMEOUT", natsx.DefaultAttemptTimeout, time.Millisecond,
			time.Millisecond, time.Minute),
		NATSMaxAttempts: src.Int("NATS_MAX_ATTEMPTS", natsx.DefaultMaxAttempts, 1, 1000),
		NATSRetryBudget: src.Float("NATS_RETRY_BUDGET", 1.0, 0.01, 100),

		ReadHeaderTimeout: src.Duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second, time.Second, time.Millisecond, time.Hour),
		ReadTimeout:       src.Duration("HTTP_READ_TIMEOUT", 15*time.Second, time.Second, time.Millisecond, time.Hour),
		WriteTimeout:      src.Duration("HTTP_WRITE_TIMEOUT", 30*time.Second, time.Second, time.Millisecond, time.Hour),
		IdleTimeout:       src.Duration("HTTP_IDLE_TIMEOUT", 120*time.Second, time.Second, time.Millisecond, time.Hour),
		ShutdownGrace:     src.Duration("SHUTDOWN_GRACE_PERIOD", 15*time.Second, time.Second, 0, time.Hour),
		DrainDelay:        src.Duration("SHUTDOWN_DRAIN_DELAY", 0, time.Second, 0, time.Minute),
		BodyLimitBytes:    int64(src.Int("BODY_LIMIT_BYTES", 1<<20, 1024, 1<<30)),
		OTLPEndpoint:      src.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		TrustedProxies:    src.List("TRUSTED_PROXIES", nil),
	}
	b.MetricsHost = src.String("METRICS_HOST", b.Host)
	b.MetricsPort = src.Int("METRICS_PORT", DefaultMetricsPort, 0, 65535)
	b.AllowExampleSecrets = src.Bool("ALLOW_EXAMPLE_SECRETS", false)
	b.LocalCacheTTL = src.Duration("LOCAL_CACHE_TTL", 5*time.Second, time.Second, 0, time.Hour)
	b.LocalCacheSize = src.Int("LOCAL_CACHE_SIZE", 10_000, 1, 10_000_000)
	b.LogRequestSample = src.Float("LOG_REQUESTS_SAMPLE", 1, 0, 1)
	b.NATSCreds = src.String("NATS_CREDS", "")
	b.NATSTLS = natsx.TLSOptions{CAFile: src.String("NATS_TLS_CA", ""), CertFile: src.String("NATS_TLS_CERT", ""),
		KeyFile: src.String("NATS_TLS_KEY", ""), ServerName: src.String("NATS_TLS_SERVER_NAME", "")}
	b.NATSInboxPrefix = src.String("NATS_INBOX_PREFIX", "")
	b.NATSListedOrder = src.OneOf("NATS_SERVER_ORDER", "random", "random", "listed") == "listed"
	b.NATSConnOptions(nil).Check(src.Check)
	if b.RequireRealSecrets() {
		src.RejectExampleSecrets("DB_USER_PWD", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD", "NATS_PASSWORD")
	}
	if b.Mongo.MinPool > b.Mongo.MaxPool {
		b.Mongo.MinPool = b.Mongo.MaxPool
	}
	// DB_URI is checked with the driver's parser now, so a typo stops the
	// service with one line (the password is never repeated in it).
	b.Mongo.Check(src.Check)
	if b.RequireRealSecrets() {
		b.Mongo.CheckURIPassword(config.IsExampleSecret, src.Check)
	}
	return b
}
