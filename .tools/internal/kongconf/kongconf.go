// Package kongconf reads the subset of a Kong 3 DB-less declarative file that
// the local gateway implements: services (URL, timeouts, retries), routes
// (paths, methods, strip_path, path_handling; a route without a service when
// a plugin answers every request), upstreams (targets, weights, active and
// passive health checks) and plugins (global, service and route scoped). It
// resolves each route to its service and upstream and to its effective
// plugins, with Kong's precedence (route over service over global).
//
// Anything the local gateway cannot honour faithfully (regex paths, protocols
// other than http, a reference to a missing entity) is an error rather than a
// silent difference from Kong; fields that only narrow matching (hosts,
// headers) are reported as warnings so the caller can log them.
package kongconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"blogplatform/kong/apikey_auth_plugin/verify"
)

// Plugin names the local gateway understands.
const (
	PluginAPIKey             = "apikey-auth-plugin"
	PluginRequestTermination = "request-termination"
)

// Kong defaults for fields the file may leave out.
const (
	defaultTargetPort   = 8000 // Kong's default port for an upstream target
	defaultTargetWeight = 100
	defaultHTTPPort     = 80
	pathHandlingV0      = "v0"
	pathHandlingV1      = "v1"

	// DefaultTimeoutMS is Kong's default for a service's connect_timeout,
	// write_timeout and read_timeout (milliseconds).
	DefaultTimeoutMS = 60000
	// DefaultRetries is Kong's default for a service's retries.
	DefaultRetries = 5
	// maxTimeoutMS and maxRetries are the bounds of Kong 3.9's services
	// schema (timeouts 1..2^31-2, retries 0..32767).
	maxTimeoutMS = 1<<31 - 2
	maxRetries   = 32767
)

// File is the declarative file as written.
type File struct {
	FormatVersion string     `yaml:"_format_version"`
	Services      []Service  `yaml:"services"`
	Routes        []Route    `yaml:"routes"` // top-level routes name their service
	Upstreams     []Upstream `yaml:"upstreams"`
	Plugins       []Plugin   `yaml:"plugins"`
}

// Service is a Kong service: where matched requests go.
type Service struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Protocol string `yaml:"protocol"`
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Path     string `yaml:"path"`
	// Timeouts in milliseconds, per attempt (nginx's proxy_connect_timeout,
	// proxy_send_timeout, proxy_read_timeout); nil: Kong's 60000.
	ConnectTimeout *int `yaml:"connect_timeout"`
	WriteTimeout   *int `yaml:"write_timeout"`
	ReadTimeout    *int `yaml:"read_timeout"`
	// Retries is how many more attempts a failed one may get; nil: Kong's 5.
	Retries *int     `yaml:"retries"`
	Routes  []Route  `yaml:"routes"`
	Plugins []Plugin `yaml:"plugins"`
}

// Route is a Kong route: which requests go to its service.
type Route struct {
	Name         string    `yaml:"name"`
	Paths        []string  `yaml:"paths"`
	Methods      []string  `yaml:"methods"`
	Hosts        []string  `yaml:"hosts"`
	Headers      yaml.Node `yaml:"headers"`
	StripPath    *bool     `yaml:"strip_path"`
	PathHandling string    `yaml:"path_handling"`
	Service      Ref       `yaml:"service"` // only for top-level routes
	Plugins      []Plugin  `yaml:"plugins"`
}

// Upstream is a Kong upstream: a named, load-balanced set of targets.
type Upstream struct {
	Name         string       `yaml:"name"`
	Algorithm    string       `yaml:"algorithm"`
	Healthchecks Healthchecks `yaml:"healthchecks"`
	Targets      []Target     `yaml:"targets"`
}

// Healthchecks is an upstream's healthchecks record (Kong 3.9 field names;
// absent numbers are Kong's defaults, 0: that check is off).
type Healthchecks struct {
	Active    ActiveHealthcheck  `yaml:"active"`
	Passive   PassiveHealthcheck `yaml:"passive"`
	Threshold float64            `yaml:"threshold"`
}

