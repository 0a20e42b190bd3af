// Package startup assembles blog_service on the chassis runtime: indexes,
// the auth client, the cache and the four controllers. An App holds no
// global state, so several can run in one process (tests, benchmarks).
package startup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/api/author"
	"blogplatform/blog_service/api/blog"
	"blogplatform/blog_service/api/editor"
	"blogplatform/blog_service/api/list"
	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/authorprofile"
	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/blogrepo"
	"blogplatform/blog_service/config"
	"blogplatform/blog_service/migrations"
	"blogplatform/blog_service/model"
	"blogplatform/blog_service/openapi"
	"blogplatform/chassis/apidocs"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/httpx"
	"blogplatform/chassis/migrate"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/natsx"
	"blogplatform/chassis/runtime"
)

// App is one running blog_service.
type App struct {
	Runtime *runtime.Runtime
	// Engine serves the whole API (for httptest and benchmarks).
	Engine *httpx.Engine
	Store  *model.Store
	Cache  *blogcache.Cache
	// Migrations is the start-up migration runner (BackgroundDone tells
	// when the backfills have finished).
	Migrations *migrate.Runner
}

// New connects to the dependencies (waiting for Mongo), ensures the indexes
// and mounts every route (and the OpenAPI document at /openapi.yaml). It
// does not listen: call Run.
func New(ctx context.Context, cfg config.Config, opts runtime.Options) (*App, error) {
	// blog's Redis keys: the reference's blog_<id|slug> and everything
	// under blogcache: (where no client input can spell the marker).
	opts.RedisKeys = cache.KeySpace{Patterns: []string{"blog_*", blogcache.Prefix + "*"}, Marker: blogcache.Prefix + "failover:primary"}
	rt, err := runtime.New(ctx, cfg.Base, opts)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, cfg.Mongo.QueryTimeout)
	defer cancel()
	if _, err := mongox.EnsureIndexes(ictx, rt.DB.Database, rt.Log, model.Indexes()); err != nil {
		return nil, errors.Join(fmt.Errorf("blog indexes: %w", err), rt.Close(context.Background()))
	}

	if cfg.IgnoredBreakerFailures != "" {
		rt.Log.Warn("BREAKER_FAILURES is deprecated and ignored: the circuit breaker opens on a failure ratio "+
			"(BREAKER_FAILURE_RATIO, BREAKER_MIN_REQUESTS, BREAKER_WINDOW)", "value", cfg.IgnoredBreakerFailures)
	}
	auth := authclient.New(natsx.NewClient(rt.NATS, natsx.ClientOptions{
		Timeout: cfg.NATSTimeout,
		Breaker: natsx.BreakerOptions{
			FailureRatio:     cfg.BreakerFailureRatio,
			MinRequests:      uint32(cfg.BreakerMinRequests),
			Window:           cfg.BreakerWindow,
			OpenTimeout:      cfg.BreakerOpenTimeout,
			HalfOpenRequests: uint32(cfg.BreakerHalfOpenRequests),
		},
		Retry: natsx.RetryOptions{
			// Every auth subject is a read (authentication, authorization,
			// profile, and any combination of them), so a request may safely
			// reach auth_service more than once. A subject that changes state
			// must not be served under "auth." without narrowing this.
			Idempotent:     []string{"auth.>"},
			AttemptTimeout: cfg.NATSAttemptTimeout,
			MaxAttempts:    cfg.NATSMaxAttempts,
			Budget:         cfg.NATSRetryBudget,
		},
		Name: "auth", Logger: rt.Log, Metrics: rt.Metrics, Tracer: rt.Tracer, Propagator: rt.Propagator,
	}))
	// Verified sessions: a protected request skips the round trip to auth
	// while auth's change events drop ended sessions on every replica.
	if sessions := runtime.NewLocalCache[authclient.Verified](rt, "sessions"); sessions != nil {
		auth.WithSessions(sessions)
		// Through a feed, so this replica acknowledges each event: auth
		// answers a sign-out only once every blog replica has dropped the
		// session.
		authEvents, err := rt.Feed(authwire.SubjectChanges)
		if err == nil {
			err = authEvents.Follow(auth.HandleChange, sessions)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("follow auth's change events: %w", err), rt.Close(context.Background()))
		}
	}
	// Blogs and lists are also kept per replica (LOCAL_CACHE_TTL), dropped
	// on every replica by the change events each write publishes.
	localBlogs := runtime.NewLocalCache[[]byte](rt, "blog")
	// Every replica takes part in the blog feed, following or not: a
	// write waits until every replica that follows has applied it.
	blogFeed, err := rt.Feed(blogcache.SubjectChanged)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("blog change events: %w", err), rt.Close(context.Background()))
	}
	blogCache := blogcache.New(cache.New(rt.Redis, "blog", rt.Log, rt.Metrics), blogcache.Options{
		TTLs:          blogcache.TTLs{Blog: cfg.BlogCacheTTL, Similar: cfg.SimilarCacheTTL, List: cfg.ListCacheTTL},
		RetryInterval: cfg.CacheRetryInterval,
		Logger:        rt.Log,
		Metrics:       rt.Metrics,
		Name:          "blog",
		Local:         localBlogs,
		Events:        blogFeed,
	})
	if err := blogCache.Follow(); err != nil {
		return nil, errors.Join(fmt.Errorf("blog change events: %w", err), rt.Close(context.Background()))
	}
	blogCache.Start()
	// Runs after HTTP has stopped and before Redis closes.
	rt.OnClose(blogCache.Close)

	store := model.NewStore(rt.DB)
	repo := blogrepo.New(store, blogCache)
	// Authors of blogs stored without a profile (written by the reference),
	// cached per author for as long as a blog.
	profiles := authorprofile.New(auth, cache.New(rt.Redis, "authorprofile", rt.Log, rt.Metrics), cfg.BlogCacheTTL, rt.Log)
	blog.NewController(blog.NewService(store, blogCache, profiles)).Mount(rt.Engine)
	list.NewController(list.NewService(store, blogCache)).Mount(rt.Engine)
	author.NewController(author.NewService(store, repo, blogCache, cfg.PublishedEdits == config.PublishedEditsReview), auth).Mount(rt.Engine)
	editor.NewController(editor.NewService(store, repo, blogCache, auth, profiles), auth).Mount(rt.Engine)
	rt.Engine.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapi.Spec) })
	// The platform's documentation page (both services' documents, fetched
	// through the gateway, which serves /docs and the two documents without
	// a key). Only its own files are routed, so anything else below /docs
	// is the usual 404.
	docs, err := apidocs.New(apidocs.Options{Title: "Blog platform API", Documents: []apidocs.Document{
		{Name: "auth", URL: "/auth/openapi.yaml"},
		{Name: "blog", URL: "/blog/openapi.yaml"},
	}})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("docs page: %w", err), rt.Close(context.Background()))
	}
	for _, p := range apidocs.Paths() {
		rt.Engine.GET(p, gin.WrapH(docs))
	}

	// Start-up migrations: only background backfills today, so this
	// returns at once and the service serves while they run.
	runner, err := migrate.New(rt.DB.Database, migrations.Steps(migrations.Deps{
		Blogs: store.Collection(), Cache: blogCache, Profiles: profiles,
	}), migrate.Options{Logger: rt.Log})
	if err == nil {
		err = runner.Run(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("blog migrations: %w", err), rt.Close(context.Background()))
	}
	// Registered last, so it runs first: the backfills stop before Redis,
	// NATS and Mongo close.
	rt.OnClose(runner.Close)

	return &App{Runtime: rt, Engine: rt.Engine, Store: store, Cache: blogCache, Migrations: runner}, nil
}

// Run serves on ln until ctx is cancelled, then shuts down gracefully
// (readiness 503, NATS drained, in-flight requests finished, connections
// closed).
func (a *App) Run(ctx context.Context, ln net.Listener) error { return a.Runtime.Serve(ctx, ln) }

// Close releases the connections of an App that never ran (tests).
func (a *App) Close(ctx context.Context) error { return a.Runtime.Close(ctx) }
