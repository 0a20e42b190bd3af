package platform

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"

	"blogplatform/tools/internal/kongconf"
)

// replicaHost matches the compose names of replicas: auth1, blog2, ...
var replicaHost = regexp.MustCompile(`^([a-z][a-z_-]*?)(\d+)$`)

// fitToReplicas makes the Kong file's replica lists match the replicas that
// run: the load-balanced file names auth1 and auth2 (its compose services),
// while -replicas may start one or five. An upstream whose targets are all
// replicas of one service gets exactly one target per running replica (the
// file's weight for the ones it names, its first target's weight for the
// others), and apikey-auth-plugin's verification_urls likewise. Hosts that are
// not numbered replicas (auth in kong.yml) are left alone: the resolver maps
// them to every replica. It returns a note per change.
func fitToReplicas(cfg *kongconf.Config, replicas map[string]int) []string {
	var notes []string
	for _, up := range cfg.Upstreams {
		service, ok := commonService(up.Targets, replicas)
		if !ok {
			continue
		}
		n := replicas[service]
		byIndex := map[int]kongconf.Target{}
		firstPort, firstWeight := 8000, up.Targets[0].EffectiveWeight()
		for i, t := range up.Targets {
			host, port, _ := t.HostPort()
			idx, _ := strconv.Atoi(replicaHost.FindStringSubmatch(host)[2])
			byIndex[idx] = t
			if i == 0 {
				firstPort = port
			}
		}
		var targets []kongconf.Target
		for i := 1; i <= n; i++ {
			if t, ok := byIndex[i]; ok {
				targets = append(targets, t)
				continue
			}
			w := firstWeight
			targets = append(targets, kongconf.Target{Target: fmt.Sprintf("%s%d:%d", service, i, firstPort), Weight: &w})
		}
		if len(targets) != len(up.Targets) || len(byIndex) != n {
			notes = append(notes, fmt.Sprintf("upstream %s: %d target(s) in the file, %d %s replica(s) running: balancing over %s1..%s%d",
				up.Name, len(up.Targets), n, service, service, service, n))
		}
		up.Targets = targets
	}

	// The global plugin's config map is shared by every route: fitting is
	// idempotent, and dedupe keeps one note for it.
	for _, r := range cfg.Routes {
		p, ok := r.Plugins[kongconf.PluginAPIKey]
		if !ok || p.Config == nil {
			continue
		}
		raw, ok := p.Config["verification_urls"].([]any)
		if !ok || len(raw) == 0 {
			continue
		}
		fitted, note := fitURLs(raw, replicas)
		if fitted == nil {
			continue
		}
		p.Config["verification_urls"] = fitted
		if note != "" {
			notes = append(notes, "apikey-auth-plugin: "+note)
		}
	}
	return dedupe(notes)
}

// commonService reports the service all targets are numbered replicas of.
func commonService(targets []kongconf.Target, replicas map[string]int) (string, bool) {
	service := ""
	for _, t := range targets {
		host, _, err := t.HostPort()
		if err != nil {
			return "", false
		}
		m := replicaHost.FindStringSubmatch(host)
		if m == nil || (service != "" && m[1] != service) {
			return "", false
		}
		service = m[1]
	}
	_, known := replicas[service]
	return service, service != "" && known
}

// fitURLs rewrites a list of verification URLs on numbered replicas (all of
// one service, same scheme, port and path) to one URL per running replica.
// It returns nil when the list is not of that shape.
func fitURLs(raw []any, replicas map[string]int) ([]any, string) {
	var first *url.URL
	service := ""
	for _, item := range raw {
		s, ok := item.(string)
		if !ok {
			return nil, ""
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, ""
		}
		m := replicaHost.FindStringSubmatch(u.Hostname())
		if m == nil || (service != "" && m[1] != service) {
			return nil, ""
		}
		if first == nil {
			first = u
		} else if u.Scheme != first.Scheme || u.Port() != first.Port() || u.Path != first.Path {
			return nil, ""
		}
		service = m[1]
	}
	n, known := replicas[service]
	if !known {
		return nil, ""
	}
	out := make([]any, 0, n)
	for i := 1; i <= n; i++ {
		u := *first
		u.Host = fmt.Sprintf("%s%d", service, i)
		if port := first.Port(); port != "" {
			u.Host += ":" + port
		}
		out = append(out, u.String())
	}
	note := ""
	if len(raw) != n {
		note = fmt.Sprintf("%d verification URL(s) in the file, %d %s replica(s) running: asking %s1..%s%d", len(raw), n, service, service, service, n)
	}
	return out, note
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