// ActiveHealthcheck probes every target on its own schedule.
type ActiveHealthcheck struct {
	Type        string  `yaml:"type"`
	HTTPPath    string  `yaml:"http_path"`
	Timeout     float64 `yaml:"timeout"` // seconds
	Concurrency int     `yaml:"concurrency"`
	Healthy     struct {
		Interval     float64 `yaml:"interval"` // seconds between probes of a healthy target
		Successes    int     `yaml:"successes"`
		HTTPStatuses []int   `yaml:"http_statuses"`
	} `yaml:"healthy"`
	Unhealthy struct {
		Interval     float64 `yaml:"interval"` // seconds between probes of an unhealthy target
		HTTPFailures int     `yaml:"http_failures"`
		TCPFailures  int     `yaml:"tcp_failures"`
		Timeouts     int     `yaml:"timeouts"`
		HTTPStatuses []int   `yaml:"http_statuses"`
	} `yaml:"unhealthy"`
}

// PassiveHealthcheck judges targets by the proxied traffic itself: a target
// with Unhealthy.TCPFailures connection failures or Unhealthy.Timeouts
// timeouts in a row is taken out of the rotation until an active check
// finds it healthy again.
type PassiveHealthcheck struct {
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
}

// Target is one upstream target, "host:port" with a weight.
type Target struct {
	Target string `yaml:"target"`
	Weight *int   `yaml:"weight"`
}

// Plugin is a plugin instance. At the top level, Service or Route may scope it.
type Plugin struct {
	Name    string         `yaml:"name"`
	Enabled *bool          `yaml:"enabled"`
	Config  map[string]any `yaml:"config"`
	Service Ref            `yaml:"service"`
	Route   Ref            `yaml:"route"`
}

// Ref names another entity; Kong accepts both `service: auth` and
// `service: {name: auth}`.
type Ref struct{ Name string }

