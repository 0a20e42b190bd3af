// Package kongconf reads a Kong 3 DB-less declarative file for the local
// gateway. Reading and schema validation are decK's (its file package, the
// reader Kong's own tooling uses), so a field name, type or shape that Kong's
// tooling rejects is rejected here too, and every value the gateway uses is
// the value decK read. This package then resolves the subset the local
// gateway implements, which decK leaves to Kong: services (protocol, host,
// port, path, timeouts, retries), routes (paths, methods, strip_path,
// path_handling; a route without a service when a plugin answers every
// request), upstreams (targets, weights, active and passive health checks)
// and plugins (global, service and route scoped), each route linked to its
// service and upstream and to its effective plugins with Kong's precedence
// (route over service over global).
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
	"os"
	"path/filepath"
	"strconv"
	"time"

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

// File is the part of the declarative file the local gateway reads, as
// decK read it.
type File struct {
	FormatVersion string
	Services      []Service
	Routes        []Route // top-level routes name their service
	Upstreams     []Upstream
	Plugins       []Plugin
}

// Service is a Kong service: where matched requests go.
type Service struct {
	Name string
	// Protocol, Host, Port and Path as Kong stores them: decK splits a url
	// field into these.
	Protocol string
	Host     string
	Port     int
	Path     string
	// Timeouts in milliseconds, per attempt (nginx's proxy_connect_timeout,
	// proxy_send_timeout, proxy_read_timeout); nil: Kong's 60000.
	ConnectTimeout *int
	WriteTimeout   *int
	ReadTimeout    *int
	// Retries is how many more attempts a failed one may get; nil: Kong's 5.
	Retries *int
	Routes  []Route
	Plugins []Plugin
}

// Route is a Kong route: which requests go to its service.
type Route struct {
	Name         string
	Paths        []string
	Methods      []string
	Hosts        []string
	Headers      map[string][]string
	StripPath    *bool
	PathHandling string
	Service      Ref // only for top-level routes
	Plugins      []Plugin
}

// Upstream is a Kong upstream: a named, load-balanced set of targets.
type Upstream struct {
	Name         string
	Algorithm    string
	Healthchecks Healthchecks
	Targets      []Target
}

// Healthchecks is an upstream's healthchecks record (Kong 3.9 field names;
// absent numbers are Kong's defaults, 0: that check is off).
type Healthchecks struct {
	Active    ActiveHealthcheck
	Passive   PassiveHealthcheck
	Threshold float64
}

// ActiveHealthcheck probes every target on its own schedule.
type ActiveHealthcheck struct {
	Type        string
	HTTPPath    string
	Timeout     float64 // seconds
	Concurrency int
	Healthy     struct {
		Interval     float64 // seconds between probes of a healthy target
		Successes    int
		HTTPStatuses []int
	}
	Unhealthy struct {
		Interval     float64 // seconds between probes of an unhealthy target
		HTTPFailures int
		TCPFailures  int
		Timeouts     int
		HTTPStatuses []int
	}
}

// PassiveHealthcheck judges targets by the proxied traffic itself: a target
// with Unhealthy.TCPFailures connection failures or Unhealthy.Timeouts
// timeouts in a row is taken out of the rotation until an active check
// finds it healthy again.
type PassiveHealthcheck struct {
	Type    string
	Healthy struct {
		Successes    int
		HTTPStatuses []int
	}
	Unhealthy struct {
		HTTPFailures int
		TCPFailures  int
		Timeouts     int
		HTTPStatuses []int
	}
}

// Target is one upstream target, "host:port" with a weight.
type Target struct {
	Target string
	Weight *int
}

// Plugin is a plugin instance. At the top level, Service or Route may scope it.
type Plugin struct {
	Name    string
	Enabled *bool
	Config  map[string]any
	Service Ref
	Route   Ref
}

// Ref names another entity by name or id.
type Ref struct{ Name string }

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

// Load reads, validates and resolves a declarative file.
func Load(path string) (*Config, error) {
	f, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg, err := f.Resolve()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse validates and resolves a declarative file's content. decK reads
// files only, so the content goes through a temporary one.
func Parse(data []byte) (*Config, error) {
	dir, err := os.MkdirTemp("", "kongconf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "kong.yml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	f, err := readFile(path)
	if err != nil {
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
