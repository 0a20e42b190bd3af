// Package config is blog_service's configuration: the variables both services
// share (runtime.Base) plus the circuit breaker and cache settings of this
// service. Every variable has a default in code; a value that is present but
// invalid is refused with one line naming the variable.
package config

import (
	"time"

	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
)

// Config is everything blog_service reads at start-up.
type Config struct {
	runtime.Base

	// The circuit breaker of the calls to auth_service opens when at least
	// BreakerFailureRatio of the requests in the last BreakerWindow were
	// unavailable, once at least BreakerMinRequests completed in it; while
	// open, protected routes answer 503 at once instead of waiting for
	// NATS_REQUEST_TIMEOUT each. After BreakerOpenTimeout it lets
	// BreakerHalfOpenRequests trial requests through, which close it when
	// they all succeed.
	BreakerFailureRatio     float64
	BreakerMinRequests      int
	BreakerWindow           time.Duration
	BreakerOpenTimeout      time.Duration
	BreakerHalfOpenRequests int
	// IgnoredBreakerFailures is the value of BREAKER_FAILURES, which no
	// longer means anything (the breaker counts a ratio, not failures in a
	// row); it is accepted so an existing .env still starts, and logged.
	IgnoredBreakerFailures string

	// BlogCacheTTL bounds blog_<id> and blog_<slug> (PublicBlog JSON).
	BlogCacheTTL time.Duration
	// SimilarCacheTTL bounds similar_blogs_<id>.
	SimilarCacheTTL time.Duration
	// ListCacheTTL bounds every cached list page (public, author and editor).
	ListCacheTTL time.Duration
	// CacheRetryInterval is how often a cache invalidation that failed (Redis
	// unreachable) is retried in the background; reads retry it themselves
	// before they trust the cache again.
	CacheRetryInterval time.Duration

	// PublishedEdits is BLOG_PUBLISHED_EDITS: "live" (the reference's
	// behaviour, the default) lets an author change the title, description,
	// slug, imgUrl and tags of a published blog, which go public at once;
	// "review" refuses those changes while the blog is published (409), so
	// every public field has been seen by an editor.
	PublishedEdits string
}

// Values of BLOG_PUBLISHED_EDITS.
const (
	PublishedEditsLive   = "live"
	PublishedEditsReview = "review"
)

// Load reads the configuration from src. The error lists every invalid
// variable, one per line.
func Load(src *chassisconfig.Source) (Config, error) {
	c := Config{
		Base: runtime.LoadBase(src, runtime.Defaults{DBName: "blog-dev-db", ServiceName: "blog", RedisDB: 2}),

		BreakerFailureRatio:     src.Float("BREAKER_FAILURE_RATIO", 0.5, 0.01, 1),
		BreakerMinRequests:      src.Int("BREAKER_MIN_REQUESTS", 20, 1, 1_000_000),
		BreakerWindow:           src.Duration("BREAKER_WINDOW", 10*time.Second, time.Second, 100*time.Millisecond, time.Hour),
		BreakerOpenTimeout:      src.Duration("BREAKER_OPEN_TIMEOUT", 5*time.Second, time.Second, 100*time.Millisecond, 10*time.Minute),
		BreakerHalfOpenRequests: src.Int("BREAKER_HALF_OPEN_REQUESTS", 5, 1, 1000),
		IgnoredBreakerFailures:  src.String("BREAKER_FAILURES", ""),

		// The reference's TTLs: 10 min for blogs, 6 h for similar lists.
		BlogCacheTTL:       src.Duration("CACHE_BLOG_TTL", 10*time.Minute, time.Second, time.Second, 24*time.Hour),
		SimilarCacheTTL:    src.Duration("CACHE_SIMILAR_TTL", 6*time.Hour, time.Second, time.Second, 7*24*time.Hour),
		ListCacheTTL:       src.Duration("CACHE_LIST_TTL", 2*time.Minute, time.Second, time.Second, 24*time.Hour),
		CacheRetryInterval: src.Duration("CACHE_RETRY_INTERVAL", 500*time.Millisecond, time.Millisecond, 10*time.Millisecond, time.Minute),
		PublishedEdits:     src.OneOf("BLOG_PUBLISHED_EDITS", PublishedEditsLive, PublishedEditsLive, PublishedEditsReview),
	}
	return c, src.Err()
}
