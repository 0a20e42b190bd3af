package kongconf

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The real files of the repository, which the local gateway must be able to run.
var repoKongDir = filepath.Join("..", "..", "..", "kong")

func TestLoadBalancedFileOfTheRepo(t *testing.T) {
	cfg, err := Load(filepath.Join(repoKongDir, "kong-load-balanced.yml"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]ResolvedRoute{}
	for _, r := range cfg.Routes {
		byName[r.Name] = r
	}
	for _, name := range []string{"auth", "blog"} {
		r, ok := byName[name]
		if !ok {
			t.Fatalf("route %s missing; routes: %v", name, cfg.Routes)
		}
		if !r.StripPath || !slices.Contains(r.Paths, "/"+name) {
			t.Errorf("route %s: paths %v strip %v", name, r.Paths, r.StripPath)
		}
		up := r.Service.Upstream
		if up == nil || up.Name != name+"_upstream" {
			t.Fatalf("route %s: upstream %+v", name, up)
		}
		var targets []string
		for _, tg := range up.Targets {
			host, port, err := tg.HostPort()
			if err != nil {
				t.Fatal(err)
			}
			if port != 8000 || tg.EffectiveWeight() != 100 {
				t.Errorf("target %s: port %d weight %d", tg.Target, port, tg.EffectiveWeight())
			}
			targets = append(targets, host)
		}
		if want := []string{name + "1", name + "2"}; !slices.Equal(targets, want) {
			t.Errorf("upstream %s targets %v, want %v", up.Name, targets, want)
		}
		if up.Healthchecks.Active.HTTPPath != "/health/ready" {
			t.Errorf("upstream %s health path %q", up.Name, up.Healthchecks.Active.HTTPPath)
		}
	}

	// Every route runs the global API-key plugin with both verifiers.
	for _, r := range cfg.Routes {
		p, ok := r.Plugins[PluginAPIKey]
		if !ok {
			t.Fatalf("route %s has no %s", r.Name, PluginAPIKey)
		}
		var c APIKeyConfig
		if err := p.DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		want := []string{"http://auth1:8000/verify/apikey", "http://auth2:8000/verify/apikey"}
		if !slices.Equal(c.VerificationURLs, want) || c.TimeoutMS <= 0 {
			t.Errorf("route %s: api key config %+v", r.Name, c)
		}
	}

	// Sign-in and sign-up are rate limited per address, 120 a minute, and go
	// to the auth upstream's exact endpoint.
	for _, tc := range []struct{ route, path string }{
		{"auth-signin", "/signin/basic"},
		{"auth-signup", "/signup/basic"},
	} {
		r, ok := byName[tc.route]
		if !ok {
			t.Fatalf("route %s missing", tc.route)
		}
		if r.Service.Path != tc.path || r.Service.Upstream == nil || r.Service.Upstream.Name != "auth_upstream" {
			t.Errorf("route %s: service %+v", tc.route, r.Service)
		}
		p, ok := r.Plugins[PluginRateLimit]
		if !ok {
			t.Fatalf("route %s: no rate limit", tc.route)
		}
		var c RateLimitConfig
		if err := p.DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		if c.Minute != 120 || c.LimitBy != "ip" {
			t.Errorf("route %s: rate limit %+v", tc.route, c)
		}
	}
	if _, ok := byName["auth"].Plugins[PluginRateLimit]; ok {
		t.Error("the general auth route must not be rate limited")
	}
}

func TestSingleReplicaFileOfTheRepo(t *testing.T) {
	cfg, err := Load(filepath.Join(repoKongDir, "kong.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) < 2 {
		t.Fatalf("routes: %v", cfg.Routes)
	}
}

func TestPluginPrecedenceAndReferences(t *testing.T) {
	cfg, err := Parse([]byte(`
_format_version: "3.0"
services:
  - name: svc
    url: http://backend:9000/base
    plugins:
      - name: rate-limiting
        config: {minute: 5}
    routes:
      - name: open
        paths: [/open]
        strip_path: false
        plugins:
          - name: apikey-auth-plugin
            config: {bypass: true}
      - name: closed
        paths: [/closed]
routes:
  - name: top
    service: {name: svc}
    paths: [/top]
    methods: [get]
plugins:
  - name: apikey-auth-plugin
    config: {verification_urls: [http://auth:8000/verify/apikey]}
  - name: rate-limiting
    route: top
    config: {minute: 1}
  - name: rate-limiting
    service: svc
    enabled: false
    config: {minute: 99}
`))
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]ResolvedRoute{}
	for _, r := range cfg.Routes {
		routes[r.Name] = r
	}
	keyConfig := func(route string) APIKeyConfig {
		var c APIKeyConfig
		if err := routes[route].Plugins[PluginAPIKey].DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	limit := func(route string) float64 {
		var c RateLimitConfig
		if err := routes[route].Plugins[PluginRateLimit].DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		return c.Minute
	}
	if !keyConfig("open").Bypass || keyConfig("closed").Bypass {
		t.Error("route-level plugin must override the global one, only on its route")
	}
	if limit("closed") != 5 || limit("top") != 1 {
		t.Errorf("limits: closed %v (service level), top %v (route level); a disabled instance must override nothing", limit("closed"), limit("top"))
	}
	if routes["open"].StripPath || !routes["closed"].StripPath {
		t.Error("strip_path: explicit false kept, default true")
	}
	if s := routes["top"].Service; s.Host != "backend" || s.Port != 9000 || s.Path != "/base" || s.Upstream != nil {
		t.Errorf("service %+v", s)
	}
	if !slices.Equal(routes["top"].Methods, []string{"GET"}) {
		t.Errorf("methods %v", routes["top"].Methods)
	}
}

func TestInvalidFilesAreRejected(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown service": {`
routes:
  - {name: r, service: nope, paths: [/x]}`, `unknown service "nope"`},
		"regex path": {`
services:
  - name: s
    url: http://h
    routes: [{name: r, paths: ["~/x$"]}]`, "regex path"},
		"https": {`
services:
  - name: s
    url: https://h
    routes: [{name: r, paths: [/x]}]`, "http only"},
		"plugin on unknown route": {`
services:
  - name: s
    url: http://h
    routes: [{name: r, paths: [/x]}]
plugins:
  - {name: rate-limiting, route: other}`, `unknown route "other"`},
		"no routes": {`services: []`, "no routes"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
