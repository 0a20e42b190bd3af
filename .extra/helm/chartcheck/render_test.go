package chartcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ServiceMonitor is the part of the Prometheus operator's ServiceMonitor
// the chart writes; decoding is strict, so a field the chart sets must be
// declared here (with the operator's JSON name) or the test fails.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames,omitempty"`
			Any        bool     `json:"any,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// Rendered is every object of one rendering, decoded into its API type.
type Rendered struct {
	Namespace       string
	Deployments     map[string]*appsv1.Deployment
	Services        map[string]*corev1.Service
	ServiceAccounts map[string]*corev1.ServiceAccount
	Secrets         map[string]*corev1.Secret
	ConfigMaps      map[string]*corev1.ConfigMap
	HPAs            map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs            map[string]*policyv1.PodDisruptionBudget
	NetworkPolicies map[string]*networkingv1.NetworkPolicy
	ServiceMonitors map[string]*ServiceMonitor
}

// target returns a new object of the kind apiVersion/kind, filed under
// name in its map.
func (r *Rendered) target(apiVersion, kind, name string) (any, error) {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return put(r.Deployments, name), nil
	case "v1/Service":
		return put(r.Services, name), nil
	case "v1/ServiceAccount":
		return put(r.ServiceAccounts, name), nil
	case "v1/Secret":
		return put(r.Secrets, name), nil
	case "v1/ConfigMap":
		return put(r.ConfigMaps, name), nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return put(r.HPAs, name), nil
	case "policy/v1/PodDisruptionBudget":
		return put(r.PDBs, name), nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return put(r.NetworkPolicies, name), nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return put(r.ServiceMonitors, name), nil
	}
	return nil, fmt.Errorf("unexpected object %s %s %q: add its type to the test", apiVersion, kind, name)
}

func put[T any](m map[string]*T, name string) *T {
	o := new(T)
	m[name] = o
	return o
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// renderChart renders the chart with the Helm SDK as `helm install` would
// (without the dependencies, which cannot be fetched here) and decodes every
// object strictly.
func renderChart(t *testing.T, values map[string]any) (*Rendered, error) {
	t.Helper()
	root := repoRoot(t)
	chrt, err := loader.Load(filepath.Join(root, ChartPath))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	opts := chartutil.ReleaseOptions{Name: testRelease, Namespace: testNamespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(chrt, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	r := &Rendered{
		Namespace:       testNamespace,
		Deployments:     map[string]*appsv1.Deployment{},
		Services:        map[string]*corev1.Service{},
		ServiceAccounts: map[string]*corev1.ServiceAccount{},
		Secrets:         map[string]*corev1.Secret{},
		ConfigMaps:      map[string]*corev1.ConfigMap{},
		HPAs:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs:            map[string]*policyv1.PodDisruptionBudget{},
		NetworkPolicies: map[string]*networkingv1.NetworkPolicy{},
		ServiceMonitors: map[string]*ServiceMonitor{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt, helpers
		}
		for i, doc := range docSeparator.Split(files[name], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := r.decode([]byte(doc), seen); err != nil {
				t.Fatalf("%s, document %d: %v\n%s", name, i, err, doc)
			}
		}
	}
	return r, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// decode converts one YAML document to JSON (duplicate keys refused) and
// decodes it into its Kubernetes type with unknown fields refused, so a
// misspelt or misplaced field fails here instead of being dropped by the
// API server.
func (r *Rendered) decode(doc []byte, seen map[string]bool) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return err
	}
	if head.Metadata.Name == "" {
		return fmt.Errorf("%s without a name", head.Kind)
	}
	key := head.Kind + "/" + head.Metadata.Name
	if seen[key] {
		return fmt.Errorf("%s rendered twice", key)
	}
	seen[key] = true
	obj, err := r.target(head.APIVersion, head.Kind, head.Metadata.Name)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}
