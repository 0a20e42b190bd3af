package kongconf

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// resolver carries what the steps of Resolve share: the result being built,
// the errors found so far (all are reported, not only the first) and the
// indexes each step leaves for the next.
type resolver struct {
	cfg  *Config
	errs []error

	services         map[string]*Service
	resolvedServices map[string]ResolvedService
	routeNames       map[string]bool
	// Enabled plugins scoped to a service or a route, by owner, then name.
	servicePlugins map[string]map[string]Plugin
	routePlugins   map[string]map[string]Plugin
}

// ownedRoute is a route with the name of the service it is nested in (""
// for a top-level route).
type ownedRoute struct {
	route   Route
	service string
}

// Resolve links routes, services, upstreams and plugins and validates them.
func (f *File) Resolve() (*Config, error) {
	r := &resolver{
		cfg:              &Config{Upstreams: map[string]*Upstream{}, GlobalPlugins: map[string]Plugin{}},
		services:         map[string]*Service{},
		resolvedServices: map[string]ResolvedService{},
		routeNames:       map[string]bool{},
		servicePlugins:   map[string]map[string]Plugin{},
		routePlugins:     map[string]map[string]Plugin{},
	}
	r.upstreams(f.Upstreams)
	r.resolveServices(f.Services)
	routes := r.ownedRoutes(f)
	r.indexRouteNames(routes)
	r.scopePlugins(f)
	for i, o := range routes {
		r.route(i, o)
	}
	if len(r.cfg.Routes) == 0 && len(r.errs) == 0 {
		r.fail("no routes")
	}
	return r.cfg, errors.Join(r.errs...)
}

func (r *resolver) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

func (r *resolver) warn(format string, args ...any) {
	r.cfg.Warnings = append(r.cfg.Warnings, fmt.Sprintf(format, args...))
}

// upstreams indexes the upstreams by name and checks their targets.
func (r *resolver) upstreams(upstreams []Upstream) {
	for i := range upstreams {
		u := &upstreams[i]
		if u.Name == "" {
			r.fail("upstream #%d has no name", i+1)
			continue
		}
		if _, dup := r.cfg.Upstreams[u.Name]; dup {
			r.fail("upstream %q is defined twice", u.Name)
		}
		if u.Algorithm != "" && u.Algorithm != "round-robin" {
			r.warn("upstream %s: algorithm %q is balanced round robin locally", u.Name, u.Algorithm)
		}
		for j, t := range u.Targets {
			if _, _, err := t.HostPort(); err != nil {
				r.fail("upstream %s target #%d: %v", u.Name, j+1, err)
			}
		}
		r.cfg.Upstreams[u.Name] = u
	}
}

// resolveServices indexes the services by name with their resolved form.
// Needs the upstreams.
func (r *resolver) resolveServices(services []Service) {
	for i := range services {
		s := &services[i]
		if s.Name == "" {
			r.fail("service #%d has no name", i+1)
			continue
		}
		if _, dup := r.services[s.Name]; dup {
			r.fail("service %q is defined twice", s.Name)
		}
		rs, err := resolveService(s, r.cfg.Upstreams)
		if err != nil {
			r.fail("service %s: %v", s.Name, err)
			continue
		}
		r.services[s.Name] = s
		r.resolvedServices[s.Name] = rs
	}
}

// ownedRoutes lists the routes nested in services and the top-level ones,
// each with the service it belongs to. A top-level route without a service
// is valid in Kong when a plugin answers every request (checked once its
// plugins are known). A top-level route that names a service is refused: Kong's
// DB-less loader takes that reference as a bare name (`service: auth`) and
// decK's schema only as a mapping (`service: {name: auth}`), so no spelling
// reads the same in both; nested under its service, it does.
func (r *resolver) ownedRoutes(f *File) []ownedRoute {
	var owned []ownedRoute
	for _, s := range f.Services {
		for _, rt := range s.Routes {
			owned = append(owned, ownedRoute{rt, s.Name})
		}
	}
	for i, rt := range f.Routes {
		if rt.Service.Name != "" {
			name := rt.Name
			if name == "" {
				name = fmt.Sprintf("top-level #%d", i+1)
			}
			r.fail("route %s: a top-level route cannot name its service the same way for Kong and decK; nest it under service %q", name, rt.Service.Name)
			continue
		}
		owned = append(owned, ownedRoute{rt, ""})
	}
	return owned
}

// indexRouteNames records the named routes, which top-level plugins may
// reference, and rejects a name used twice.
func (r *resolver) indexRouteNames(routes []ownedRoute) {
	for _, o := range routes {
		if o.route.Name == "" {
			continue
		}
		if r.routeNames[o.route.Name] {
			r.fail("route %q is defined twice", o.route.Name)
		}
		r.routeNames[o.route.Name] = true
	}
}

