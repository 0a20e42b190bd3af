// Package chartcheck holds the Helm chart's Kong configuration generator and,
// in its tests, the offline validation of the chart (rendered with the Helm
// SDK, every object decoded strictly into its Kubernetes API type).
//
// The chart's Kong configuration is derived from kong/kong-load-balanced.yml,
// the compose stack's file, so the routes, services, upstream health checks
// and plugin settings exist in one place. Only the addresses differ: compose
// names each replica (auth1:8000, auth2:8000), Kubernetes has one DNS name
// per Service that resolves to every ready pod. The generator replaces each
// replica host with a placeholder naming the service; the chart's ConfigMap
// template substitutes the Service's DNS name.
package chartcheck

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Paths relative to the repository root.
const (
	KongSourcePath = "kong/kong-load-balanced.yml"
	ChartPath      = ".extra/helm/blog-platform"
	ChartKongPath  = ChartPath + "/files/kong.yml"
	// RegenerateCommand rewrites ChartKongPath from KongSourcePath; run it
	// from the repository root after changing the Kong file.
	RegenerateCommand = "go run ./.extra/helm/chartcheck/cmd/kongconfig"
)

// Services are the platform's services behind Kong, as named in compose
// (auth1, auth2 are replicas of auth).
var Services = []string{"auth", "blog"}

// Placeholder is what the generated file holds instead of a service's host;
// the chart replaces it with the Service's DNS name.
func Placeholder(service string) string { return "__SERVICE_" + service + "__" }

// replicaHost is a compose replica host name: a service name and an optional
// replica number.
var replicaHost = regexp.MustCompile(`^([a-z_]+?)[0-9]*$`)

// anyReplicaRef finds a compose replica address left anywhere in the output,
// so a new field holding an address cannot slip through unreplaced.
var anyReplicaRef = regexp.MustCompile(`\b(auth|blog)[0-9]+(:[0-9]+)?\b`)

// GenerateKong turns the compose stack's Kong file into the chart's: every
// upstream target and every plugin verification URL names a service's
// placeholder instead of a replica, and duplicates (two replicas of one
// service) collapse into one entry. Comments are kept.
func GenerateKong(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", KongSourcePath, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", KongSourcePath)
	}
	var errs []error
	targets, urls := 0, 0
	walk(doc.Content[0], func(key string, value *yaml.Node) {
		switch key {
		case "targets":
			n, err := rewriteTargets(value)
			targets += n
			errs = append(errs, err)
		case "verification_urls":
			n, err := rewriteURLs(value)
			urls += n
			errs = append(errs, err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if targets == 0 || urls == 0 {
		return nil, fmt.Errorf("%s: found %d upstream targets and %d verification URLs; has the file changed shape?", KongSourcePath, targets, urls)
	}
	if ref := findReplicaRef(doc.Content[0]); ref != "" {
		return nil, fmt.Errorf("%s: replica address %q outside upstream targets and verification_urls; teach the generator about that field", KongSourcePath, ref)
	}
	var out bytes.Buffer
	out.WriteString("# GENERATED from " + KongSourcePath + " by `" + RegenerateCommand + "`\n" +
		"# (run from the repository root); do not edit. The chart's kong ConfigMap\n" +
		"# replaces each service's placeholder with that Service's DNS name.\n")
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// walk calls fn for every key/value pair of every mapping under n.
func walk(n *yaml.Node, fn func(key string, value *yaml.Node)) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			fn(n.Content[i].Value, n.Content[i+1])
		}
	}
	for _, c := range n.Content {
		walk(c, fn)
	}
}

// findReplicaRef returns the first scalar value (comments aside) that still
// names a compose replica.
func findReplicaRef(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return anyReplicaRef.FindString(n.Value)
	}
	for _, c := range n.Content {
		if ref := findReplicaRef(c); ref != "" {
			return ref
		}
	}
	return ""
}

// serviceOf maps a replica host (auth2) to its service (auth).
func serviceOf(host string) (string, error) {
	m := replicaHost.FindStringSubmatch(host)
	if m == nil || !slices.Contains(Services, m[1]) {
		return "", fmt.Errorf("%s: host %q is not a replica of %v", KongSourcePath, host, Services)
	}
	return m[1], nil
}

// rewriteTargets replaces `target: auth1:8000` entries by one
// `target: __SERVICE_auth__:8000` per service and port.
func rewriteTargets(seq *yaml.Node) (int, error) {
	if seq.Kind != yaml.SequenceNode {
		return 0, fmt.Errorf("%s: targets is not a list", KongSourcePath)
	}
	var kept []*yaml.Node
	seen := map[string]bool{}
	for _, item := range seq.Content {
		var target *yaml.Node
		walk(item, func(key string, value *yaml.Node) {
			if key == "target" && target == nil {
				target = value
			}
		})
		if target == nil {
			return 0, fmt.Errorf("%s: an upstream target has no target field", KongSourcePath)
		}
		host, port, ok := strings.Cut(target.Value, ":")
		if !ok {
			return 0, fmt.Errorf("%s: target %q has no port", KongSourcePath, target.Value)
		}
		svc, err := serviceOf(host)
		if err != nil {
			return 0, err
		}
		target.Value = Placeholder(svc) + ":" + port
		if !seen[target.Value] {
			seen[target.Value] = true
			kept = append(kept, item)
		}
	}
	seq.Content = kept
	return len(kept), nil
}

// rewriteURLs replaces the hosts of the plugin's verification URLs the same
// way.
func rewriteURLs(seq *yaml.Node) (int, error) {
	if seq.Kind != yaml.SequenceNode {
		return 0, fmt.Errorf("%s: verification_urls is not a list", KongSourcePath)
	}
	var kept []*yaml.Node
	seen := map[string]bool{}
	for _, item := range seq.Content {
		u, err := url.Parse(item.Value)
		if err != nil || u.Host == "" {
			return 0, fmt.Errorf("%s: verification URL %q: not an absolute URL", KongSourcePath, item.Value)
		}
		svc, err := serviceOf(u.Hostname())
		if err != nil {
			return 0, err
		}
		host := Placeholder(svc)
		if p := u.Port(); p != "" {
			host += ":" + p
		}
		u.Host = host
		item.Value = u.String()
		if !seen[item.Value] {
			seen[item.Value] = true
			kept = append(kept, item)
		}
	}
	seq.Content = kept
	return len(kept), nil
}

// RepoRoot returns the directory holding go.work at or above dir.
func RepoRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found: run from inside the repository")
		}
		dir = parent
	}
}

// GenerateKongFile reads the source file under root and returns the chart
// file's expected content.
func GenerateKongFile(root string) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(KongSourcePath)))
	if err != nil {
		return nil, err
	}
	return GenerateKong(src)
}
