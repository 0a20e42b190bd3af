package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The subset of Kong's 3.x declarative format these configs use. Decoding
// with KnownFields makes a misspelt field (say strip_paths) fail the test
// instead of being silently ignored by the test and rejected by Kong.
type kongFile struct {
	FormatVersion string         `yaml:"_format_version"`
	Services      []kongService  `yaml:"services"`
	Upstreams     []kongUpstream `yaml:"upstreams"`
	Plugins       []kongPlugin   `yaml:"plugins"`
}

type kongService struct {
	Name   string      `yaml:"name"`
	URL    string      `yaml:"url"`
	Routes []kongRoute `yaml:"routes"`
}

type kongRoute struct {
	Name      string       `yaml:"name"`
	Paths     []string     `yaml:"paths"`
	StripPath *bool        `yaml:"strip_path"`
	Plugins   []kongPlugin `yaml:"plugins"`
}

type kongUpstream struct {
	Name         string         `yaml:"name"`
	Algorithm    string         `yaml:"algorithm"`
	Healthchecks map[string]any `yaml:"healthchecks"`
	Targets      []struct {
		Target string `yaml:"target"`
		Weight int    `yaml:"weight"`
	} `yaml:"targets"`
}

type kongPlugin struct {
	Name   string         `yaml:"name"`
	Config map[string]any `yaml:"config"`
}

func loadKongFile(t *testing.T, name string) kongFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	decoder := yaml.NewDecoder(bytes.NewReader(raw))
	decoder.KnownFields(true)
	var file kongFile
	if err := decoder.Decode(&file); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return file
}

// route is a flattened route with its service, in the shape a gateway needs.
type route struct {
	name, service string
	serviceURL    *url.URL
	paths         []string
	stripPath     bool
	plugins       []kongPlugin
}

func routesOf(t *testing.T, file kongFile) []route {
	t.Helper()
	var routes []route
	for _, svc := range file.Services {
		u, err := url.Parse(svc.URL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			t.Fatalf("service %s: url %q is not an http URL", svc.Name, svc.URL)
		}
		for _, r := range svc.Routes {
			if r.StripPath == nil {
				t.Errorf("route %s: strip_path must be explicit", r.Name)
				continue
			}
			routes = append(routes, route{name: r.Name, service: svc.Name, serviceURL: u, paths: r.Paths, stripPath: *r.StripPath, plugins: r.Plugins})
		}
	}
	return routes
}

// proxy mimics Kong 3.x for plain prefix paths: the longest matching path
// wins; strip_path removes it; the rest is appended to the service's path
// (path_handling v0, Kong's default: plain concatenation, one slash dropped
// when both sides have one). It returns the route and the upstream host and path.
func proxy(routes []route, requestPath string) (routeName, host, upstreamPath string, ok bool) {
	best := -1
	var matched route
	for _, r := range routes {
		for _, p := range r.paths {
			if strings.HasPrefix(requestPath, p) && len(p) > best {
				best, matched = len(p), r
			}
		}
	}
	if best < 0 {
		return "", "", "", false
	}
	rest := requestPath
	if matched.stripPath {
		rest = requestPath[best:]
	}
	base := matched.serviceURL.Path
	if base == "" {
		base = "/"
	}
	switch {
	case rest == "":
		upstreamPath = base
	case strings.HasSuffix(base, "/") && strings.HasPrefix(rest, "/"):
		upstreamPath = base + rest[1:]
	default:
		upstreamPath = base + rest
	}
	return matched.name, matched.serviceURL.Host, upstreamPath, true
}

var kongFiles = []struct {
	name string
	// hosts the services must point at: plain hosts or upstream names
	authHost, blogHost string
	// the verification URLs the global plugin must list
	verificationURLs []string
}{
	{name: "kong.yml", authHost: "auth:8000", blogHost: "blog:8000",
		verificationURLs: []string{"http://auth:8000/verify/apikey"}},
	{name: "kong-load-balanced.yml", authHost: "auth_upstream", blogHost: "blog_upstream",
		verificationURLs: []string{"http://auth1:8000/verify/apikey", "http://auth2:8000/verify/apikey"}},
}

