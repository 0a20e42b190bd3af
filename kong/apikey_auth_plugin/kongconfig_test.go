package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"blogplatform/kong/apikey_auth_plugin/kongpath"
	"blogplatform/kong/apikey_auth_plugin/ratelimit"
	"blogplatform/kong/apikey_auth_plugin/verify"
)

// Offline checks of the two Kong declarative files. There is no Kong here,
// and decK's file validation (go-database-reconciler) pulls in Kubernetes,
// Konnect and OpenAPI modules while checking only field types derived from
// go-kong's structs; so the fields these files use are decoded strictly
// (KnownFields: a misspelt field fails) and checked against Kong 3.9.1's
// entity schemas (kong/db/schema/entities/{services,routes,upstreams,
// targets}.lua and the request-termination plugin schema) by hand, below.

type kongFile struct {
	FormatVersion string         `yaml:"_format_version"`
	Services      []kongService  `yaml:"services"`
	Routes        []kongRoute    `yaml:"routes"` // top level: may have no service
	Upstreams     []kongUpstream `yaml:"upstreams"`
	Plugins       []kongPlugin   `yaml:"plugins"`
}

type kongService struct {
	Name           string      `yaml:"name"`
	URL            string      `yaml:"url"`
	ConnectTimeout *int        `yaml:"connect_timeout"`
	WriteTimeout   *int        `yaml:"write_timeout"`
	ReadTimeout    *int        `yaml:"read_timeout"`
	Retries        *int        `yaml:"retries"`
	Routes         []kongRoute `yaml:"routes"`
}

type kongRoute struct {
	Name      string       `yaml:"name"`
	Paths     []string     `yaml:"paths"`
	Methods   []string     `yaml:"methods"`
	StripPath *bool        `yaml:"strip_path"`
	Plugins   []kongPlugin `yaml:"plugins"`
}

type kongUpstream struct {
	Name         string           `yaml:"name"`
	Algorithm    string           `yaml:"algorithm"`
	Healthchecks kongHealthchecks `yaml:"healthchecks"`
	Targets      []struct {
		Target string `yaml:"target"`
		Weight int    `yaml:"weight"`
	} `yaml:"targets"`
}

