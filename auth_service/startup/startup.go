// Package startup wires auth_service: configuration, the chassis runtime
// (Mongo, Redis, NATS, HTTP engine, health, metrics), indexes, the
// bootstrap, HTTP routes, NATS endpoints and the keystore sweeper. It keeps
// no package-level state, so several Apps can run in one process (tests run
// two replicas side by side).
package startup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"blogplatform/auth_service/api/admin"
	"blogplatform/auth_service/api/apikey"
	apikeystore "blogplatform/auth_service/api/apikey/store"
	"blogplatform/auth_service/api/auth"
	"blogplatform/auth_service/api/auth/throttle"
	"blogplatform/auth_service/api/auth/token"
	"blogplatform/auth_service/api/changes"
	"blogplatform/auth_service/api/keystore"
	keystorestore "blogplatform/auth_service/api/keystore/store"
	"blogplatform/auth_service/api/user"
	userdto "blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	userstore "blogplatform/auth_service/api/user/store"
	"blogplatform/auth_service/config"
	"blogplatform/auth_service/migrations"
	"blogplatform/auth_service/openapi"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/localcache"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/natsx"
	"blogplatform/chassis/runtime"
)

// seedAPIKeyComment is the reference seed's comment.
const seedAPIKeyComment = "To be used by the xyz vendor"

// App is one auth_service replica.
type App struct {
	Config  config.Config
	Runtime *runtime.Runtime
	// Engine serves the HTTP API (for httptest or a custom server).
	Engine http.Handler

	Users     *user.Service
	Keystores *keystore.Service
	APIKeys   *apikey.Service
	Auth      *auth.Service
	Signer    *token.Signer

	// First-level caches (nil when LOCAL_CACHE_TTL is 0): sessions by
	// access token id, user snapshots by id, API-key verdicts by key hash.
	SessionCache *localcache.Cache[keystore.Session]
	UserCache    *localcache.Cache[*userdto.InfoPrivateUser]
	APIKeyCache  *localcache.Cache[bool]

	// EmailMigration is what the start-up email normalisation did
	// (conflicting accounts are also logged).
	EmailMigration user.EmailMigration

	// SkippedIndexes lists optional indexes the store refused (FerretDB:
	// the keystore TTL index; the sweeper covers it).
	SkippedIndexes []string

	natsInFlight, natsPeak atomic.Int64
	stopSweeper            context.CancelFunc
	sweeperDone            sync.WaitGroup
}