func TestKongConfigRouting(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			file := loadKongFile(t, kf.name)
			if file.FormatVersion != "3.0" {
				t.Errorf(`_format_version = %q, want "3.0"`, file.FormatVersion)
			}
			routes := routesOf(t, file)

			names := map[string]bool{}
			for _, r := range routes {
				if names[r.name] {
					t.Errorf("route name %s is used twice", r.name)
				}
				names[r.name] = true
				if !r.stripPath {
					t.Errorf("route %s: strip_path is false; every route strips its prefix", r.name)
				}
			}
			for _, want := range []string{"auth", "blog", "auth-signin", "auth-signup"} {
				if !names[want] {
					t.Errorf("route %s is missing", want)
				}
			}

			cases := []struct {
				request, wantRoute, wantHost, wantPath string
			}{
				{"/auth/signin/basic", "auth-signin", kf.authHost, "/signin/basic"},
				{"/auth/signup/basic", "auth-signup", kf.authHost, "/signup/basic"},
				{"/auth/signup/basic/", "auth-signup", kf.authHost, "/signup/basic/"},
				{"/auth/profile/mine", "auth", kf.authHost, "/profile/mine"},
				{"/auth/token/refresh", "auth", kf.authHost, "/token/refresh"},
				{"/auth/health/ready", "auth", kf.authHost, "/health/ready"},
				{"/auth/signin", "auth", kf.authHost, "/signin"},
				{"/blog/list/latest", "blog", kf.blogHost, "/list/latest"},
				{"/blog/author/", "blog", kf.blogHost, "/author/"},
				{"/blog/health/live", "blog", kf.blogHost, "/health/live"},
				{"/blog", "blog", kf.blogHost, "/"},
			}
			for _, c := range cases {
				gotRoute, gotHost, gotPath, ok := proxy(routes, c.request)
				if !ok || gotRoute != c.wantRoute || gotHost != c.wantHost || gotPath != c.wantPath {
					t.Errorf("%s -> route %q %s%s (matched %v), want route %q %s%s", c.request, gotRoute, gotHost, gotPath, ok, c.wantRoute, c.wantHost, c.wantPath)
				}
			}
			if _, _, _, ok := proxy(routes, "/metrics"); ok {
				t.Error("/metrics matches a route; only /auth and /blog are exposed")
			}
		})
	}
}

// The dedicated sign-in/sign-up routes exist only to carry rate limiting:
// whatever path a client sends through them must reach auth exactly where
// the plain /auth route would have sent it.
func TestKongConfigDedicatedRoutesAreTransparent(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			routes := routesOf(t, loadKongFile(t, kf.name))
			var plainAuth []route
			for _, r := range routes {
				if r.name == "auth" {
					plainAuth = append(plainAuth, r)
				}
			}
			for _, request := range []string{"/auth/signin/basic", "/auth/signin/basic/", "/auth/signin/basicx", "/auth/signup/basic", "/auth/signup/basic?x=1"} {
				requestPath, _, _ := strings.Cut(request, "?")
				_, host, viaDedicated, _ := proxy(routes, requestPath)
				_, plainHost, viaPlain, _ := proxy(plainAuth, requestPath)
				if host != plainHost || viaDedicated != viaPlain {
					t.Errorf("%s -> %s%s through its dedicated route, but %s%s through /auth", request, host, viaDedicated, plainHost, viaPlain)
				}
			}
		})
	}
}

func TestKongConfigUpstreams(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			file := loadKongFile(t, kf.name)
			upstreams := map[string]kongUpstream{}
			for _, u := range file.Upstreams {
				upstreams[u.Name] = u
			}
			// A service host without a port is an upstream reference in Kong
			// (it would otherwise be a DNS name on port 80): it must exist,
			// and every upstream must be used.
			used := map[string]bool{}
			for _, svc := range file.Services {
				u, _ := url.Parse(svc.URL)
				if u.Port() != "" {
					if len(file.Upstreams) > 0 {
						t.Errorf("service %s bypasses the upstreams with %s", svc.Name, svc.URL)
					}
					continue
				}
				if _, ok := upstreams[u.Hostname()]; !ok {
					t.Errorf("service %s refers to upstream %q, which is not defined", svc.Name, u.Hostname())
				}
				used[u.Hostname()] = true
			}
			for name := range upstreams {
				if !used[name] {
					t.Errorf("upstream %s is not used by any service", name)
				}
			}
			if kf.name != "kong-load-balanced.yml" {
				if len(file.Upstreams) != 0 {
					t.Errorf("%s defines upstreams; it fronts single replicas", kf.name)
				}
				return
			}

			wantTargets := map[string][]string{
				"auth_upstream": {"auth1:8000", "auth2:8000"},
				"blog_upstream": {"blog1:8000", "blog2:8000"},
			}
			if len(upstreams) != len(wantTargets) {
				t.Errorf("upstreams = %v, want exactly auth_upstream and blog_upstream", slices.Sorted(mapKeys(upstreams)))
			}
			for name, want := range wantTargets {
				u, ok := upstreams[name]
				if !ok {
					t.Errorf("upstream %s missing", name)
					continue
				}
				var got []string
				for _, target := range u.Targets {
					got = append(got, target.Target)
					if target.Weight != 100 {
						t.Errorf("%s target %s weight %d, want 100", name, target.Target, target.Weight)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s targets = %v, want %v", name, got, want)
				}
				checkHealthchecks(t, name, u.Healthchecks)
			}
		})
	}
}

