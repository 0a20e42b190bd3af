// Command apikey-auth-plugin is a Kong plugin server (go-pdk) that lets a
// request through only when auth_service's GET /verify/apikey accepts its
// x-api-key header. Kong names the plugin after the binary, so the binary must
// be called apikey-auth-plugin.
//
// It also limits requests per client address on configured path prefixes
// (rate_limits), so that a 429 is the platform's JSON envelope rather than
// the bundled rate-limiting plugin's body.
//
// The decisions themselves live in packages verify and ratelimit, shared with
// the local gateway, so both gateways answer clients the same way. Every
// response the plugin itself ends a request with (401, 403, 429, 500, 503)
// is the platform envelope {"code":"10001","status":<n>,"message":"..."}.
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/Kong/go-pdk"
	"github.com/Kong/go-pdk/server"

	"blogplatform/kong/apikey_auth_plugin/kongpath"
	"blogplatform/kong/apikey_auth_plugin/ratelimit"
	"blogplatform/kong/apikey_auth_plugin/verify"
)

const (
	// Version is reported to Kong by -dump.
	Version = "0.4.0"
	// Priority 1000 runs the plugin before bundled ones that act on proxied
	// requests (rate-limiting is 910), like the reference.
	Priority = 1000

	// MessageMisconfigured answers every request while rate_limits is
	// invalid: failing closed makes the mistake visible at once instead of
	// silently dropping the limit. The local gateway refuses such a file at
	// start-up; Kong's schema cannot express the rule's constraints.
	MessageMisconfigured = "gateway configuration error"

	// DefaultTimeoutMs applies when timeout_ms is absent, zero or negative.
	DefaultTimeoutMs = int(verify.DefaultTimeout / time.Millisecond)
)

// Config is the plugin's configuration as declared in kong.yml. go-pdk turns
// the JSON tags into the Kong schema, so they must be bare names (no
// ",omitempty"). The schema cannot express defaults, so absent values arrive
// as zero values and are defaulted here:
//   - timeout_ms: per verification URL; absent or <= 0 means 2000.
//   - cache_ttl_seconds: how long an accepted key is accepted again without
//     asking auth_service; absent or <= 0 disables the cache (the safe
//     default: a revoked key stops working at once). kong.yml sets 5.
type Config struct {
	VerificationURLs []string `json:"verification_urls"`
	TimeoutMs        int      `json:"timeout_ms"`
	CacheTTLSeconds  int      `json:"cache_ttl_seconds"`
	// stale_ttl_seconds: while no verifier answers (auth down), a key
	// accepted within cache_ttl_seconds + stale_ttl_seconds is still
	// accepted, so public reads survive an auth outage. 0 disables it.
	StaleTTLSeconds int `json:"stale_ttl_seconds"`
	// negative_ttl_seconds: how long a key auth rejected (401/403) is
	// rejected again without asking auth, so random keys do not each cost a
	// call; also the longest a key auth starts accepting can still be
	// refused. Absent or 0: 5 s; negative: off. See verify.Config.
	NegativeTTLSeconds int `json:"negative_ttl_seconds"`
	// public_paths: client paths (e.g. /blog/health/ready) that GET and HEAD
	// requests may reach without a key, so probes and operators can check a
	// service's health through the gateway.
	PublicPaths []string `json:"public_paths"`
	// bypass: a route-level instance with bypass true lets every request of
	// its route through without a key (Kong applies the most specific
	// instance, so this opens one route while the global instance guards the
	// rest).
	Bypass bool `json:"bypass"`
	// rate_limits: per client address and path prefix budgets, e.g.
	// [{paths: [/auth/signin/basic, /auth/signup/basic], per_minute: 120}];
	// see package ratelimit. Checked before anything else.
	RateLimits []ratelimit.Rule `json:"rate_limits"`

	// go-pdk creates one Config per plugin instance (per configuration: a
	// changed configuration is a new instance) and calls Access on it from
	// many goroutines. The Verifier, with its connection pool and cache, and
	// the Limiter, whose counts must outlive a request, are built once, on
	// first use.
	once       sync.Once
	verifier   *verify.Verifier
	limiter    *ratelimit.Limiter
	limiterErr error
	// limiters, when set, shares one Limiter between the instances of equal
	// rate_limits: Kong starts an instance per nginx worker, and each would
	// otherwise grant a client the whole budget again.
	limiters *ratelimit.Registry
}

// New makes a Config with rate-limit counts of its own (tests, -dump).
func New() interface{} {
	return &Config{}
}

// newShared returns the constructor the plugin server uses: its instances
// share rate-limit counts per rule set.
func newShared() func() interface{} {
	limiters := ratelimit.NewRegistry(ratelimit.Options{}, 0)
	return func() interface{} { return &Config{limiters: limiters} }
}

