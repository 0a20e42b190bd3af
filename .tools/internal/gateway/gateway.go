// Package gateway is the local stand-in for Kong: an HTTP reverse proxy
// configured from the same declarative file (kong/kong-load-balanced.yml) and
// running the same API-key verification code as the Kong plugin
// (blogplatform/kong/apikey_auth_plugin/verify).
//
// What it implements of Kong, and how:
//   - routes: path prefix match with optional methods, in the priority order
//     of Kong 3's router (see match), on the path normalised as Kong's router
//     normalises it (package kongpath); strip_path and path_handling v0/v1
//     exactly as Kong's router builds the upstream path from that normalised
//     path, escaped again as Kong escapes it; the query string is kept. No
//     match: Kong's 404 "no Route matched with those values" in Kong's error
//     template (see ErrorTemplateJSON).
//   - services: per-attempt connect_timeout, write_timeout and read_timeout
//     and up to retries further attempts, with nginx's rules for what may be
//     retried (see balancingTransport).
//   - services and upstreams: a service URL whose host names an upstream is
//     balanced over its targets by smooth weighted round robin; any other host
//     is a single target. Target and service hosts are mapped to real
//     addresses by the caller's Resolver (the compose names auth1:8000 become
//     the local replicas' loopback ports).
//   - health: every target's health path (the upstream's
//     healthchecks.active.http_path, default /health/ready) is polled each
//     HealthInterval; targets that are not ready get no traffic while another
//     one is ready (a non-200 answer counts at once, timeouts only twice in a
//     row). Passive checks (healthchecks.passive.unhealthy.tcp_failures and
//     timeouts) eject a target after that many failed attempts in a row. A
//     target out of the rotation (not ready or ejected) comes back after
//     healthchecks.active.healthy.successes passing probes in a row.
//   - plugins: apikey-auth-plugin (global or per route; config.bypass: true on
//     a route skips its key check), with its rate_limits, and
//     request-termination. Other plugins are reported by New as warnings and
//     ignored.
//   - known differences: a request tries each target at most once (Kong's
//     round robin may come back to a tried one when retries exceed the
//     targets); probes run every HealthInterval, not at the file's
//     intervals; when every target is ejected or not ready the gateway still
//     tries them (Kong answers 503); errors are always JSON (Kong follows the
//     client's Accept header).
//   - slow clients: a request body must arrive within BodyReadTimeout (408
//     otherwise, never proxied), and NewServer bounds headers in time and
//     size, like nginx's client_body_timeout and client_header_timeout.
//     Neither the gateway's answers nor proxied ones carry Server or Via.
//   - headers: X-Forwarded-For/-Proto/-Host/-Port/-Path/-Prefix and X-Real-IP
//     are set from the connection (the gateway is the edge, so a client's own
//     X-Forwarded-For is replaced, not trusted); X-Request-ID is kept when it
//     is sane and generated otherwise, sent upstream and echoed to the client.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"blogplatform/chassis/httpx"
	"blogplatform/kong/apikey_auth_plugin/kongpath"
	"blogplatform/kong/apikey_auth_plugin/ratelimit"
	"blogplatform/kong/apikey_auth_plugin/verify"
	"blogplatform/tools/internal/kongconf"
)

const (
	requestIDHeader = "X-Request-ID"
	// requestIDHeaderKey is its canonical form, for direct map access.
	requestIDHeaderKey = "X-Request-Id"

	// DefaultHealthInterval is how often every target's readiness is polled.
	DefaultHealthInterval = time.Second
	// DefaultHealthTimeout bounds one readiness probe (the
	// healthchecks.active.timeout of the repo's Kong file).
	DefaultHealthTimeout = 2 * time.Second
	// DefaultMaxBufferedBody is the largest request body kept in memory so a
	// retry can resend it: the services' own body limit (BODY_LIMIT_BYTES'
	// default, 1 MiB).
	// Larger bodies are streamed and never retried.
	DefaultMaxBufferedBody = 1 << 20
	// defaultHealthPath is probed when the upstream names none.
	defaultHealthPath = "/health/ready"
	// dialTimeout only bounds dials that outlive their attempt (the
	// transport may finish a dial for its pool); each attempt has the
	// service's connect_timeout.
	dialTimeout = 5 * time.Second
	// directHostWeight is the weight of each endpoint of a service host that
	// names no upstream: equal shares, Kong's default target weight.
	directHostWeight = 100
	// hostPoolFailures is the passive threshold of a service host that names
	// no upstream (Kong has no health checks there; locally such a host may
	// stand for several replicas, so they get the repo's upstream setting).
	hostPoolFailures = 2
	// maxIdleConnsPerHost is the idle upstream connections kept per target:
	// at least the client concurrency the platform is driven with (the
	// benchmarks go up to 256 connections).
	maxIdleConnsPerHost = 256
	// maxIdleConns bounds idle upstream connections over every target.
	maxIdleConns = 4 * maxIdleConnsPerHost
)

