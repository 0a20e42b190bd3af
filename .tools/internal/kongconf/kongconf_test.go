package kongconf

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
		for _, kind := range []string{"read", "write"} {
			r, ok := byName[name+"-"+kind]
			if !ok {
				t.Fatalf("route %s-%s missing; routes: %v", name, kind, cfg.Routes)
			}
			if !r.StripPath || !slices.Equal(r.Paths, []string{"/" + name + "/"}) {
				t.Errorf("route %s: paths %v strip %v", r.Name, r.Paths, r.StripPath)
			}
			up := r.Service.Upstream
			if up == nil || up.Name != name+"_upstream" {
				t.Fatalf("route %s: upstream %+v", r.Name, up)
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
			hc := up.Healthchecks
			if hc.Active.HTTPPath != "/health/ready" || hc.Passive.Unhealthy.TCPFailures != 2 || hc.Passive.Unhealthy.Timeouts != 2 || hc.Passive.Unhealthy.HTTPFailures != 0 {
				t.Errorf("upstream %s health checks %+v", up.Name, hc)
			}
		}
	}

	// Every route runs the global API-key plugin with both verifiers and
	// the sign-in/sign-up rate limit.
	for _, r := range cfg.Routes {
		p, ok := r.Plugins[PluginAPIKey]
		if !ok {
			t.Fatalf("route %s has no %s", r.Name, PluginAPIKey)
		}
		var c APIKeyConfig
		if err := p.DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		if r.Name == "not-found" {
			// Unknown paths are a 404 with or without a key.
			if !c.Bypass {
				t.Errorf("route not-found: the key check is not bypassed: %+v", c)
			}
			continue
		}
		want := []string{"http://auth1:8000/verify/apikey", "http://auth2:8000/verify/apikey"}
		if !slices.Equal(c.VerificationURLs, want) || c.TimeoutMS <= 0 {
			t.Errorf("route %s: api key config %+v", r.Name, c)
		}
		if len(c.RateLimits) != 1 || c.RateLimits[0].PerMinute != 120 ||
			!slices.Equal(c.RateLimits[0].Paths, []string{"/auth/signin/basic", "/auth/signup/basic"}) {
			t.Errorf("route %s: rate limits %+v", r.Name, c.RateLimits)
		}
	}
	nf, ok := byName["not-found"]
	if !ok || nf.Service.Name != "" || !slices.Equal(nf.Paths, []string{"/"}) {
		t.Errorf("not-found route %+v", nf)
	}
}