// settings is the configuration in the form shared with the local gateway.
func (c *Config) settings() verify.Settings {
	return verify.Settings{
		VerificationURLs: c.VerificationURLs, TimeoutMS: c.TimeoutMs,
		CacheTTLSeconds: c.CacheTTLSeconds, StaleTTLSeconds: c.StaleTTLSeconds,
		NegativeTTLSeconds: c.NegativeTTLSeconds,
		PublicPaths:        c.PublicPaths, Bypass: c.Bypass, RateLimits: c.RateLimits,
	}
}

func (c *Config) verifyConfig() verify.Config { return c.settings().Config() }

// build creates the instance's Verifier and Limiter once.
func (c *Config) build() {
	c.once.Do(func() {
		c.verifier = verify.New(c.verifyConfig(), nil)
		if c.limiters != nil {
			c.limiter, c.limiterErr = c.limiters.Get(c.RateLimits)
		} else {
			c.limiter, c.limiterErr = c.settings().RateLimiter(ratelimit.Options{})
		}
	})
}

// Access runs in Kong's access phase: it either returns (Kong proxies the
// request unchanged) or ends the request with a JSON envelope. Order:
//  1. rate limit (before the key check, so that guessing keys, or flooding
//     sign-in without one, is limited too; bypass and public paths are
//     limited as well when a rule covers them);
//  2. bypass and public paths let the request through;
//  3. the key check.
//
// On a limited path the X-RateLimit-* headers go on every response,
// allowed or not, as with Kong's bundled plugin.
func (c *Config) Access(kong *pdk.PDK) {
	c.build()
	if c.limiterErr != nil {
		_ = kong.Log.Err("apikey-auth-plugin: invalid rate_limits: ", c.limiterErr.Error())
		exit(kong, http.StatusInternalServerError, verify.EnvelopeBody(http.StatusInternalServerError, MessageMisconfigured), nil)
		return
	}
	path, err := kong.Request.GetPath()
	if err != nil {
		// Kong always has a path; should reading it fail, the request is
		// not limited but still needs a key (no exemption on a guess).
		_ = kong.Log.Warn("apikey-auth-plugin: reading the path: ", err.Error())
	}
	// GetPath is the raw path; Kong's router matched, and proxies, its
	// normalised form, so the limit and the public paths are judged on
	// that same form (as the local gateway does).
	path = kongpath.Normalize(path)

	var rateHeader http.Header
	if err == nil && c.limiter.Covers(path) {
		limit := verify.CheckRateLimit(c.limiter, clientAddress(kong), path)
		if !limit.Allow {
			exit(kong, limit.Status, limit.Body, limit.Header)
			return
		}
		rateHeader = limit.Header
	}

	if c.Bypass || (err == nil && len(c.PublicPaths) > 0 && c.isPublic(kong, path)) {
		addHeaders(kong, rateHeader)
		return
	}

	apiKey, err := kong.Request.GetHeader(verify.HeaderName)
	if err != nil {
		// Kong's bridge reports a missing header as "" rather than an error;
		// should a version report it as an error instead, the client still
		// gets the missing-key 401 rather than a 5xx with PDK text.
		_ = kong.Log.Warn("apikey-auth-plugin: reading x-api-key: ", err.Error())
		apiKey = ""
	}

	decision := c.verifier.Verify(context.Background(), apiKey)
	if decision.Err != nil {
		_ = kong.Log.Err("apikey-auth-plugin: ", decision.Err.Error())
	}
	if decision.Allow {
		addHeaders(kong, rateHeader)
		return
	}
	exit(kong, decision.Status, decision.Body, rateHeader)
}

func (c *Config) isPublic(kong *pdk.PDK, path string) bool {
	method, err := kong.Request.GetMethod()
	return err == nil && verify.IsPublicPath(method, path, c.PublicPaths)
}

// clientAddress is the client's address as Kong sees it: with Kong's
// trusted_ips (none by default) X-Forwarded-For is honoured only from a
// trusted proxy, so a client cannot choose its own identity.
func clientAddress(kong *pdk.PDK) string {
	if ip, err := kong.Client.GetForwardedIp(); err == nil && ip != "" {
		return ip
	}
	ip, err := kong.Client.GetIp()
	if err != nil {
		_ = kong.Log.Warn("apikey-auth-plugin: reading the client address: ", err.Error())
	}
	return ip
}

// addHeaders puts headers on the response Kong will send for a request
// that goes on to the upstream.
func addHeaders(kong *pdk.PDK, h http.Header) {
	for name, values := range h {
		for _, v := range values {
			if err := kong.Response.SetHeader(name, v); err != nil {
				_ = kong.Log.Warn("apikey-auth-plugin: setting ", name, ": ", err.Error())
			}
		}
	}
}

// exit ends the request with a JSON envelope and extra headers.
func exit(kong *pdk.PDK, status int, body []byte, extra http.Header) {
	headers := map[string][]string{"Content-Type": {"application/json"}}
	for name, values := range extra {
		headers[name] = values
	}
	kong.Response.Exit(status, body, headers)
}

func main() {
	if err := server.StartServer(newShared(), Version, Priority); err != nil {
		log.Printf("apikey-auth-plugin: plugin server stopped: %v", err)
		os.Exit(1)
	}
}