// HealthProbeRequestIDPrefix starts the X-Request-ID of the gateway's own
// readiness probes, so log readers (the devstack's log stream) can tell the
// once-a-second probes from client traffic.
const HealthProbeRequestIDPrefix = "health-probe-"

// Kong's own answers.
const (
	messageNoRoute        = "no Route matched with those values"
	messageNoPeer         = "failure to get a peer from the ring-balancer"
	messageBadUpstream    = "An invalid response was received from the upstream server"
	messageUpstreamTimout = "The upstream server is timing out"
	messageBadRequest     = "Bad request"
)

// ErrorTemplateJSON is the body of Kong's own errors (no route, no healthy
// target, upstream failure or timeout): the content of kong/error-template.json,
// which the repo's Kong images set as error_template_json. Kong fills it with
// Lua's string.format(template, message, request_id): it cannot carry the
// numeric status, so the platform envelope's "status" is absent from these
// (the HTTP status says it).
const ErrorTemplateJSON = `{"code":"10001","message":"%s","request_id":"%s"}` + "\n"

// Endpoint is a real address for a name used in the Kong file.
type Endpoint struct {
	Name string // the name shown in stats and logs, e.g. auth1
	Addr string // host:port to dial
}

// Resolver maps a host and port of the Kong file (an upstream target such as
// auth1:8000, a service host, or a verification URL's host) to the endpoints
// that stand for it locally. One name may stand for several endpoints (a
// service host such as auth that resolves to every auth replica).
type Resolver func(host string, port int) ([]Endpoint, error)

// Options configures a Gateway.
type Options struct {
	Kong    *kongconf.Config
	Resolve Resolver
	Logger  *slog.Logger // nil: discard

	HealthInterval  time.Duration // <= 0: DefaultHealthInterval
	HealthTimeout   time.Duration // one probe; <= 0: DefaultHealthTimeout
	MaxBufferedBody int64         // <= 0: DefaultMaxBufferedBody
	// BodyReadTimeout bounds how long a client may take to send a request
	// body, counted from when the gateway starts reading it, after the key
	// check (nginx's client_body_timeout, though nginx counts between
	// reads): past it the client gets a 408 and the upstream nothing.
	// <= 0: DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// Now is the rate limiter's clock; nil: time.Now.
	Now func() time.Time
}

// Gateway is an http.Handler. Call Run to start its health checks.
type Gateway struct {
	routes          []*route
	router          router
	pools           []*pool
	transport       *http.Transport
	proxy           *httputil.ReverseProxy
	healthClient    *http.Client
	healthInterval  time.Duration
	healthTimeout   time.Duration
	maxBufferedBody int64
	bodyReadTimeout time.Duration
	now             func() time.Time
	log             *slog.Logger
}

type route struct {
	name    string
	paths   []string
	methods map[string]bool // nil: any
	// weight is the first key of Kong's route priority: how many of the
	// matching fields (paths, methods) the route sets.
	weight       int
	strip        bool
	pathHandling string
	servicePath  string
	pool         *pool // nil when terminate is set
	// The service's per-attempt settings.
	connectTimeout, writeTimeout, readTimeout time.Duration
	retries                                   int
	keyPlugin                                 bool               // apikey-auth-plugin applies to this route
	keyCheck                                  *verify.Verifier   // nil: no key check (no plugin, or bypass)
	limiter                                   *ratelimit.Limiter // the plugin's rate_limits (nil: none)
	keyBypass                                 bool               // route-level apikey-auth-plugin with bypass: true
	publicPaths                               []string           // the plugin's public_paths: key-less GET/HEAD
	terminate                                 *termination       // request-termination: answered here
}

// termination is a request-termination plugin's fixed answer.
type termination struct {
	status      int
	contentType string
	body        []byte
}