// New connects to every dependency, ensures indexes and seed data, mounts
// the routes and NATS endpoints and starts the keystore sweeper. NATS
// requests are answered from here on; HTTP once Run is called (or through
// Engine).
func New(ctx context.Context, cfg config.Config, o runtime.Options) (_ *App, err error) {
	private, public, err := token.LoadKeys(cfg.RSAPrivateKeyPath, cfg.RSAPublicKeyPath)
	if err != nil {
		return nil, err
	}
	// Every Redis key of auth starts with auth_ (the marker too; no key
	// built from client input can spell it).
	o.RedisKeys = cache.KeySpace{Patterns: []string{"auth_*"}, Marker: "auth_failover_primary"}
	rt, err := runtime.New(ctx, cfg.Base, o)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Runtime: rt, Engine: rt.Engine}
	defer func() {
		if err != nil {
			_ = a.Close(context.Background())
		}
	}()

	indexes := append(userstore.Indexes(), keystorestore.Indexes(cfg.RefreshTokenValidity)...)
	indexes = append(indexes, apikeystore.Indexes()...)
	if err = migrations.Run(ctx, rt, indexes); err != nil {
		return nil, err
	}
	if a.SkippedIndexes, err = mongox.EnsureIndexes(ctx, rt.DB.Database, rt.Log, indexes); err != nil {
		return nil, err
	}

	c := cache.New(rt.Redis, "auth", rt.Log, rt.Metrics)
	// First-level caches in front of Redis for the three answers every
	// request needs (nil when LOCAL_CACHE_TTL is 0). Every change to a
	// session, user or API key is announced to every replica of every
	// service (events.auth.changed) before its client is answered: this
	// replica drops its own copies at once, the others when the event
	// reaches them; while it cannot (NATS down) they serve nothing.
	a.SessionCache = runtime.NewLocalCache[keystore.Session](rt, "auth_session")
	a.UserCache = runtime.NewLocalCache[*userdto.InfoPrivateUser](rt, "auth_user")
	a.APIKeyCache = runtime.NewLocalCache[bool](rt, "auth_apikey")
	// A change is answered once every live follower of the events (auth
	// and blog replicas alike) has applied it: see changefeed.Feed.
	events, err := rt.Feed(authwire.SubjectChanges)
	if err != nil {
		return nil, err
	}
	feed := changes.NewFeed(events, rt.Log, a.SessionCache, a.UserCache, a.APIKeyCache)
	if cfg.LocalCacheTTL > 0 {
		if err = events.Follow(feed.Handle, a.SessionCache, a.UserCache, a.APIKeyCache); err != nil {
			return nil, err
		}
	}
	a.Users = user.NewService(userstore.New(rt.DB), c, user.Options{CacheTTL: cfg.AuthCacheTTL, Changes: feed, Local: a.UserCache})
	a.Keystores = keystore.NewService(keystorestore.New(rt.DB), c, keystore.Options{
		CacheTTL: cfg.AuthCacheTTL, Log: rt.Log, Changes: feed, Local: a.SessionCache,
	})
	a.APIKeys = apikey.NewService(apikeystore.New(rt.DB), c, apikey.Options{
		CacheTTL: cfg.APIKeyCacheTTL, RejectedTTL: cfg.APIKeyRejectedTTL, RejectedSize: cfg.APIKeyRejectedSize,
		Changes: feed, Local: a.APIKeyCache,
	})
	a.Signer = token.NewSigner(private, public, token.Options{
		Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience,
		AccessValidity: cfg.AccessTokenValidity, RefreshValidity: cfg.RefreshTokenValidity,
		CacheSize: cfg.TokenCacheSize,
	})
	a.Auth, err = auth.NewService(a.Users, a.Keystores, a.Signer, c, auth.Options{
		BcryptCost: cfg.BcryptCost, Log: rt.Log, UniformSignInErrors: cfg.SignInUniformErrors, ReuseGrace: cfg.RefreshReuseGrace,
		Attempts: throttle.NewAccountLimiter(rt.Redis, cfg.SignInFailureLimit, cfg.SignInFailureWindow, rt.Log),
	})
	if err != nil {
		return nil, err
	}
	if a.EmailMigration, err = a.Users.MigrateEmails(ctx, rt.Log); err != nil {
		return nil, err
	}
	if err = a.Seed(ctx); err != nil {
		return nil, err
	}
	if err = a.mount(); err != nil {
		return nil, err
	}
	a.startSweeper()
	return a, nil
}

func (a *App) mount() error {
	cfg, rt := a.Config, a.Runtime
	limiter := func(name string) *throttle.AddressLimiter {
		return throttle.NewAddressLimiter(rt.Redis, name, cfg.RateLimitPerMinute, cfg.RateLimitBurst, rt.Log)
	}
	authCtl := auth.NewController(a.Auth, limiter("signup"), limiter("signin"))
	userCtl := user.NewController(a.Users, authCtl.Authentication())
	apikey.NewController(a.APIKeys).MountRoutes(rt.Engine)
	authCtl.MountRoutes(rt.Engine)
	userCtl.MountRoutes(rt.Engine.Group("/profile", auth.NoStore))
	adminSvc := admin.NewService(apikeystore.New(rt.DB), userstore.New(rt.DB), keystorestore.New(rt.DB),
		a.APIKeys, a.Users, a.Keystores, admin.Options{AccessValidity: cfg.AccessTokenValidity + token.Leeway})
	admin.NewController(adminSvc, a.Auth).MountRoutes(rt.Engine.Group("/admin"))
	rt.Engine.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapi.Spec) })

	a.registerNATSMetrics()
	authGroup := natsx.GroupName(cfg.ServiceName, "/")
	profileGroup := natsx.GroupName(cfg.ServiceName, "/profile")
	return errors.Join(
		rt.Micro.AddEndpoint(authGroup, "authentication", a.tracked(natsx.Typed(authCtl.AuthenticationEndpoint))),
		rt.Micro.AddEndpoint(authGroup, "authorization", a.tracked(natsx.Typed(authCtl.AuthorizationEndpoint))),
		// auth.authenticate.authorize: micro endpoint names cannot hold a
		// dot, so the first part of the name goes into the group.
		rt.Micro.AddEndpoint(authGroup+".authenticate", "authorize", a.tracked(natsx.Typed(authCtl.AuthenticateAuthorizeEndpoint))),
		rt.Micro.AddEndpoint(profileGroup, "user", a.tracked(natsx.Typed(userCtl.ProfileUser))),
	)
}

