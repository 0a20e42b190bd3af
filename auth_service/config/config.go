// Package config is auth_service's configuration: the variables both services
// share (runtime.Base) plus the token, password, seeding, rate-limit and cache
// settings of this service. Every variable has a default in code; a value that
// is present but invalid is refused with one line naming the variable.
package config

import (
	"errors"
	"fmt"
	"net/mail"
	"time"

	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
)

// Defaults of the reference's .env.example, kept so a service started without
// a file issues the same tokens as the reference.
const (
	DefaultIssuer   = "api.goserve.unusualcode.org"
	DefaultAudience = "goserve.unusualcode.org"
)

// Config is everything auth_service reads at start-up.
type Config struct {
	runtime.Base

	AccessTokenValidity  time.Duration // ACCESS_TOKEN_VALIDITY_SEC
	RefreshTokenValidity time.Duration // REFRESH_TOKEN_VALIDITY_SEC
	TokenIssuer          string        // TOKEN_ISSUER
	TokenAudience        string        // TOKEN_AUDIENCE
	RSAPrivateKeyPath    string        // RSA_PRIVATE_KEY_PATH
	RSAPublicKeyPath     string        // RSA_PUBLIC_KEY_PATH

	// BcryptCost hashes new passwords; existing hashes keep their own cost.
	BcryptCost int

	// Seeding (all optional): the API key and the admin user ensured at start.
	SeedAPIKey        string
	SeedAdminEmail    string
	SeedAdminPassword string

	// Per client address, separately for sign-in and sign-up, shared by all
	// replicas through Redis (per replica while Redis is unreachable).
	RateLimitPerMinute int
	RateLimitBurst     int
	// SignInFailureLimit sign-in attempts per account (email) that did not
	// succeed are allowed per SignInFailureWindow, from any address.
	SignInFailureLimit  int
	SignInFailureWindow time.Duration
	// SignInUniformErrors answers an unknown email and a wrong password
	// alike (401), so sign-in does not tell which emails are registered.
	SignInUniformErrors bool
	// RefreshReuseGrace: a consumed refresh token presented again within this
	// long is a duplicate of the same refresh (refused, session kept); later
	// it is reuse and ends the session. 0: every second use ends it.
	RefreshReuseGrace time.Duration

	// KeystoreSweepInterval is how often keystores older than the refresh
	// token validity are deleted (the fallback for stores without TTL indexes).
	KeystoreSweepInterval time.Duration
	// AuthCacheTTL bounds how long a session or user snapshot cached in Redis
	// may lag behind an out-of-band database edit; in-band changes (sign-out,
	// refresh) take effect at once regardless.
	AuthCacheTTL time.Duration
	// APIKeyCacheTTL is the same bound for API key verdicts.
	APIKeyCacheTTL time.Duration
	// APIKeyRejectedTTL and APIKeyRejectedSize bound the in-process memory
	// of keys the store does not know: how long a key created out of band
	// (not through this service) may still be refused, and how many.
	APIKeyRejectedTTL  time.Duration
	APIKeyRejectedSize int
	// TokenCacheSize bounds the in-process cache of verified token signatures.
	TokenCacheSize int
}