// New builds a gateway from a resolved Kong file.
func New(opts Options) (*Gateway, error) {
	if opts.Kong == nil || opts.Resolve == nil {
		return nil, errors.New("gateway: Kong config and Resolver are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	g := &Gateway{
		healthInterval:  positiveOr(opts.HealthInterval, DefaultHealthInterval),
		healthTimeout:   positiveOr(opts.HealthTimeout, DefaultHealthTimeout),
		maxBufferedBody: opts.MaxBufferedBody,
		bodyReadTimeout: positiveOr(opts.BodyReadTimeout, DefaultBodyReadTimeout),
		now:             now,
		log:             log,
	}
	if g.maxBufferedBody <= 0 {
		g.maxBufferedBody = DefaultMaxBufferedBody
	}
	for _, w := range opts.Kong.Warnings {
		log.Warn("gateway: " + w)
	}

	g.transport = &http.Transport{
		Proxy:       nil, // replicas are local: never through an HTTP(S)_PROXY
		DialContext: (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		// Every client connection may hold an upstream connection at once:
		// keep that many idle per target, or each burst above the idle
		// limit pays a connect and leaves a TIME_WAIT socket behind.
		MaxIdleConns:        maxIdleConns,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     60 * time.Second,
		// A proxy passes the client's Accept-Encoding through and the
		// answer's encoding back; it never asks for gzip on its own (the
		// transport would then decode it for the client).
		DisableCompression: true,
		// No ResponseHeaderTimeout: each attempt has its route's read_timeout.
	}
	// Each probe is bounded by its own context (HealthTimeout).
	g.healthClient = &http.Client{Transport: g.transport}

	b := builder{opts: opts, g: g, pools: map[string]*pool{}, verifiers: map[string]*verify.Verifier{}, limiters: map[string]*ratelimit.Limiter{}}
	for _, rr := range opts.Kong.Routes {
		r, err := b.route(rr)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", rr.Name, err)
		}
		g.routes = append(g.routes, r)
	}
	g.router = newRouter(g.routes)

	bt := &balancingTransport{base: g.transport, log: log}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      bt,
		ModifyResponse: ensureRequestID,
		ErrorHandler:   g.proxyError,
		// Reuse copy buffers: ReverseProxy otherwise allocates 32 KiB per
		// response, a large share of a small proxied request's cost.
		BufferPool: newBufferPool(),
		ErrorLog:   slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return g, nil
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// builder turns resolved Kong routes into gateway routes, sharing one pool
// per upstream (so balancing and health are per upstream, as in Kong) and
// one verifier and one rate limiter per distinct plugin configuration (the
// global plugin's counts are shared by every route, as in Kong).
type builder struct {
	opts      Options
	g         *Gateway
	pools     map[string]*pool
	verifiers map[string]*verify.Verifier
	limiters  map[string]*ratelimit.Limiter
}

func (b *builder) route(rr kongconf.ResolvedRoute) (*route, error) {
	r := &route{
		name:           rr.Name,
		paths:          rr.Paths,
		weight:         1, // paths: the local gateway routes by path only
		strip:          rr.StripPath,
		pathHandling:   rr.PathHandling,
		servicePath:    rr.Service.Path,
		connectTimeout: rr.Service.ConnectTimeout,
		writeTimeout:   rr.Service.WriteTimeout,
		readTimeout:    rr.Service.ReadTimeout,
		retries:        rr.Service.Retries,
	}
	if len(rr.Methods) > 0 {
		r.weight++
		r.methods = map[string]bool{}
		for _, m := range rr.Methods {
			r.methods[m] = true
		}
	}
	if plugin, ok := rr.Plugins[kongconf.PluginRequestTermination]; ok {
		t, err := newTermination(plugin)
		if err != nil {
			return nil, err
		}
		r.terminate = t
	} else {
		p, err := b.pool(rr.Service)
		if err != nil {
			return nil, err
		}
		r.pool = p
	}
	for name, plugin := range rr.Plugins {
		switch name {
		case kongconf.PluginAPIKey:
			var c kongconf.APIKeyConfig
			if err := plugin.DecodeConfig(&c); err != nil {
				return nil, err
			}
			l, err := b.limiter(c)
			if err != nil {
				return nil, err
			}
			r.keyPlugin, r.limiter = true, l
			if c.Bypass {
				r.keyBypass = true
				continue
			}
			v, err := b.verifier(c)
			if err != nil {
				return nil, err
			}
			r.keyCheck = v
			r.publicPaths = c.PublicPaths
		case kongconf.PluginRequestTermination:
			// Handled above.
		default:
			b.g.log.Warn("gateway: plugin is not implemented locally and is ignored", "route", rr.Name, "plugin", name)
		}
	}
	return r, nil
}

func (b *builder) pool(s kongconf.ResolvedService) (*pool, error) {
	key := "host:" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	if s.Upstream != nil {
		key = "upstream:" + s.Upstream.Name
	}
	if p, ok := b.pools[key]; ok {
		return p, nil
	}
	p := &pool{name: s.Host, healthPath: defaultHealthPath, maxTCPFailures: hostPoolFailures, maxTimeouts: hostPoolFailures}
	if s.Upstream != nil {
		hc := s.Upstream.Healthchecks
		if hc.Active.HTTPPath != "" {
			p.healthPath = hc.Active.HTTPPath
		}
		p.maxTCPFailures = int32(hc.Passive.Unhealthy.TCPFailures)
		p.maxTimeouts = int32(hc.Passive.Unhealthy.Timeouts)
		p.passesToReturn = int32(hc.Active.Healthy.Successes)
		for _, t := range s.Upstream.Targets {
			host, port, err := t.HostPort()
			if err != nil {
				return nil, err
			}
			eps, err := b.opts.Resolve(host, port)
			if err != nil {
				return nil, fmt.Errorf("upstream %s target %s: %w", s.Upstream.Name, t.Target, err)
			}
			for _, ep := range eps {
				p.targets = append(p.targets, newTarget(ep, t.EffectiveWeight()))
			}
		}
	} else {
		eps, err := b.opts.Resolve(s.Host, s.Port)
		if err != nil {
			return nil, fmt.Errorf("service %s host %s: %w", s.Name, s.Host, err)
		}
		for _, ep := range eps {
			p.targets = append(p.targets, newTarget(ep, directHostWeight))
		}
	}
	if len(p.targets) == 0 {
		return nil, fmt.Errorf("service %s: no targets", s.Name)
	}
	b.pools[key] = p
	b.g.pools = append(b.g.pools, p)
	return p, nil
}

func newTarget(ep Endpoint, weight int) *target {
	t := &target{name: ep.Name, addr: ep.Addr, weight: weight}
	t.ready.Store(true)
	return t
}

// verifier builds (once per distinct configuration) the plugin's Verifier
// with the verification URLs' hosts resolved to local addresses.
func (b *builder) verifier(c kongconf.APIKeyConfig) (*verify.Verifier, error) {
	var urls []string
	for _, raw := range c.VerificationURLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("verification url %q: %w", raw, err)
		}
		port := 80
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		eps, err := b.opts.Resolve(u.Hostname(), port)
		if err != nil {
			return nil, fmt.Errorf("verification url %q: %w", raw, err)
		}
		for _, ep := range eps {
			local := *u
			local.Host = ep.Addr
			urls = append(urls, local.String())
		}
	}
	c.VerificationURLs = urls // the replicas' local addresses
	cfg := c.Config()
	key := fmt.Sprintf("%q|%v|%v|%v|%v", urls, cfg.Timeout, cfg.CacheTTL, cfg.StaleTTL, cfg.NegativeTTL)
	if v, ok := b.verifiers[key]; ok {
		return v, nil
	}
	v := verify.New(cfg, nil)
	b.verifiers[key] = v
	return v, nil
}