// UnmarshalYAML accepts a scalar name or a mapping with name (or id).
func (r *Ref) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		r.Name = n.Value
		return nil
	case yaml.MappingNode:
		var m struct {
			Name string `yaml:"name"`
			ID   string `yaml:"id"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		r.Name = m.Name
		if r.Name == "" {
			r.Name = m.ID
		}
		return nil
	default:
		return fmt.Errorf("line %d: a reference must be a name or {name: ...}", n.Line)
	}
}

// IsEnabled reports whether the plugin instance is active (Kong's default).
func (p Plugin) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// DecodeConfig decodes the plugin's config mapping into out (a pointer to a
// struct with json tags), so each plugin's schema lives with its user.
func (p Plugin) DecodeConfig(out any) error {
	raw, err := json.Marshal(p.Config)
	if err != nil {
		return fmt.Errorf("plugin %s: config: %w", p.Name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("plugin %s: config: %w", p.Name, err)
	}
	return nil
}

// Load reads and resolves a declarative file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes and resolves a declarative file's content.
func Parse(data []byte) (*Config, error) {
	var f File
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	return f.Resolve()
}

// Config is the resolved file: every route with its service, its upstream (if
// the service's host names one) and its effective plugins.
type Config struct {
	Routes    []ResolvedRoute
	Upstreams map[string]*Upstream
	// GlobalPlugins are the enabled plugins with no scope.
	GlobalPlugins map[string]Plugin
	// Warnings lists file features the local gateway ignores.
	Warnings []string
}

// ResolvedRoute is a route ready for matching.
type ResolvedRoute struct {
	Name         string
	Paths        []string
	Methods      []string // empty: any method
	StripPath    bool
	PathHandling string // v0 or v1
	// Service is the zero value (Name "") for a route without a service,
	// which the file allows only when request-termination answers it.
	Service ResolvedService
	// Plugins maps plugin name to the instance that applies to this route.
	Plugins map[string]Plugin
}

// ResolvedService is a service's parsed URL.
type ResolvedService struct {
	Name string
	Host string // an upstream name or a plain host
	Port int
	Path string // "" or an absolute path
	// Upstream is set when Host names an upstream of the file.
	Upstream *Upstream
	// Per-attempt timeouts and retries, Kong's defaults filled in.
	ConnectTimeout, WriteTimeout, ReadTimeout time.Duration
	Retries                                   int
}

// Resolve links routes, services, upstreams and plugins and validates them.
func (f *File) Resolve() (*Config, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	cfg := &Config{Upstreams: map[string]*Upstream{}, GlobalPlugins: map[string]Plugin{}}
	for i := range f.Upstreams {
		u := &f.Upstreams[i]
		if u.Name == "" {
			fail("upstream #%d has no name", i+1)
			continue
		}
		if _, dup := cfg.Upstreams[u.Name]; dup {
			fail("upstream %q is defined twice", u.Name)
		}
		if u.Algorithm != "" && u.Algorithm != "round-robin" {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("upstream %s: algorithm %q is balanced round robin locally", u.Name, u.Algorithm))
		}
		for j, t := range u.Targets {
			if _, _, err := t.HostPort(); err != nil {
				fail("upstream %s target #%d: %v", u.Name, j+1, err)
			}
		}
		cfg.Upstreams[u.Name] = u
	}

	services := map[string]*Service{}
	resolvedServices := map[string]ResolvedService{}
	for i := range f.Services {
		s := &f.Services[i]
		if s.Name == "" {
			fail("service #%d has no name", i+1)
			continue
		}
		if _, dup := services[s.Name]; dup {
			fail("service %q is defined twice", s.Name)
		}
		rs, err := resolveService(s, cfg.Upstreams)
		if err != nil {
			fail("service %s: %v", s.Name, err)
			continue
		}
		services[s.Name] = s
		resolvedServices[s.Name] = rs
	}

	// Collect routes (nested and top-level) with the service they belong to.
	type routeOwner struct {
		route   Route
		service string
	}
	var owned []routeOwner
	for _, s := range f.Services {
		for _, r := range s.Routes {
			owned = append(owned, routeOwner{r, s.Name})
		}
	}
	for _, r := range f.Routes {
		// A route without a service is valid in Kong when a plugin answers
		// every request (checked below, once its plugins are known).
		owned = append(owned, routeOwner{r, r.Service.Name})
	}

	// Scoped plugins: nested under a service or route, or top-level with a
	// service/route reference.
	servicePlugins := map[string]map[string]Plugin{}
	routePlugins := map[string]map[string]Plugin{}
	add := func(into map[string]map[string]Plugin, owner string, p Plugin) {
		if !p.IsEnabled() {
			return // Kong loads only enabled plugins; a disabled one overrides nothing
		}
		if into[owner] == nil {
			into[owner] = map[string]Plugin{}
		}
		into[owner][p.Name] = p
	}
	for _, s := range f.Services {
		for _, p := range s.Plugins {
			add(servicePlugins, s.Name, p)
		}
	}
	routeNames := map[string]bool{}
	for _, o := range owned {
		if o.route.Name != "" {
			if routeNames[o.route.Name] {
				fail("route %q is defined twice", o.route.Name)
			}
			routeNames[o.route.Name] = true
		}
	}
	for _, p := range f.Plugins {
		switch {
		case p.Name == "":
			fail("a plugin has no name")
		case p.Route.Name != "":
			if !routeNames[p.Route.Name] {
				fail("plugin %s: unknown route %q", p.Name, p.Route.Name)
			}
			add(routePlugins, p.Route.Name, p)
		case p.Service.Name != "":
			if services[p.Service.Name] == nil {
				fail("plugin %s: unknown service %q", p.Name, p.Service.Name)
			}
			add(servicePlugins, p.Service.Name, p)
		case p.IsEnabled():
			cfg.GlobalPlugins[p.Name] = p
		}
	}

	for i, o := range owned {
		r := o.route
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		svc, ok := resolvedServices[o.service]
		if !ok && o.service != "" {
			if services[o.service] == nil {
				fail("route %s: unknown service %q", name, o.service)
			}
			continue
		}
		if len(r.Paths) == 0 {
			fail("route %s: no paths (the local gateway routes by path only)", name)
			continue
		}
		for _, p := range r.Paths {
			if strings.HasPrefix(p, "~") {
				fail("route %s: regex path %q is not supported by the local gateway", name, p)
			} else if !strings.HasPrefix(p, "/") {
				fail("route %s: path %q must start with /", name, p)
			}
		}
		if len(r.Hosts) > 0 || !r.Headers.IsZero() {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("route %s: hosts/headers matching is ignored by the local gateway", name))
		}
		handling := r.PathHandling
		switch handling {
		case "":
			handling = pathHandlingV0 // Kong's default for traditional routers
		case pathHandlingV0, pathHandlingV1:
		default:
			fail("route %s: unknown path_handling %q", name, handling)
		}
		strip := true // Kong's default
		if r.StripPath != nil {
			strip = *r.StripPath
		}
		plugins := map[string]Plugin{}
		for n, p := range cfg.GlobalPlugins {
			plugins[n] = p
		}
		for n, p := range servicePlugins[o.service] {
			plugins[n] = p
		}
		for _, p := range r.Plugins {
			if p.IsEnabled() {
				plugins[p.Name] = p
			}
		}
		if r.Name != "" {
			for n, p := range routePlugins[r.Name] {
				plugins[n] = p
			}
		}
		if o.service == "" {
			if _, ok := plugins[PluginRequestTermination]; !ok {
				fail("route %s names no service (only a route answered by %s may)", name, PluginRequestTermination)
				continue
			}
		}
		methods := make([]string, len(r.Methods))
		for k, m := range r.Methods {
			// Kong's schema takes upper-case method names only.
			if m == "" || strings.ToUpper(m) != m {
				fail("route %s: method %q must be upper case", name, m)
			}
			methods[k] = m
		}
		cfg.Routes = append(cfg.Routes, ResolvedRoute{
			Name:         name,
			Paths:        append([]string(nil), r.Paths...),
			Methods:      methods,
			StripPath:    strip,
			PathHandling: handling,
			Service:      svc,
			Plugins:      plugins,
		})
	}
	if len(cfg.Routes) == 0 && len(errs) == 0 {
		fail("no routes")
	}
	return cfg, errors.Join(errs...)
}

func resolveService(s *Service, upstreams map[string]*Upstream) (ResolvedService, error) {
	rs := ResolvedService{Name: s.Name}
	scheme := s.Protocol
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil {
			return rs, fmt.Errorf("url: %w", err)
		}
		scheme = u.Scheme
		rs.Host = u.Hostname()
		if p := u.Port(); p != "" {
			rs.Port, _ = strconv.Atoi(p)
		}
		rs.Path = u.Path
	} else {
		rs.Host, rs.Port, rs.Path = s.Host, s.Port, s.Path
	}
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" {
		return rs, fmt.Errorf("protocol %q is not supported by the local gateway (http only)", scheme)
	}
	if rs.Host == "" {
		return rs, errors.New("no host")
	}
	if rs.Port == 0 {
		rs.Port = defaultHTTPPort
	}
	if rs.Path != "" && !strings.HasPrefix(rs.Path, "/") {
		return rs, fmt.Errorf("path %q must start with /", rs.Path)
	}
	rs.Upstream = upstreams[rs.Host]

	var err error
	if rs.ConnectTimeout, err = timeoutMS("connect_timeout", s.ConnectTimeout); err != nil {
		return rs, err
	}
	if rs.WriteTimeout, err = timeoutMS("write_timeout", s.WriteTimeout); err != nil {
		return rs, err
	}
	if rs.ReadTimeout, err = timeoutMS("read_timeout", s.ReadTimeout); err != nil {
		return rs, err
	}
	rs.Retries = DefaultRetries
	if s.Retries != nil {
		if *s.Retries < 0 || *s.Retries > maxRetries {
			return rs, fmt.Errorf("retries %d, want 0..%d", *s.Retries, maxRetries)
		}
		rs.Retries = *s.Retries
	}
	return rs, nil
}

// timeoutMS reads one of a service's timeouts with Kong's default and bounds.
func timeoutMS(field string, v *int) (time.Duration, error) {
	ms := DefaultTimeoutMS
	if v != nil {
		ms = *v
	}
	if ms < 1 || ms > maxTimeoutMS {
		return 0, fmt.Errorf("%s %d, want 1..%d milliseconds", field, ms, maxTimeoutMS)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// HostPort splits the target into host and port (Kong's default port 8000).
func (t Target) HostPort() (string, int, error) {
	if t.Target == "" {
		return "", 0, errors.New("empty target")
	}
	host, portText, err := net.SplitHostPort(t.Target)
	if err != nil {
		// No port: Kong uses 8000.
		return t.Target, defaultTargetPort, nil
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", t.Target)
	}
	return host, port, nil
}

// EffectiveWeight is the target's weight with Kong's default of 100.
func (t Target) EffectiveWeight() int {
	if t.Weight == nil {
		return defaultTargetWeight
	}
	return *t.Weight
}

// APIKeyConfig is apikey-auth-plugin's configuration, as the plugin itself
// reads it.
type APIKeyConfig = verify.Settings

// RequestTerminationConfig is Kong's bundled request-termination plugin: the
// route is answered by the gateway itself, never proxied.
type RequestTerminationConfig struct {
	StatusCode  int    `json:"status_code"` // absent: 503
	Message     string `json:"message"`     // sent as {"message": ...} when Body is empty
	Body        string `json:"body"`        // sent as is, with ContentType
	ContentType string `json:"content_type"`
}