// scopePlugins sorts the plugins by scope: nested under a service, or
// top-level with a route or service reference, or global. Needs the
// services and the route names.
func (r *resolver) scopePlugins(f *File) {
	for _, s := range f.Services {
		for _, p := range s.Plugins {
			addScoped(r.servicePlugins, s.Name, p)
		}
	}
	for _, p := range f.Plugins {
		switch {
		case p.Name == "":
			r.fail("a plugin has no name")
		case p.Route.Name != "":
			if !r.routeNames[p.Route.Name] {
				r.fail("plugin %s: unknown route %q", p.Name, p.Route.Name)
			}
			addScoped(r.routePlugins, p.Route.Name, p)
		case p.Service.Name != "":
			if r.services[p.Service.Name] == nil {
				r.fail("plugin %s: unknown service %q", p.Name, p.Service.Name)
			}
			addScoped(r.servicePlugins, p.Service.Name, p)
		case p.IsEnabled():
			r.cfg.GlobalPlugins[p.Name] = p
		}
	}
}

func addScoped(into map[string]map[string]Plugin, owner string, p Plugin) {
	if !p.IsEnabled() {
		return // Kong loads only enabled plugins; a disabled one overrides nothing
	}
	if into[owner] == nil {
		into[owner] = map[string]Plugin{}
	}
	into[owner][p.Name] = p
}

// route resolves the i-th route and appends it to the result, or records
// why it cannot be served.
func (r *resolver) route(i int, o ownedRoute) {
	rt := o.route
	name := rt.Name
	if name == "" {
		name = fmt.Sprintf("#%d", i+1)
	}
	svc, ok := r.resolvedServices[o.service]
	if !ok && o.service != "" {
		return // its service failed to resolve and has its own error
	}
	if len(rt.Paths) == 0 {
		r.fail("route %s: no paths (the local gateway routes by path only)", name)
		return
	}
	r.checkPaths(name, rt.Paths)
	if len(rt.Hosts) > 0 || len(rt.Headers) > 0 {
		r.warn("route %s: hosts/headers matching is ignored by the local gateway", name)
	}
	handling := r.pathHandling(name, rt.PathHandling)
	plugins := r.effectivePlugins(o)
	if o.service == "" {
		if _, ok := plugins[PluginRequestTermination]; !ok {
			r.fail("route %s names no service (only a route answered by %s may)", name, PluginRequestTermination)
			return
		}
	}
	strip := true // Kong's default
	if rt.StripPath != nil {
		strip = *rt.StripPath
	}
	r.cfg.Routes = append(r.cfg.Routes, ResolvedRoute{
		Name:         name,
		Paths:        append([]string(nil), rt.Paths...),
		Methods:      r.methods(name, rt.Methods),
		StripPath:    strip,
		PathHandling: handling,
		Service:      svc,
		Plugins:      plugins,
	})
}

// checkPaths accepts the prefix paths the local gateway matches.
func (r *resolver) checkPaths(route string, paths []string) {
	for _, p := range paths {
		if strings.HasPrefix(p, "~") {
			r.fail("route %s: regex path %q is not supported by the local gateway", route, p)
		} else if !strings.HasPrefix(p, "/") {
			r.fail("route %s: path %q must start with /", route, p)
		}
	}
}

// pathHandling is the route's path_handling with Kong's default.
func (r *resolver) pathHandling(route, handling string) string {
	switch handling {
	case "":
		return pathHandlingV0 // Kong's default for traditional routers
	case pathHandlingV0, pathHandlingV1:
	default:
		r.fail("route %s: unknown path_handling %q", route, handling)
	}
	return handling
}

// effectivePlugins applies Kong's precedence: a plugin on the route (nested
// or referencing it) over one on its service over a global one.
func (r *resolver) effectivePlugins(o ownedRoute) map[string]Plugin {
	plugins := map[string]Plugin{}
	for n, p := range r.cfg.GlobalPlugins {
		plugins[n] = p
	}
	for n, p := range r.servicePlugins[o.service] {
		plugins[n] = p
	}
	for _, p := range o.route.Plugins {
		if p.IsEnabled() {
			plugins[p.Name] = p
		}
	}
	if o.route.Name != "" {
		for n, p := range r.routePlugins[o.route.Name] {
			plugins[n] = p
		}
	}
	return plugins
}

// methods checks the route's methods; Kong's schema takes upper-case names
// only.
func (r *resolver) methods(route string, methods []string) []string {
	out := make([]string, len(methods))
	for k, m := range methods {
		if m == "" || strings.ToUpper(m) != m {
			r.fail("route %s: method %q must be upper case", route, m)
		}
		out[k] = m
	}
	return out
}

// resolveService checks a service's target and fills in Kong's defaults.
func resolveService(s *Service, upstreams map[string]*Upstream) (ResolvedService, error) {
	rs := ResolvedService{Name: s.Name, Host: s.Host, Port: s.Port, Path: s.Path}
	scheme := s.Protocol
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
