// Command apikey-auth-plugin is a Kong plugin server (go-pdk) that lets a
// request through only when auth_service's GET /verify/apikey accepts its
// x-api-key header. Kong names the plugin after the binary, so the binary must
// be called apikey-auth-plugin.
//
// The decision itself lives in package verify, shared with the local gateway,
// so both gateways answer clients the same way.
package main

import (
	"context"
	"log"
	"os"
	"sync"
	"time"

	"github.com/Kong/go-pdk"
	"github.com/Kong/go-pdk/server"

	"blogplatform/kong/apikey_auth_plugin/verify"
)

const (
	// Version is reported to Kong by -dump.
	Version = "0.2.0"
	// Priority 1000 runs the key check before bundled plugins such as
	// rate-limiting (910), like the reference.
	Priority = 1000

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
	// public_paths: client paths (e.g. /blog/health/ready) that GET and HEAD
	// requests may reach without a key, so probes and operators can check a
	// service's health through the gateway.
	PublicPaths []string `json:"public_paths"`
	// bypass: a route-level instance with bypass true lets every request of
	// its route through without a key (Kong applies the most specific
	// instance, so this opens one route while the global instance guards the
	// rest).
	Bypass bool `json:"bypass"`

	// go-pdk creates one Config per plugin instance (per configuration) and
	// calls Access on it from many goroutines; the Verifier, with its
	// connection pool and cache, is built once, on first use.
	once     sync.Once
	verifier *verify.Verifier
}

// New is the constructor go-pdk calls for each plugin instance.
func New() interface{} {
	return &Config{}
}

func (c *Config) verifyConfig() verify.Config {
	return verify.Settings{
		VerificationURLs: c.VerificationURLs, TimeoutMS: c.TimeoutMs,
		CacheTTLSeconds: c.CacheTTLSeconds, StaleTTLSeconds: c.StaleTTLSeconds,
	}.Config()
}

func (c *Config) getVerifier() *verify.Verifier {
	c.once.Do(func() {
		c.verifier = verify.New(c.verifyConfig(), nil)
	})
	return c.verifier
}

// Access runs in Kong's access phase: it either returns (Kong proxies the
// request unchanged) or ends the request with the verifier's JSON envelope.
func (c *Config) Access(kong *pdk.PDK) {
	if c.Bypass {
		return
	}
	if len(c.PublicPaths) > 0 {
		method, merr := kong.Request.GetMethod()
		path, perr := kong.Request.GetPath()
		if merr == nil && perr == nil && verify.IsPublicPath(method, path, c.PublicPaths) {
			return
		}
	}
	apiKey, err := kong.Request.GetHeader(verify.HeaderName)
	if err != nil {
		// Kong's bridge reports a missing header as "" rather than an error;
		// should a version report it as an error instead, the client still
		// gets the missing-key 401 rather than a 5xx with PDK text.
		_ = kong.Log.Warn("apikey-auth-plugin: reading x-api-key: ", err.Error())
		apiKey = ""
	}

	decision := c.getVerifier().Verify(context.Background(), apiKey)
	if decision.Err != nil {
		_ = kong.Log.Err("apikey-auth-plugin: ", decision.Err.Error())
	}
	if decision.Allow {
		return
	}
	kong.Response.Exit(decision.Status, decision.Body, map[string][]string{
		"Content-Type": {"application/json"},
	})
}

func main() {
	if err := server.StartServer(New, Version, Priority); err != nil {
		log.Printf("apikey-auth-plugin: plugin server stopped: %v", err)
		os.Exit(1)
	}
}