// Services carry Kong's timeouts and retries, with Kong's defaults and
// bounds.
func TestServiceTimeoutsAndRetries(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - name: tuned
    url: http://h
    connect_timeout: 250
    write_timeout: 1500
    read_timeout: 800
    retries: 0
    routes: [{name: tuned, paths: [/t]}]
  - name: plain
    url: http://h
    routes: [{name: plain, paths: [/p]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ResolvedService{}
	for _, r := range cfg.Routes {
		got[r.Name] = r.Service
	}
	if s := got["tuned"]; s.ConnectTimeout != 250*time.Millisecond || s.WriteTimeout != 1500*time.Millisecond || s.ReadTimeout != 800*time.Millisecond || s.Retries != 0 {
		t.Errorf("tuned %+v", s)
	}
	if s := got["plain"]; s.ConnectTimeout != time.Minute || s.WriteTimeout != time.Minute || s.ReadTimeout != time.Minute || s.Retries != 5 {
		t.Errorf("Kong's defaults: %+v", s)
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
      - name: request-termination
        config: {status_code: 418}
    routes:
      - name: open
        paths: [/open]
        strip_path: false
        plugins:
          - name: apikey-auth-plugin
            config: {bypass: true}
      - name: closed
        paths: [/closed]
      - name: top
        paths: [/top]
        methods: [GET]
plugins:
  - name: apikey-auth-plugin
    config: {verification_urls: [http://auth:8000/verify/apikey]}
  - name: request-termination
    route: top
    config: {status_code: 419}
  - name: request-termination
    service: svc
    enabled: false
    config: {status_code: 420}
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
	limit := func(route string) int {
		var c RequestTerminationConfig
		if err := routes[route].Plugins[PluginRequestTermination].DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		return c.StatusCode
	}
	if !keyConfig("open").Bypass || keyConfig("closed").Bypass {
		t.Error("route-level plugin must override the global one, only on its route")
	}
	if limit("closed") != 418 || limit("top") != 419 {
		t.Errorf("status: closed %v (service level), top %v (route level); a disabled instance must override nothing", limit("closed"), limit("top"))
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
		"plugin on unknown service": {`
services:
  - name: s
    url: http://h
    routes: [{name: r, paths: [/x]}]
plugins:
  - {name: request-termination, service: nope}`, `unknown service "nope"`},
		// Kong's DB-less loader reads a top-level route's service as a bare
		// name, decK's schema only as {name: ...}.
		"top-level route naming a service": {`
services:
  - {name: s, url: http://h}
routes:
  - {name: r, service: {name: s}, paths: [/x]}`, `nest it under service "s"`},
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
  - {name: request-termination, route: other}`, `unknown route "other"`},
		"no routes": {`services: []`, "no routes"},
		"route without a service": {`
routes: [{name: r, paths: [/x]}]`, "names no service"},
		"lower-case method": {`
services:
  - name: s
    url: http://h
    routes: [{name: r, paths: [/x], methods: [get]}]`, "upper case"},
		"timeout zero": {`
services:
  - name: s
    url: http://h
    read_timeout: 0
    routes: [{name: r, paths: [/x]}]`, "read_timeout 0"},
		"retries out of range": {`
services:
  - name: s
    url: http://h
    retries: 40000
    routes: [{name: r, paths: [/x]}]`, "retries 40000"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// Every declarative file of the repository passes decK's reading and schema
// validation and resolves for the local gateway.
func TestEveryKongFileOfTheRepoPassesDecK(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoKongDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %v, want kong.yml and kong-load-balanced.yml at least", files)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := readFile(path)
			if err != nil {
				t.Fatalf("decK: %v", err)
			}
			if f.FormatVersion != "3.0" || len(f.Services) == 0 || len(f.Plugins) == 0 {
				t.Errorf("decK read %+v", f)
			}
			if _, err := Load(path); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// What decK's schema rejects is rejected before any resolution, with decK's
// message naming the field.
func TestDecKValidation(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"misspelt field": {`
services:
  - name: s
    url: http://h
    retriez: 4
    routes: [{name: r, paths: [/x]}]`, "Additional property retriez is not allowed"},
		"wrong type": {`
services:
  - name: s
    url: http://h
    retries: two
    routes: [{name: r, paths: [/x]}]`, "services.0.retries: Invalid type"},
		// The spelling Kong's DB-less loader takes; decK's schema refuses it.
		"route's service as a bare name": {`
services:
  - {name: s, url: http://h}
routes:
  - {name: r, service: s, paths: [/x]}`, "routes.0.service: Invalid type"},
		// Kong's own schema takes fractional seconds here; decK's types
		// take whole seconds only, so such a file is refused, never
		// rounded.
		"fractional health check interval": {`
services:
  - {name: s, host: u, routes: [{name: r, paths: [/x]}]}
upstreams:
  - name: u
    targets: [{target: "a:1"}]
    healthchecks: {active: {healthy: {interval: 0.5}}}`, "healthchecks.active.healthy.interval: Invalid type"},
		"decK-only plugin config reference": {`
services:
  - {name: s, url: http://h, routes: [{name: r, paths: [/x]}]}
plugins:
  - {name: request-termination, _config: shared}
_plugin_configs:
  shared: {status_code: 418}`, "_config is a decK feature"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// The values the gateway uses are the ones decK read: a service's url is
// split into host, port and path, and the separate fields work as well.
func TestServiceAddressAsDecKReadsIt(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - name: by-url
    url: http://backend:9000/base
    routes: [{name: by-url, paths: [/u]}]
  - name: by-fields
    protocol: http
    host: other
    port: 8080
    path: /p
    routes: [{name: by-fields, paths: [/f]}]
  - name: default-port
    url: http://plain
    routes: [{name: default-port, paths: [/d], hosts: [example.com]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ResolvedService{
		"by-url":       {Host: "backend", Port: 9000, Path: "/base"},
		"by-fields":    {Host: "other", Port: 8080, Path: "/p"},
		"default-port": {Host: "plain", Port: 80},
	}
	for _, r := range cfg.Routes {
		w, s := want[r.Name], r.Service
		if s.Host != w.Host || s.Port != w.Port || s.Path != w.Path {
			t.Errorf("route %s: service %s:%d%s, want %s:%d%s", r.Name, s.Host, s.Port, s.Path, w.Host, w.Port, w.Path)
		}
	}
	if len(cfg.Routes) != len(want) {
		t.Errorf("routes %v", cfg.Routes)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "hosts/headers") {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}