func checkHealthchecks(t *testing.T, upstream string, hc map[string]any) {
	t.Helper()
	get := func(path string) any {
		var node any = hc
		for _, key := range strings.Split(path, ".") {
			m, ok := node.(map[string]any)
			if !ok {
				return nil
			}
			node = m[key]
		}
		return node
	}
	positive := func(path string) {
		if n, ok := get(path).(int); !ok || n <= 0 {
			t.Errorf("%s healthchecks.%s = %v, want a positive number", upstream, path, get(path))
		}
	}
	if get("active.type") != "http" || get("active.http_path") != "/health/ready" {
		t.Errorf("%s active check = %v %v, want http on /health/ready", upstream, get("active.type"), get("active.http_path"))
	}
	for _, path := range []string{"active.timeout", "active.healthy.interval", "active.healthy.successes",
		"active.unhealthy.interval", "active.unhealthy.http_failures", "active.unhealthy.tcp_failures", "active.unhealthy.timeouts",
		"passive.unhealthy.tcp_failures", "passive.unhealthy.timeouts"} {
		positive(path)
	}
	statuses, _ := get("active.unhealthy.http_statuses").([]any)
	if !slices.Contains(statuses, any(503)) {
		t.Errorf("%s: a 503 from /health/ready (not ready, shutting down) must count as unhealthy; statuses %v", upstream, statuses)
	}
	if get("passive.type") != "http" {
		t.Errorf("%s passive check type = %v, want http", upstream, get("passive.type"))
	}
}

func TestKongConfigPlugins(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			file := loadKongFile(t, kf.name)

			var apiKeyPlugins []kongPlugin
			for _, p := range file.Plugins {
				if p.Name == "apikey-auth-plugin" {
					apiKeyPlugins = append(apiKeyPlugins, p)
				}
			}
			if len(apiKeyPlugins) != 1 {
				t.Fatalf("global apikey-auth-plugin entries = %d, want 1", len(apiKeyPlugins))
			}
			cfg := decodePluginConfig(t, apiKeyPlugins[0].Config)
			if !slices.Equal(cfg.VerificationURLs, kf.verificationURLs) {
				t.Errorf("verification_urls = %v, want %v", cfg.VerificationURLs, kf.verificationURLs)
			}
			if cfg.TimeoutMs != DefaultTimeoutMs || cfg.CacheTTLSeconds != 5 {
				t.Errorf("timeout_ms %d cache_ttl_seconds %d, want 2000 and 5", cfg.TimeoutMs, cfg.CacheTTLSeconds)
			}

			wantLimited := map[string]bool{"auth-signin": true, "auth-signup": true}
			for _, r := range routesOf(t, file) {
				var limits []kongPlugin
				for _, p := range r.plugins {
					if p.Name == "apikey-auth-plugin" {
						t.Errorf("route %s carries its own apikey-auth-plugin; the global one already applies", r.name)
					}
					if p.Name == "rate-limiting" {
						limits = append(limits, p)
					}
				}
				if !wantLimited[r.name] {
					if len(limits) != 0 {
						t.Errorf("route %s is rate limited; only sign-in and sign-up are", r.name)
					}
					continue
				}
				if len(limits) != 1 {
					t.Errorf("route %s has %d rate-limiting plugins, want 1", r.name, len(limits))
					continue
				}
				want := map[string]any{"minute": 120, "limit_by": "ip", "policy": "local", "error_code": 429, "error_message": "too many requests"}
				if fmt.Sprint(limits[0].Config) != fmt.Sprint(want) {
					t.Errorf("route %s rate-limiting config = %v, want %v", r.name, limits[0].Config, want)
				}
			}
		})
	}
}

// decodePluginConfig decodes YAML plugin config the way go-pdk decodes what
// Kong sends (JSON into Config), refusing keys the plugin does not know: a key
// Kong's schema lacks would make Kong reject the whole file.
func decodePluginConfig(t *testing.T, config map[string]any) *Config {
	t.Helper()
	raw, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	cfg := New().(*Config)
	if err := decoder.Decode(cfg); err != nil {
		t.Fatalf("apikey-auth-plugin config %s does not match the plugin's schema: %v", raw, err)
	}
	return cfg
}

// Both files must expose the same API: same routes, paths and plugins; only
// where the services point differs.
func TestKongConfigFilesAgree(t *testing.T) {
	describe := func(file kongFile) []string {
		var lines []string
		for _, svc := range file.Services {
			u, _ := url.Parse(svc.URL)
			for _, r := range svc.Routes {
				lines = append(lines, fmt.Sprintf("%s %s path=%s routes=%s %v strip=%v plugins=%v", svc.Name, u.Scheme, u.Path, r.Name, r.Paths, *r.StripPath, r.Plugins))
			}
		}
		for _, p := range file.Plugins {
			lines = append(lines, fmt.Sprintf("global %s %v", p.Name, mapKeysSorted(p.Config)))
		}
		return lines
	}
	plain := describe(loadKongFile(t, "kong.yml"))
	balanced := describe(loadKongFile(t, "kong-load-balanced.yml"))
	if !slices.Equal(plain, balanced) {
		t.Errorf("kong.yml and kong-load-balanced.yml differ beyond service hosts:\n%s\nvs\n%s", strings.Join(plain, "\n"), strings.Join(balanced, "\n"))
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mapKeysSorted(m map[string]any) []string { return slices.Sorted(mapKeys(m)) }