// limiter builds (once per distinct rate_limits) the plugin's rate limiter.
func (b *builder) limiter(c kongconf.APIKeyConfig) (*ratelimit.Limiter, error) {
	if len(c.RateLimits) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(c.RateLimits)
	if err != nil {
		return nil, err
	}
	if l, ok := b.limiters[string(raw)]; ok {
		return l, nil
	}
	l, err := c.RateLimiter(ratelimit.Options{Now: b.g.now})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kongconf.PluginAPIKey, err)
	}
	b.limiters[string(raw)] = l
	return l, nil
}

// newTermination reads a request-termination plugin's answer, as Kong 3.9
// builds it: body with content_type when a body is set, else
// {"message": message} as JSON, with the plugin's default message for the
// status when none is set (no body for a status without one).
func newTermination(plugin kongconf.Plugin) (*termination, error) {
	var c kongconf.RequestTerminationConfig
	if err := plugin.DecodeConfig(&c); err != nil {
		return nil, err
	}
	t := &termination{status: c.StatusCode, contentType: c.ContentType}
	if t.status == 0 {
		t.status = http.StatusServiceUnavailable
	}
	if t.status < 100 || t.status > 599 {
		return nil, fmt.Errorf("%s: status_code %d, want 100..599", kongconf.PluginRequestTermination, t.status)
	}
	if c.Body != "" {
		t.body = []byte(c.Body)
		return t, nil
	}
	message := c.Message
	if message == "" {
		message = terminationMessage(t.status)
	}
	if message != "" {
		t.body, _ = json.Marshal(map[string]string{"message": message})
		t.contentType = "application/json; charset=utf-8"
	}
	return t, nil
}