// Load reads the configuration from src. The error lists every invalid
// variable, one per line.
func Load(src *chassisconfig.Source) (Config, error) {
	c := Config{
		Base: runtime.LoadBase(src, runtime.Defaults{DBName: "auth-dev-db", ServiceName: "auth", RedisDB: 0}),

		AccessTokenValidity:  src.Duration("ACCESS_TOKEN_VALIDITY_SEC", 172800*time.Second, time.Second, time.Second, 365*24*time.Hour),
		RefreshTokenValidity: src.Duration("REFRESH_TOKEN_VALIDITY_SEC", 604800*time.Second, time.Second, time.Second, 5*365*24*time.Hour),
		TokenIssuer:          src.String("TOKEN_ISSUER", DefaultIssuer),
		TokenAudience:        src.String("TOKEN_AUDIENCE", DefaultAudience),
		RSAPrivateKeyPath:    src.String("RSA_PRIVATE_KEY_PATH", "keys/private.pem"),
		RSAPublicKeyPath:     src.String("RSA_PUBLIC_KEY_PATH", "keys/public.pem"),

		// bcrypt accepts 4..31; above 14 a sign-in takes seconds.
		BcryptCost: src.Int("BCRYPT_COST", 10, 4, 14),

		SeedAPIKey:        src.String("SEED_API_KEY", ""),
		SeedAdminEmail:    src.String("SEED_ADMIN_EMAIL", ""),
		SeedAdminPassword: src.String("SEED_ADMIN_PASSWORD", ""),

		RateLimitPerMinute: src.Int("RATE_LIMIT_PER_MINUTE", 120, 1, 1_000_000),
		RateLimitBurst:     src.Int("RATE_LIMIT_BURST", 30, 1, 1_000_000),

		SignInFailureLimit:  src.Int("SIGNIN_FAILURE_LIMIT", 10, 1, 1_000_000),
		SignInFailureWindow: src.Duration("SIGNIN_FAILURE_WINDOW", 15*time.Minute, time.Second, time.Second, 24*time.Hour),
		SignInUniformErrors: src.Bool("SIGNIN_UNIFORM_ERRORS", false),
		RefreshReuseGrace:   src.Duration("REFRESH_REUSE_GRACE", 5*time.Second, time.Second, 0, time.Minute),

		KeystoreSweepInterval: src.Duration("KEYSTORE_SWEEP_INTERVAL", time.Hour, time.Second, 10*time.Millisecond, 7*24*time.Hour),
		AuthCacheTTL:          src.Duration("AUTH_CACHE_TTL", time.Minute, time.Second, time.Second, 24*time.Hour),
		APIKeyCacheTTL:        src.Duration("APIKEY_CACHE_TTL", 30*time.Second, time.Second, time.Second, 24*time.Hour),
		TokenCacheSize:        src.Int("TOKEN_CACHE_SIZE", 10000, 16, 10_000_000),
		APIKeyRejectedTTL:     src.Duration("APIKEY_REJECTED_CACHE_TTL", 5*time.Second, time.Second, 0, time.Minute),
		APIKeyRejectedSize:    src.Int("APIKEY_REJECTED_CACHE_SIZE", 10000, 1, 1_000_000),
	}
	if c.RequireRealSecrets() {
		// The seeded key and admin password are published in .env.example:
		// with them, anyone could call the API or sign in as ADMIN.
		src.RejectExampleSecrets("SEED_API_KEY", "SEED_ADMIN_PASSWORD")
	}
	errs := []error{src.Err()}
	if len(c.SeedAPIKey) > 1024 {
		errs = append(errs, errors.New("invalid configuration: SEED_API_KEY: must be at most 1024 characters"))
	}
	if (c.SeedAdminEmail == "") != (c.SeedAdminPassword == "") {
		errs = append(errs, errors.New("invalid configuration: SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD: set both or neither"))
	}
	if c.SeedAdminEmail != "" {
		if addr, err := mail.ParseAddress(c.SeedAdminEmail); err != nil || addr.Address != c.SeedAdminEmail {
			errs = append(errs, fmt.Errorf("invalid configuration: SEED_ADMIN_EMAIL=%q: must be an email address", c.SeedAdminEmail))
		}
	}
	if c.SeedAdminPassword != "" && (len(c.SeedAdminPassword) < 6 || len(c.SeedAdminPassword) > 72) {
		// bcrypt ignores bytes past 72; sign-in requires at least 6.
		errs = append(errs, errors.New("invalid configuration: SEED_ADMIN_PASSWORD: must be 6 to 72 characters"))
	}
	return c, errors.Join(errs...)
}