// tracked counts handlers in flight. The peak shows in /metrics whether the
// endpoints really serve requests concurrently (the reference served them
// one at a time).
func (a *App) tracked(h natsx.HandlerFunc) natsx.HandlerFunc {
	return func(ctx context.Context, data json.RawMessage) (any, error) {
		n := a.natsInFlight.Add(1)
		defer a.natsInFlight.Add(-1)
		for peak := a.natsPeak.Load(); n > peak && !a.natsPeak.CompareAndSwap(peak, n); peak = a.natsPeak.Load() {
		}
		return h(ctx, data)
	}
}

// NATSPeakInFlight is the highest number of NATS handlers that ran at once.
func (a *App) NATSPeakInFlight() int64 { return a.natsPeak.Load() }

func (a *App) registerNATSMetrics() {
	a.Runtime.Metrics.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "auth_nats_handlers_in_flight", Help: "NATS handlers running now."},
			func() float64 { return float64(a.natsInFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "auth_nats_handlers_in_flight_peak", Help: "Most NATS handlers that ran at once since start."},
			func() float64 { return float64(a.natsPeak.Load()) }),
	)
}

// Seed is the idempotent bootstrap: the four roles, and when configured the
// API key and the admin user holding all four roles.
// Safe to run on every start of every replica, concurrently.
func (a *App) Seed(ctx context.Context) error {
	roles, err := a.Users.EnsureRoles(ctx, model.AllRoles)
	if err != nil {
		return fmt.Errorf("seed roles: %w", err)
	}
	if key := a.Config.SeedAPIKey; key != "" {
		if err := a.APIKeys.Ensure(ctx, key, []string{seedAPIKeyComment}); err != nil {
			return fmt.Errorf("seed api key: %w", err)
		}
	}
	if email := model.NormalizeEmail(a.Config.SeedAdminEmail); email != "" {
		ids := make([]bson.ObjectID, 0, len(roles))
		var adminID bson.ObjectID
		for _, r := range roles {
			ids = append(ids, r.ID)
			if r.Code == model.RoleAdmin {
				adminID = r.ID
			}
		}
		hash := func() (string, error) {
			h, err := bcrypt.GenerateFromPassword([]byte(a.Config.SeedAdminPassword), a.Config.BcryptCost)
			return string(h), err
		}
		switch err := a.Users.EnsureUser(ctx, email, "Admin", hash, ids, adminID); {
		case errors.Is(err, user.ErrNotAdmin):
			// Someone may have signed up with this address first; granting
			// it every role would make them an administrator. Start anyway:
			// the service is useful without the bootstrap admin.
			a.Runtime.Log.Warn("SEED_ADMIN_EMAIL belongs to an existing account without the ADMIN role; no roles granted (grant them by hand if the account is yours, or choose another address)",
				"email", email)
		case err != nil:
			return fmt.Errorf("seed admin: %w", err)
		}
	}
	return nil
}

// startSweeper removes expired keystores periodically: stores without TTL
// indexes (FerretDB) rely on it (see the keystore store's Indexes).
func (a *App) startSweeper() {
	ctx, cancel := context.WithCancel(context.Background())
	a.stopSweeper = cancel
	a.sweeperDone.Add(1)
	go func() {
		defer a.sweeperDone.Done()
		a.Keystores.RunSweeper(ctx, a.Config.KeystoreSweepInterval, a.Config.RefreshTokenValidity)
	}()
	a.Runtime.OnClose(func(context.Context) error {
		cancel()
		a.sweeperDone.Wait()
		return nil
	})
}

// Run serves HTTP on ln until ctx ends, then shuts down gracefully (NATS
// endpoints, HTTP, sweeper, connections).
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	return a.Runtime.Serve(ctx, ln)
}

// Close stops an App that is not running (Run closes by itself): NATS
// endpoints first, then the sweeper and the connections.
func (a *App) Close(ctx context.Context) error {
	return errors.Join(a.Runtime.Micro.Stop(a.Runtime.Config.ShutdownGrace), a.Runtime.Close(ctx))
}