// terminationMessage is request-termination's default message for a status.
func terminationMessage(status int) string {
	switch status {
	case 401:
		return "Unauthorized"
	case 404:
		return "Not found"
	case 405:
		return "Method not allowed"
	case 500:
		return "An unexpected error occurred"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service unavailable"
	}
	return ""
}

// Run polls the targets' health until ctx ends.
func (g *Gateway) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range g.pools {
		wg.Go(func() { p.checkHealth(ctx, g.healthClient, g.healthInterval, g.healthTimeout, g.log) })
	}
	wg.Wait()
}

// Close releases idle upstream connections.
func (g *Gateway) Close() {
	g.transport.CloseIdleConnections()
	for _, p := range g.pools {
		for _, t := range p.targets {
			t.conns.close(true)
		}
	}
}

// TargetStats describes one target for tests and the ready banner.
type TargetStats struct {
	Upstream string
	Name     string
	Addr     string
	Weight   int
	Served   int64 // responses received from it
	Failures int64 // attempts that failed (connection or timeout)
	Ready    bool  // last health check
	Down     bool  // ejected by the passive health check
}

// Stats lists every target, sorted by upstream and name.
func (g *Gateway) Stats() []TargetStats {
	var out []TargetStats
	for _, p := range g.pools {
		for _, t := range p.targets {
			out = append(out, TargetStats{
				Upstream: p.name, Name: t.name, Addr: t.addr, Weight: t.weight,
				Served: t.served.Load(), Failures: t.failures.Load(),
				Ready: t.ready.Load(), Down: t.ejected.Load(),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Upstream != out[j].Upstream {
			return out[i].Upstream < out[j].Upstream
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ServeHTTP routes one client request: request id, route match (or Kong's
// 404), the API-key plugin (its rate limit first, then the key unless the
// path is one of its public_paths or the route bypasses it), a
// request-termination answer, then the proxy with retries.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sent := r.Header[requestIDHeaderKey]
	id := ""
	if len(sent) == 1 {
		id = httpx.SanitizeRequestID(sent[0])
	}
	if id == "" {
		// Missing, unsafe or repeated: the gateway's own, alone.
		id = httpx.NewRequestID()
		r.Header[requestIDHeaderKey] = []string{id}
	}

	// Kong's router works on the normalised path (encoded unreserved
	// characters decoded, dot segments removed, slashes merged), and so does
	// everything after it here: the route, the rate limit, the public-path
	// exemption and the upstream path all see one path, so an encoding
	// cannot make the gateway treat a request as another path than the one
	// the service receives.
	reqPath := kongpath.Normalize(escapedPath(r))
	if reqPath == "" {
		reqPath = "/"
	}
	rt, prefix := g.match(r.Method, reqPath)
	if rt == nil {
		writeKongError(w, id, http.StatusNotFound, messageNoRoute)
		return
	}

	clientIP, clientIPOK := remoteIP(r)
	if rt.keyPlugin {
		// The plugin's order: the rate limit counts every request to a
		// limited path, keyed or not, bypass and public paths included; its
		// budget headers go on every answer.
		d := verify.CheckRateLimit(rt.limiter, clientIP, reqPath)
		for k, v := range d.Header {
			w.Header()[k] = v
		}
		if !d.Allow {
			writeJSON(w, id, d.Status, d.Body)
			return
		}
		if !rt.keyBypass && !verify.IsPublicPath(r.Method, reqPath, rt.publicPaths) {
			d := rt.keyCheck.Verify(r.Context(), r.Header.Get(verify.HeaderName))
			if d.Err != nil {
				g.log.Warn("gateway: api key verification", "route", rt.name, "status", d.Status, "error", d.Err.Error(), "requestId", id)
			}
			if !d.Allow {
				writeJSON(w, id, d.Status, d.Body)
				return
			}
		}
	}
	if t := rt.terminate; t != nil {
		writeBody(w, id, t.status, t.contentType, t.body)
		return
	}

	// One allocation carries the whole plan to rewrite and the transport.
	plan := &proxyPlan{pool: rt.pool, replayable: true,
		connectTimeout: rt.connectTimeout, writeTimeout: rt.writeTimeout, readTimeout: rt.readTimeout, retries: rt.retries,
		prefix: prefix, originalPath: r.URL.Path, clientIP: clientIP, clientIPOK: clientIPOK}
	if r.Body != nil && r.Body != http.NoBody {
		// A slow client may not hold the connection: the body must arrive
		// within bodyReadTimeout.
		// The deadline stays set when the body is not read to its end, so
		// net/http's discarding of the rest cannot wait on the client either.
		deadline := armBodyDeadline(w, r, g.bodyReadTimeout)
		buffered, err := g.bufferBody(r)
		switch {
		case err != nil && isDeadline(err):
			w.Header().Set("Connection", "close")
			writeKongError(w, id, http.StatusRequestTimeout, messageRequestTimeout)
			return
		case err != nil:
			writeKongError(w, id, http.StatusBadRequest, messageBadRequest)
			return
		case buffered:
			deadline.clear()
		default:
			r.Body = deadline.watch(r.Body)
		}
		plan.replayable = buffered
	}
	plan.upstreamPath = kongpath.Escape(upstreamPath(rt.servicePath, prefix, reqPath, rt.strip, rt.pathHandling))
	g.proxy.ServeHTTP(w, r.WithContext(withPlan(r.Context(), plan)))
}

// match picks the route Kong 3's router (traditional_compatible, the
// default) would: among routes whose methods (if any) include the request's
// and one of whose paths is a prefix of it, the highest priority, which is
// first the number of matching fields the route sets (so paths+methods beats
// paths alone, whatever the path lengths), then the length of the matching
// path. Equal priorities go to the route defined first. It works on the
// normalised path (kongpath.Normalize), in which reserved characters such
// as %2F stay encoded: the form Kong matches and strip_path cuts.
//
// The candidates are put in that order once (see newRouter), so a request
// costs one map lookup and prefix tests up to the first match.
func (g *Gateway) match(method, normalised string) (*route, string) {
	candidates, ok := g.router.byMethod[method]
	if !ok {
		candidates = g.router.anyMethod
	}
	for _, c := range candidates {
		if strings.HasPrefix(normalised, c.path) {
			return c.route, c.path
		}
	}
	return nil, ""
}

// router holds, per method, every (route, path) pair that can match it, in
// match's priority order.
type router struct {
	byMethod  map[string][]candidate // methods some route names
	anyMethod []candidate            // any other method: routes without methods
}

type candidate struct {
	route *route
	path  string
}

func newRouter(routes []*route) router {
	var all []candidate
	methods := map[string]bool{}
	for _, rt := range routes {
		for _, p := range rt.paths {
			all = append(all, candidate{rt, p})
		}
		for m := range rt.methods {
			methods[m] = true
		}
	}
	// Stable: equal priorities keep the definition order (route, then path).
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.route.weight != b.route.weight {
			return a.route.weight > b.route.weight
		}
		return len(a.path) > len(b.path)
	})
	forMethod := func(m string) []candidate {
		var out []candidate
		for _, c := range all {
			if c.route.methods == nil || (m != "" && c.route.methods[m]) {
				out = append(out, c)
			}
		}
		return out
	}
	r := router{byMethod: map[string][]candidate{}, anyMethod: forMethod("")}
	for m := range methods {
		r.byMethod[m] = forMethod(m)
	}
	return r
}

// bufferBody reads the body into memory when it fits MaxBufferedBody, so a
// retry can resend it; otherwise the part read so far is stitched back in
// front of the rest and the request is streamed (and not retried).
func (g *Gateway) bufferBody(r *http.Request) (bool, error) {
	if r.ContentLength > g.maxBufferedBody {
		return false, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, g.maxBufferedBody+1))
	if err != nil {
		return false, err
	}
	if int64(len(data)) > g.maxBufferedBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(data), r.Body), r.Body}
		return false, nil
	}
	r.Body.Close()
	r.ContentLength = int64(len(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	r.Body, _ = r.GetBody()
	if len(data) == 0 {
		r.Body = http.NoBody
	}
	return true, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// rewrite builds the upstream request (ReverseProxy has already removed
// hop-by-hop and inbound X-Forwarded-* headers); the transport fills in the
// target's address.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	plan := pr.In.Context().Value(planKey{}).(*proxyPlan)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "upstream.invalid" // replaced per attempt by the transport
	pr.Out.Host = ""                     // preserve_host: false, Host is the target
	setPath(pr.Out.URL, plan.upstreamPath)

	// What ProxyRequest.SetXForwarded sets (X-Forwarded-For is the
	// connecting address alone: ReverseProxy has dropped the client's), plus
	// Kong's X-Real-IP, -Port, -Path and -Prefix. Written under their
	// canonical names, the values sharing the plan's array: no allocation
	// per header.
	h := pr.Out.Header
	v := &plan.forwarded
	set := func(i int, name, value string) {
		v[i] = value
		h[name] = v[i : i+1 : i+1]
	}
	if plan.clientIPOK {
		set(0, "X-Forwarded-For", plan.clientIP)
	}
	set(1, "X-Forwarded-Host", pr.In.Host)
	if pr.In.TLS == nil {
		set(2, "X-Forwarded-Proto", "http")
	} else {
		set(2, "X-Forwarded-Proto", "https")
	}
	set(3, "X-Real-Ip", plan.clientIP)
	if _, port, err := net.SplitHostPort(pr.In.Host); err == nil {
		set(4, "X-Forwarded-Port", port)
	}
	set(5, "X-Forwarded-Path", plan.originalPath)
	if plan.prefix != "" && plan.prefix != "/" {
		set(6, "X-Forwarded-Prefix", plan.prefix)
	}
	// ReverseProxy sets an empty User-Agent when the client sent none, so Go
	// does not add its own: keep that.
}

// ensureRequestID echoes the gateway's X-Request-ID when a service did not.
func ensureRequestID(resp *http.Response) error {
	if resp.Header.Get(requestIDHeader) == "" {
		resp.Header.Set(requestIDHeader, resp.Request.Header.Get(requestIDHeader))
	}
	return nil
}

func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	id := r.Header.Get(requestIDHeader)
	switch {
	case r.Context().Err() != nil:
		// The client is gone; nothing useful can be written.
		return
	case errors.Is(err, errNoTarget):
		writeKongError(w, id, http.StatusServiceUnavailable, messageNoPeer)
	case isTimeout(err):
		writeKongError(w, id, http.StatusGatewayTimeout, messageUpstreamTimout)
	default:
		writeKongError(w, id, http.StatusBadGateway, messageBadUpstream)
	}
	g.log.Warn("gateway: upstream request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error(), "requestId", id)
}

// isTimeout reports a deadline error (a net.Error, an attemptError, or
// anything else that says it timed out).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// writeKongError writes one of Kong's own errors the way Kong does with the
// repo's configuration: ErrorTemplateJSON filled like Lua's string.format
// (no escaping; Kong's messages need none, and the request id is sanitized).
func writeKongError(w http.ResponseWriter, id string, status int, message string) {
	writeJSON(w, id, status, []byte(fmt.Sprintf(ErrorTemplateJSON, message, id)))
}

func writeJSON(w http.ResponseWriter, id string, status int, body []byte) {
	writeBody(w, id, status, "application/json; charset=utf-8", body)
}

func writeBody(w http.ResponseWriter, id string, status int, contentType string, body []byte) {
	h := w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(requestIDHeader, id)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// remoteIP is the connecting address without its port; ok is false when
// RemoteAddr has no port (then it is returned whole).
func remoteIP(r *http.Request) (ip string, ok bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, false
	}
	return host, true
}

// copyBufferSize is the size of ReverseProxy's copy buffers.
const copyBufferSize = 32 << 10

// bufferPool recycles ReverseProxy's copy buffers. It pools pointers to
// arrays, which a returned slice converts back to without allocating.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (p *bufferPool) Get() []byte { return p.pool.Get().(*[copyBufferSize]byte)[:] }

func (p *bufferPool) Put(b []byte) {
	if cap(b) < copyBufferSize {
		return
	}
	p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}