// kongHealthchecks has every field of Kong 3.9's healthchecks record that
// these files may use; numbers absent from the file stay at Kong's default
// (0: that check is off).
type kongHealthchecks struct {
	Active struct {
		Type        string  `yaml:"type"`
		HTTPPath    string  `yaml:"http_path"`
		Timeout     float64 `yaml:"timeout"`
		Concurrency int     `yaml:"concurrency"`
		Healthy     struct {
			Interval     float64 `yaml:"interval"`
			Successes    int     `yaml:"successes"`
			HTTPStatuses []int   `yaml:"http_statuses"`
		} `yaml:"healthy"`
		Unhealthy struct {
			Interval     float64 `yaml:"interval"`
			HTTPFailures int     `yaml:"http_failures"`
			TCPFailures  int     `yaml:"tcp_failures"`
			Timeouts     int     `yaml:"timeouts"`
			HTTPStatuses []int   `yaml:"http_statuses"`
		} `yaml:"unhealthy"`
	} `yaml:"active"`
	Passive struct {
		Type    string `yaml:"type"`
		Healthy struct {
			Successes    int   `yaml:"successes"`
			HTTPStatuses []int `yaml:"http_statuses"`
		} `yaml:"healthy"`
		Unhealthy struct {
			HTTPFailures int   `yaml:"http_failures"`
			TCPFailures  int   `yaml:"tcp_failures"`
			Timeouts     int   `yaml:"timeouts"`
			HTTPStatuses []int `yaml:"http_statuses"`
		} `yaml:"unhealthy"`
	} `yaml:"passive"`
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

// Kong 3.9.1 schema bounds used below.
const (
	maxTimeoutMS = 1<<31 - 2 // services: connect/write/read_timeout 1..2^31-2
	maxRetries   = 32767     // services: retries 0..32767
)

var (
	httpMethod = regexp.MustCompile(`^[A-Z]+$`) // typedefs.http_method
	hostname   = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*$`)
)

// TestKongFilesMatchKongSchema checks every field the files set against the
// constraints of Kong 3.9.1's schemas, so Kong does not refuse the file at
// start.
func TestKongFilesMatchKongSchema(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			file := loadKongFile(t, kf.name)
			if file.FormatVersion != "3.0" {
				t.Errorf(`_format_version = %q, want "3.0"`, file.FormatVersion)
			}
			names := map[string]bool{}
			unique := func(kind, name string) {
				if name == "" {
					t.Errorf("a %s has no name", kind)
				}
				if names[kind+"/"+name] {
					t.Errorf("%s name %q is used twice", kind, name)
				}
				names[kind+"/"+name] = true
			}
			checkRoute := func(r kongRoute, hasService bool) {
				unique("route", r.Name)
				if len(r.Paths) == 0 {
					t.Errorf("route %s: no paths", r.Name)
				}
				for _, p := range r.Paths {
					if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.HasPrefix(p, "~") {
						t.Errorf("route %s: path %q (a plain prefix starting with /, no empty segment)", r.Name, p)
					}
				}
				for _, m := range r.Methods {
					if !httpMethod.MatchString(m) {
						t.Errorf("route %s: method %q must be upper-case letters", r.Name, m)
					}
				}
				if r.StripPath == nil {
					t.Errorf("route %s: strip_path must be explicit", r.Name)
				}
				terminated := false
				for _, p := range r.Plugins {
					if p.Name == "request-termination" {
						terminated = true
						checkRequestTermination(t, r.Name, p.Config)
					}
				}
				if !hasService && !terminated {
					t.Errorf("route %s has no service, so request-termination must answer it", r.Name)
				}
			}
			for _, svc := range file.Services {
				unique("service", svc.Name)
				u, err := url.Parse(svc.URL)
				if err != nil || u.Scheme != "http" || u.Host == "" {
					t.Errorf("service %s: url %q is not an http URL", svc.Name, svc.URL)
				}
				for field, v := range map[string]*int{"connect_timeout": svc.ConnectTimeout, "write_timeout": svc.WriteTimeout, "read_timeout": svc.ReadTimeout} {
					if v == nil {
						t.Errorf("service %s: %s must be set (Kong's default is 60 s)", svc.Name, field)
					} else if *v < 1 || *v > maxTimeoutMS {
						t.Errorf("service %s: %s %d outside 1..%d", svc.Name, field, *v, maxTimeoutMS)
					}
				}
				if svc.Retries == nil || *svc.Retries < 0 || *svc.Retries > maxRetries {
					t.Errorf("service %s: retries %v, want set, 0..%d", svc.Name, svc.Retries, maxRetries)
				}
				for _, r := range svc.Routes {
					checkRoute(r, true)
				}
			}
			for _, r := range file.Routes {
				checkRoute(r, false)
			}
			for _, u := range file.Upstreams {
				unique("upstream", u.Name)
				if !hostname.MatchString(u.Name) {
					t.Errorf("upstream %q: must be a host name without port", u.Name)
				}
				if !slices.Contains([]string{"round-robin", "consistent-hashing", "least-connections", "latency"}, u.Algorithm) {
					t.Errorf("upstream %s: algorithm %q", u.Name, u.Algorithm)
				}
				for _, target := range u.Targets {
					if target.Weight < 0 || target.Weight > 65535 {
						t.Errorf("upstream %s target %s: weight %d outside 0..65535", u.Name, target.Target, target.Weight)
					}
				}
				checkHealthcheckSchema(t, u.Name, u.Healthchecks)
			}
			for _, p := range file.Plugins {
				if p.Name != "apikey-auth-plugin" {
					t.Errorf("global plugin %s: only apikey-auth-plugin is expected", p.Name)
				}
			}
		})
	}
}

func checkHealthcheckSchema(t *testing.T, upstream string, hc kongHealthchecks) {
	t.Helper()
	checkTypes := []string{"tcp", "http", "https", "grpc", "grpcs"}
	if !slices.Contains(checkTypes, hc.Active.Type) || !slices.Contains(checkTypes, hc.Passive.Type) {
		t.Errorf("%s: check types %q/%q", upstream, hc.Active.Type, hc.Passive.Type)
	}
	seconds := map[string]float64{"active.timeout": hc.Active.Timeout,
		"active.healthy.interval": hc.Active.Healthy.Interval, "active.unhealthy.interval": hc.Active.Unhealthy.Interval}
	for name, v := range seconds {
		if v < 0 || v > 65535 {
			t.Errorf("%s: %s %v outside 0..65535", upstream, name, v)
		}
	}
	counters := map[string]int{
		"active.healthy.successes": hc.Active.Healthy.Successes, "active.unhealthy.http_failures": hc.Active.Unhealthy.HTTPFailures,
		"active.unhealthy.tcp_failures": hc.Active.Unhealthy.TCPFailures, "active.unhealthy.timeouts": hc.Active.Unhealthy.Timeouts,
		"passive.healthy.successes": hc.Passive.Healthy.Successes, "passive.unhealthy.http_failures": hc.Passive.Unhealthy.HTTPFailures,
		"passive.unhealthy.tcp_failures": hc.Passive.Unhealthy.TCPFailures, "passive.unhealthy.timeouts": hc.Passive.Unhealthy.Timeouts,
	}
	for name, v := range counters {
		if v < 0 || v > 255 {
			t.Errorf("%s: %s %d outside 0..255", upstream, name, v)
		}
	}
	if hc.Active.Concurrency < 1 {
		t.Errorf("%s: active.concurrency %d, want at least 1", upstream, hc.Active.Concurrency)
	}
	if !strings.HasPrefix(hc.Active.HTTPPath, "/") {
		t.Errorf("%s: active.http_path %q", upstream, hc.Active.HTTPPath)
	}
	for _, list := range [][]int{hc.Active.Healthy.HTTPStatuses, hc.Active.Unhealthy.HTTPStatuses, hc.Passive.Healthy.HTTPStatuses, hc.Passive.Unhealthy.HTTPStatuses} {
		for _, s := range list {
			if s < 100 || s > 999 {
				t.Errorf("%s: http status %d outside 100..999", upstream, s)
			}
		}
	}
}

// checkRequestTermination applies the plugin schema's rules, and the
// repo's: the body is the platform envelope for a 404.
func checkRequestTermination(t *testing.T, route string, config map[string]any) {
	t.Helper()
	var c struct {
		StatusCode  int    `json:"status_code"`
		Message     string `json:"message"`
		ContentType string `json:"content_type"`
		Body        string `json:"body"`
	}
	raw, _ := json.Marshal(config)
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&c); err != nil {
		t.Fatalf("route %s: request-termination config: %v", route, err)
	}
	if c.StatusCode < 100 || c.StatusCode > 599 {
		t.Errorf("route %s: status_code %d outside 100..599", route, c.StatusCode)
	}
	if c.Message != "" && (c.Body != "" || c.ContentType != "") {
		t.Errorf("route %s: message cannot be used with content_type or body", route)
	}
	if c.ContentType != "" && c.Body == "" {
		t.Errorf("route %s: content_type requires a body", route)
	}
	var envelope struct {
		Code    string `json:"code"`
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(c.Body), &envelope); err != nil || envelope.Code != "10001" || envelope.Status != c.StatusCode || envelope.Message == "" ||
		!strings.HasPrefix(c.ContentType, "application/json") {
		t.Errorf("route %s: answer %d %q (%s), want the platform envelope with the same status as JSON", route, c.StatusCode, c.Body, c.ContentType)
	}
}

// route is a flattened route with its service, in the shape a gateway needs.
type route struct {
	name, service string
	serviceURL    *url.URL // nil: no service
	paths         []string
	methods       []string
	stripPath     bool
	plugins       []kongPlugin
	svc           kongService
}

func routesOf(t *testing.T, file kongFile) []route {
	t.Helper()
	var routes []route
	for _, svc := range file.Services {
		u, err := url.Parse(svc.URL)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range svc.Routes {
			routes = append(routes, route{name: r.Name, service: svc.Name, serviceURL: u, paths: r.Paths, methods: r.Methods,
				stripPath: r.StripPath != nil && *r.StripPath, plugins: r.Plugins, svc: svc})
		}
	}
	for _, r := range file.Routes {
		routes = append(routes, route{name: r.Name, paths: r.Paths, methods: r.Methods, stripPath: r.StripPath != nil && *r.StripPath, plugins: r.Plugins})
	}
	return routes
}

// proxy mimics Kong 3.9's router (traditional_compatible) for plain prefix
// paths and methods (kong/router/transform.lua, get_priority): a route's
// priority is first how many matching fields it sets (paths, methods), then
// the length of its path; strip_path removes the matched path; the rest is
// appended to the service's path (path_handling v0, Kong's default: plain
// concatenation, one slash dropped when both sides have one). It returns the
// route and the upstream host and path. Like Kong, it routes on the
// normalised path and drops a "./" or "../" left after a stripped prefix.
func proxy(routes []route, method, requestPath string) (matched route, host, upstreamPath string, ok bool) {
	requestPath = kongpath.Normalize(requestPath)
	bestWeight, bestLen := -1, -1
	for _, r := range routes {
		weight := 1
		if len(r.methods) > 0 {
			if !slices.Contains(r.methods, method) {
				continue
			}
			weight++
		}
		for _, p := range r.paths {
			if strings.HasPrefix(requestPath, p) && (weight > bestWeight || weight == bestWeight && len(p) > bestLen) {
				bestWeight, bestLen, matched = weight, len(p), r
			}
		}
	}
	if bestLen < 0 {
		return route{}, "", "", false
	}
	if matched.serviceURL == nil {
		return matched, "", "", true
	}
	rest := requestPath
	if matched.stripPath {
		rest = kongpath.SanitizePostfix(requestPath[bestLen:])
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
	return matched, matched.serviceURL.Host, upstreamPath, true
}

func TestKongConfigRouting(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			routes := routesOf(t, loadKongFile(t, kf.name))
			names := map[string]bool{}
			for _, r := range routes {
				names[r.name] = true
				// The documentation page keeps its path: blog_service
				// serves it at /docs.
				if r.serviceURL != nil && !r.stripPath && r.name != "docs" {
					t.Errorf("route %s: strip_path is false; every proxied route strips its prefix", r.name)
				}
			}
			for _, want := range []string{"auth-read", "auth-write", "blog-read", "blog-write", "docs", "not-found"} {
				if !names[want] {
					t.Errorf("route %s is missing", want)
				}
			}

			cases := []struct {
				method, request, wantRoute, wantHost, wantPath string
			}{
				{"POST", "/auth/signin/basic", "auth-write", kf.authHost, "/signin/basic"},
				{"POST", "/auth/signup/basic/", "auth-write", kf.authHost, "/signup/basic/"},
				{"GET", "/auth/signin/basic", "auth-read", kf.authHost, "/signin/basic"},
				{"GET", "/auth/profile/mine", "auth-read", kf.authHost, "/profile/mine"},
				{"HEAD", "/auth/health/ready", "auth-read", kf.authHost, "/health/ready"},
				{"OPTIONS", "/auth/profile/mine", "auth-read", kf.authHost, "/profile/mine"},
				{"PUT", "/auth/profile", "auth-write", kf.authHost, "/profile"},
				{"DELETE", "/auth/signout", "auth-write", kf.authHost, "/signout"},
				{"PATCH", "/auth/x", "auth-write", kf.authHost, "/x"},
				{"GET", "/blog/list/latest", "blog-read", kf.blogHost, "/list/latest"},
				{"GET", "/blog", "not-found", "", ""},
				{"GET", "/blog/", "blog-read", kf.blogHost, "/"},
				{"POST", "/%61uth/%73ignin/basic", "auth-write", kf.authHost, "/signin/basic"},
				{"POST", "/auth//signin/basic", "auth-write", kf.authHost, "/signin/basic"},
				{"POST", "/blog/../auth/signin/basic", "auth-write", kf.authHost, "/signin/basic"},
				{"POST", "/auth./signin/basic", "not-found", "", ""},
				{"POST", "/auth../signin/basic", "not-found", "", ""},
				{"POST", "/blog/writer", "blog-write", kf.blogHost, "/writer"},
				{"DELETE", "/blog/id/1", "blog-write", kf.blogHost, "/id/1"},
				{"GET", "/metrics", "not-found", "", ""},
				{"POST", "/", "not-found", "", ""},
				{"GET", "/nothing/here", "not-found", "", ""},
				{"GET", "/docs", "docs", kf.blogHost, "/docs"},
				{"GET", "/docs/", "docs", kf.blogHost, "/docs/"},
				{"HEAD", "/docs/swagger-ui-bundle.js", "docs", kf.blogHost, "/docs/swagger-ui-bundle.js"},
				{"GET", "/%64ocs/docs.js", "docs", kf.blogHost, "/docs/docs.js"},
				{"GET", "/docs/../blog/list/latest", "blog-read", kf.blogHost, "/list/latest"},
				{"POST", "/docs", "not-found", "", ""},
				{"GET", "/auth/openapi.yaml", "auth-read", kf.authHost, "/openapi.yaml"},
				{"GET", "/blog/openapi.yaml", "blog-read", kf.blogHost, "/openapi.yaml"},
			}
			for _, c := range cases {
				got, gotHost, gotPath, ok := proxy(routes, c.method, c.request)
				if !ok || got.name != c.wantRoute || gotHost != c.wantHost || gotPath != c.wantPath {
					t.Errorf("%s %s -> route %q %s%s (matched %v), want route %q %s%s", c.method, c.request, got.name, gotHost, gotPath, ok, c.wantRoute, c.wantHost, c.wantPath)
				}
			}
		})
	}
}

// However a client encodes a path, a request that Kong sends to sign-in or
// sign-up is counted by the plugin's rate limit: the plugin sees the path
// Kong routed on (kongpath.Normalize of the raw path), and the limit must
// cover it whenever the service's router (which decodes every escape) ends
// up at the limited endpoint.
func TestKongConfigRateLimitCannotBeDodged(t *testing.T) {
	variants := func(p string) []string { // p: /auth/signin/basic
		rest := strings.TrimPrefix(p, "/auth/")
		return []string{
			p, p + "/", "/%61uth/" + rest, "/auth/%73" + rest[1:], "/auth//" + rest, "//auth/" + rest,
			"/auth/./" + rest, "/auth/x/../" + rest, "/blog/../auth/" + rest, "/blog/%2e%2e/auth/" + rest,
			"/auth./" + rest, "/auth../" + rest, "/auth/.%2F" + rest, "/auth%2F" + rest,
			"/auth/" + strings.Replace(rest, "/", "%2F", 1), "/auth/" + strings.Replace(rest, "/", "%2f", 1) + "%zz",
			"/auth/%2e/" + rest, "/AUTH/" + rest, "/auth/" + strings.ToUpper(rest),
		}
	}
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			file := loadKongFile(t, kf.name)
			routes := routesOf(t, file)
			var global *Config
			for _, p := range file.Plugins {
				if p.Name == "apikey-auth-plugin" {
					global = decodePluginConfig(t, p.Config)
				}
			}
			if global == nil {
				t.Fatal("no global apikey-auth-plugin")
			}
			reached := 0
			for _, target := range []string{"/auth/signin/basic", "/auth/signup/basic"} {
				for _, v := range variants(target) {
					r, _, up, ok := proxy(routes, "POST", v)
					// The services' router decodes the whole path and ignores
					// trailing slashes.
					decoded := strings.TrimRight(kongpath.Unescape(up), "/")
					if !ok || r.serviceURL == nil || decoded != strings.TrimPrefix(target, "/auth") {
						continue // not sent to the limited endpoint
					}
					reached++
					cfg := global
					for _, p := range r.plugins {
						if p.Name == "apikey-auth-plugin" {
							cfg = decodePluginConfig(t, p.Config)
						}
					}
					l, err := cfg.settings().RateLimiter(ratelimit.Options{})
					if err != nil {
						t.Fatal(err)
					}
					if !l.Covers(kongpath.Normalize(v)) {
						t.Errorf("POST %s reaches %s through route %s unlimited", v, up, r.name)
					}
				}
			}
			if reached < 16 {
				t.Errorf("only %d variants reach the limited endpoints; the router mimic lost them", reached)
			}
		})
	}
}

// Per-attempt timeouts and retries. Kong has one read_timeout per service,
// hence a read and a write service per upstream: reads must be retried on
// the other replica well within a second, writes must outlast the slowest
// legitimate write (sign-in's bcrypt under load took up to ~4 s).
func TestKongConfigTimeoutsAndRetries(t *testing.T) {
	for _, kf := range kongFiles {
		t.Run(kf.name, func(t *testing.T) {
			file := loadKongFile(t, kf.name)
			byURL := map[string][]string{}
			for _, svc := range file.Services {
				if svc.ConnectTimeout == nil || svc.ReadTimeout == nil || svc.WriteTimeout == nil || svc.Retries == nil {
					t.Fatalf("service %s: timeouts and retries must be set", svc.Name)
				}
				byURL[svc.URL] = append(byURL[svc.URL], svc.Name)
				if *svc.ConnectTimeout > 1000 {
					t.Errorf("service %s: connect_timeout %d ms; a connection on the compose network takes far less, and a failed one is retried", svc.Name, *svc.ConnectTimeout)
				}
				if *svc.Retries < 1 {
					t.Errorf("service %s: retries %d, want at least one retry on the other replica", svc.Name, *svc.Retries)
				}
				reads := 0
				for _, r := range svc.Routes {
					if slices.Equal(r.Methods, []string{"GET", "HEAD", "OPTIONS"}) {
						reads++
					} else if len(r.Methods) != 0 {
						t.Errorf("route %s: methods %v, want GET, HEAD, OPTIONS (read) or none (write)", r.Name, r.Methods)
					}
				}
				switch {
				case strings.HasSuffix(svc.Name, "-read") && reads == len(svc.Routes) && reads > 0:
					// A frozen replica costs a read one read_timeout, then the
					// retry: the whole must stay under a second.
					if *svc.ReadTimeout < 500 || *svc.ReadTimeout > 900 {
						t.Errorf("service %s: read_timeout %d ms, want 500..900", svc.Name, *svc.ReadTimeout)
					}
				case strings.HasSuffix(svc.Name, "-write") && reads == 0:
					if *svc.ReadTimeout < 10000 || *svc.WriteTimeout < 5000 {
						t.Errorf("service %s: read_timeout %d / write_timeout %d ms, want at least 10000 / 5000", svc.Name, *svc.ReadTimeout, *svc.WriteTimeout)
					}
				default:
					t.Errorf("service %s: want NAME-read with only GET/HEAD/OPTIONS routes or NAME-write with method-less routes", svc.Name)
				}
			}
			for u, services := range byURL {
				slices.Sort(services)
				base := strings.TrimSuffix(services[0], "-read")
				if !slices.Equal(services, []string{base + "-read", base + "-write"}) {
					t.Errorf("%s is served by %v, want one read and one write service", u, services)
				}
			}
			if len(byURL) != 2 {
				t.Errorf("services point at %d hosts, want auth and blog", len(byURL))
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

func checkHealthchecks(t *testing.T, upstream string, hc kongHealthchecks) {
	t.Helper()
	a, p := hc.Active, hc.Passive
	if a.Type != "http" || a.HTTPPath != "/health/ready" {
		t.Errorf("%s active check = %v %v, want http on /health/ready", upstream, a.Type, a.HTTPPath)
	}
	if a.Timeout <= 0 || a.Healthy.Interval <= 0 || a.Healthy.Successes <= 0 || a.Unhealthy.Interval <= 0 ||
		a.Unhealthy.HTTPFailures <= 0 || a.Unhealthy.TCPFailures <= 0 || a.Unhealthy.Timeouts <= 0 {
		t.Errorf("%s: every active threshold and interval must be positive (0 turns that check off): %+v", upstream, a)
	}
	// Kong probes a healthy target every healthy.interval; a draining one
	// leaves after unhealthy.http_failures probes. Equal intervals keep the
	// drain time (which the compose files' SHUTDOWN_DRAIN_DELAY must exceed)
	// one number whichever interval one reads.
	if a.Healthy.Interval != a.Unhealthy.Interval {
		t.Errorf("%s: healthy.interval %v != unhealthy.interval %v", upstream, a.Healthy.Interval, a.Unhealthy.Interval)
	}
	if drain := a.Unhealthy.Interval * float64(a.Unhealthy.HTTPFailures); drain > 5 {
		t.Errorf("%s: a draining replica leaves the rotation after %v s; keep it under 5 s", upstream, drain)
	}
	if !slices.Contains(a.Unhealthy.HTTPStatuses, 503) {
		t.Errorf("%s: a 503 from /health/ready (not ready, shutting down) must count as unhealthy; statuses %v", upstream, a.Unhealthy.HTTPStatuses)
	}
	// Passive: a frozen or dead replica leaves after 2 timeouts or connection
	// failures; a 5xx the service chose never ejects it.
	if p.Type != "http" || p.Unhealthy.TCPFailures != 2 || p.Unhealthy.Timeouts != 2 || p.Unhealthy.HTTPFailures != 0 {
		t.Errorf("%s passive check %+v, want http with tcp_failures 2, timeouts 2, http_failures 0", upstream, p)
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
			// 500 ms, below the plugin's default: a frozen auth replica must
			// cost a key check little before the next URL is asked.
			if cfg.TimeoutMs != 500 || cfg.CacheTTLSeconds != 5 {
				t.Errorf("timeout_ms %d cache_ttl_seconds %d, want 500 and 5", cfg.TimeoutMs, cfg.CacheTTLSeconds)
			}
			// Rejected keys are remembered briefly: long enough to absorb a
			// flood of random keys, short enough that a new key works soon.
			if cfg.NegativeTTLSeconds < 1 || cfg.NegativeTTLSeconds > 10 {
				t.Errorf("negative_ttl_seconds %d, want 1..10", cfg.NegativeTTLSeconds)
			}
			// Sign-in and sign-up: 120 a minute per client address, each its
			// own budget, limited by the plugin (429 in the envelope).
			if len(cfg.RateLimits) != 1 || cfg.RateLimits[0].PerMinute != 120 ||
				!slices.Equal(cfg.RateLimits[0].Paths, []string{"/auth/signin/basic", "/auth/signup/basic"}) {
				t.Errorf("rate_limits = %+v, want sign-in and sign-up at 120 per minute", cfg.RateLimits)
			}
			if _, err := cfg.settings().RateLimiter(ratelimit.Options{}); err != nil {
				t.Errorf("rate_limits rejected by the plugin: %v", err)
			}

			// Without a key: GET/HEAD of exactly the health endpoints and the
			// documentation page's fixed files and documents. Each is proxied
			// (a public path the not-found route answers would be pointless),
			// and every other path below /docs still needs the key.
			wantPublic := []string{
				"/auth/health/live", "/auth/health/ready", "/blog/health/live", "/blog/health/ready",
				"/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui-standalone-preset.js", "/docs/swagger-ui.css",
				"/docs/docs.js", "/docs/docs.css", "/auth/openapi.yaml", "/blog/openapi.yaml",
			}
			if !slices.Equal(cfg.PublicPaths, wantPublic) {
				t.Errorf("public_paths = %v, want %v", cfg.PublicPaths, wantPublic)
			}
			routes := routesOf(t, file)
			for _, p := range cfg.PublicPaths {
				if r, _, _, ok := proxy(routes, "GET", p); !ok || r.serviceURL == nil {
					t.Errorf("public path %s is not proxied (route %q)", p, r.name)
				}
			}
			for _, p := range []string{"/docs/LICENSE", "/docs/swagger-ui-bundle.js.map", "/docs/x/../../blog/list/latest", "/docsx"} {
				if verify.IsPublicPath("GET", kongpath.Normalize(p), cfg.PublicPaths) {
					t.Errorf("GET %s passes without a key", p)
				}
			}

			for _, r := range routes {
				for _, p := range r.plugins {
					switch p.Name {
					case "apikey-auth-plugin":
						// Only the catch-all 404 may switch the key check off
						// (an unknown path is a 404 with or without a key);
						// any other route-level instance would replace the
						// global configuration for that route.
						var c struct {
							Bypass bool `json:"bypass"`
						}
						raw, _ := json.Marshal(p.Config)
						_ = json.Unmarshal(raw, &c)
						if r.name != "not-found" || !c.Bypass || len(p.Config) != 1 {
							t.Errorf("route %s carries its own apikey-auth-plugin %v; only not-found may, with bypass: true alone", r.name, p.Config)
						}
					case "request-termination":
						if r.serviceURL != nil {
							t.Errorf("route %s: request-termination on a proxied route", r.name)
						}
					default:
						// Bundled rate-limiting would answer 429 outside the
						// envelope; the plugin's rate_limits replace it.
						t.Errorf("route %s: plugin %s", r.name, p.Name)
					}
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

// Both files must expose the same API: same routes, methods, paths,
// timeouts and plugins; only where the services point differs.
func TestKongConfigFilesAgree(t *testing.T) {
	describe := func(file kongFile) []string {
		var lines []string
		for _, svc := range file.Services {
			u, _ := url.Parse(svc.URL)
			lines = append(lines, fmt.Sprintf("service %s %s path=%s timeouts=%d/%d/%d retries=%d", svc.Name, u.Scheme, u.Path,
				*svc.ConnectTimeout, *svc.WriteTimeout, *svc.ReadTimeout, *svc.Retries))
			for _, r := range svc.Routes {
				lines = append(lines, fmt.Sprintf("  route %s %v %v strip=%v plugins=%v", r.Name, r.Paths, r.Methods, *r.StripPath, r.Plugins))
			}
		}
		for _, r := range file.Routes {
			lines = append(lines, fmt.Sprintf("route %s %v %v strip=%v plugins=%v", r.Name, r.Paths, r.Methods, *r.StripPath, r.Plugins))
		}
		for _, p := range file.Plugins {
			c := map[string]any{}
			for k, v := range p.Config {
				if k != "verification_urls" {
					c[k] = v
				}
			}
			lines = append(lines, fmt.Sprintf("global %s %v", p.Name, c))
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
