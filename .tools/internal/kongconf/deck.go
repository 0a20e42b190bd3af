package kongconf

import (
	"fmt"

	"github.com/kong/go-database-reconciler/pkg/file"
	"github.com/kong/go-kong/kong"
)

// readFile reads and validates a declarative file with decK's file package:
// its JSON schema of Kong's entities rejects unknown fields, wrong types and
// wrong shapes, and its types decode the values (a service's url is split
// into protocol, host, port and path as Kong does). Templates are not
// rendered: Kong itself reads the file as written.
func readFile(path string) (*File, error) {
	content, err := file.GetContentFromFilesWithEnvVars([]string{path}, file.EnvVarsSkip)
	if err != nil {
		if content == nil {
			return nil, err
		}
		// decK refuses a file without entities (to sync it would empty a
		// workspace) and then returns an empty, not a nil, content; for the
		// gateway that is a file with no routes, which Resolve reports.
		content = &file.Content{}
	}
	return fromDeck(content)
}

// fromDeck keeps what the local gateway needs of decK's content.
func fromDeck(c *file.Content) (*File, error) {
	f := &File{FormatVersion: c.FormatVersion}
	for i := range c.Services {
		s := &c.Services[i]
		svc := Service{
			Name:           str(s.Name),
			Protocol:       str(s.Protocol),
			Host:           str(s.Host),
			Port:           num(s.Port),
			Path:           str(s.Path),
			ConnectTimeout: s.ConnectTimeout,
			WriteTimeout:   s.WriteTimeout,
			ReadTimeout:    s.ReadTimeout,
			Retries:        s.Retries,
		}
		for _, r := range s.Routes {
			svc.Routes = append(svc.Routes, route(&r.Route, r.Plugins))
		}
		for _, p := range s.Plugins {
			svc.Plugins = append(svc.Plugins, plugin(p))
		}
		f.Services = append(f.Services, svc)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		f.Routes = append(f.Routes, route(&r.Route, r.Plugins))
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		up := Upstream{Name: str(u.Name), Algorithm: str(u.Algorithm), Healthchecks: healthchecks(u.Healthchecks)}
		for _, t := range u.Targets {
			up.Targets = append(up.Targets, Target{Target: str(t.Target.Target), Weight: t.Weight})
		}
		f.Upstreams = append(f.Upstreams, up)
	}
	for i := range c.Plugins {
		p := &c.Plugins[i]
		if p.ConfigSource != nil {
			// decK merges _plugin_configs into the plugin when it syncs;
			// Kong reading the file itself knows no such field.
			return nil, fmt.Errorf("plugin %s: _config is a decK feature Kong's declarative loader does not read", str(p.Name))
		}
		f.Plugins = append(f.Plugins, plugin(p))
	}
	return f, nil
}

func route(r *kong.Route, plugins []*file.FPlugin) Route {
	out := Route{
		Name:         str(r.Name),
		Paths:        strs(r.Paths),
		Methods:      strs(r.Methods),
		Hosts:        strs(r.Hosts),
		Headers:      r.Headers,
		StripPath:    r.StripPath,
		PathHandling: str(r.PathHandling),
	}
	if r.Service != nil {
		out.Service = ref(r.Service.Name, r.Service.ID)
	}
	for _, p := range plugins {
		out.Plugins = append(out.Plugins, plugin(p))
	}
	return out
}

func plugin(p *file.FPlugin) Plugin {
	out := Plugin{Name: str(p.Name), Enabled: p.Enabled, Config: p.Config}
	// decK keeps a top-level plugin's service or route reference, a name
	// or an id, in the referenced entity's ID.
	if p.Service != nil {
		out.Service = ref(p.Service.Name, p.Service.ID)
	}
	if p.Route != nil {
		out.Route = ref(p.Route.Name, p.Route.ID)
	}
	return out
}

func healthchecks(h *kong.Healthcheck) Healthchecks {
	var out Healthchecks
	if h == nil {
		return out
	}
	if h.Threshold != nil {
		out.Threshold = *h.Threshold
	}
	if a := h.Active; a != nil {
		out.Active.Type = str(a.Type)
		out.Active.HTTPPath = str(a.HTTPPath)
		out.Active.Timeout = float64(num(a.Timeout))
		out.Active.Concurrency = num(a.Concurrency)
		if ok := a.Healthy; ok != nil {
			out.Active.Healthy.Interval = float64(num(ok.Interval))
			out.Active.Healthy.Successes = num(ok.Successes)
			out.Active.Healthy.HTTPStatuses = ok.HTTPStatuses
		}
		if bad := a.Unhealthy; bad != nil {
			out.Active.Unhealthy.Interval = float64(num(bad.Interval))
			out.Active.Unhealthy.HTTPFailures = num(bad.HTTPFailures)
			out.Active.Unhealthy.TCPFailures = num(bad.TCPFailures)
			out.Active.Unhealthy.Timeouts = num(bad.Timeouts)
			out.Active.Unhealthy.HTTPStatuses = bad.HTTPStatuses
		}
	}
	if p := h.Passive; p != nil {
		out.Passive.Type = str(p.Type)
		if ok := p.Healthy; ok != nil {
			out.Passive.Healthy.Successes = num(ok.Successes)
			out.Passive.Healthy.HTTPStatuses = ok.HTTPStatuses
		}
		if bad := p.Unhealthy; bad != nil {
			out.Passive.Unhealthy.HTTPFailures = num(bad.HTTPFailures)
			out.Passive.Unhealthy.TCPFailures = num(bad.TCPFailures)
			out.Passive.Unhealthy.Timeouts = num(bad.Timeouts)
			out.Passive.Unhealthy.HTTPStatuses = bad.HTTPStatuses
		}
	}
	return out
}

func ref(name, id *string) Ref {
	if name != nil && *name != "" {
		return Ref{Name: *name}
	}
	return Ref{Name: str(id)}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func num(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func strs(ps []*string) []string {
	if ps == nil {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = str(p)
	}
	return out
}
