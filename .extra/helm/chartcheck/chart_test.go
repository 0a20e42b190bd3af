package chartcheck

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/gin-gonic/gin"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	yamlv3 "go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	authconfig "blogplatform/auth_service/config"
	blogconfig "blogplatform/blog_service/config"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/health"
)

const (
	testRelease   = "prod"
	testNamespace = "blog"
	fullname      = "prod-blog-platform"
	clusterDomain = "cluster.local"
)

// Not real keys: the chart only stores them; the services read them at start.
const jwtValues = `
secrets:
  jwt:
    privateKey: "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"
    publicKey: "-----BEGIN PUBLIC KEY-----\nMIIBIj\n-----END PUBLIC KEY-----\n"
`

// chartCase is one set of values and what its rendering must contain.
type chartCase struct {
	name   string
	values string
	// replicas of auth and blog when autoscaling is off (0: an HPA owns it).
	replicas       int32
	pdb            bool
	networkPolicy  bool
	serviceMonitor bool
	kongType       corev1.ServiceType
	// existingSecret: the services read this Secret and the chart makes none.
	existingSecret string
	// bundled dependencies (their NetworkPolicies).
	bundled []string
	// redisEnv: the Redis variables both services get (besides user and password).
	redisEnv map[string]string
	natsURL  string
	natsCred bool // NATS_CREDS instead of user and password
	// dbHosts: the hosts of the chart-made DB_URI (nil: external URI).
	dbHosts      []string
	monitoringNS map[string]string
}

func svcHost(component string) string {
	return fmt.Sprintf("%s-%s.%s.svc.%s", fullname, component, testNamespace, clusterDomain)
}

func podHosts(prefix, headless string, n, port int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%d.%s.%s.svc.%s:%d", prefix, i, headless, testNamespace, clusterDomain, port))
	}
	return out
}

var cases = []chartCase{
	{
		name:          "default",
		values:        jwtValues,
		pdb:           true,
		networkPolicy: true,
		kongType:      corev1.ServiceTypeClusterIP,
		bundled:       []string{"nats", "mongodb", "redis"},
		redisEnv: map[string]string{
			"REDIS_SENTINEL_ADDRS":  strings.Join(podHosts("prod-redis-node", "prod-redis-headless", 3, 26379), ","),
			"REDIS_SENTINEL_MASTER": "mymaster",
		},
		natsURL:      "nats://" + strings.Join(podHosts("prod-nats", "prod-nats-headless", 3, 4222), ",nats://"),
		dbHosts:      podHosts("prod-mongodb", "prod-mongodb-headless", 3, 27017),
		monitoringNS: map[string]string{"kubernetes.io/metadata.name": "monitoring"},
	},
	{
		name:           "external infrastructure",
		values:         "@examples/external.yaml",
		pdb:            true,
		networkPolicy:  true,
		serviceMonitor: true,
		kongType:       corev1.ServiceTypeLoadBalancer,
		existingSecret: "platform-secrets",
		redisEnv: map[string]string{
			"REDIS_CLUSTER_ADDRS": "redis-0.cache.example.net:6379,redis-1.cache.example.net:6379,redis-2.cache.example.net:6379",
			"REDIS_DB":            "0",
		},
		natsURL:      "nats://n1.example.net:4222,nats://n2.example.net:4222,nats://n3.example.net:4222",
		natsCred:     true,
		monitoringNS: map[string]string{"team": "observability"},
	},
	{
		name: "external sentinel and connection strings",
		values: jwtValues + `
  externalDbUri:
    auth: "mongodb+srv://auth-user:pw1@db.example.net/auth-prod-db?retryWrites=true&w=majority"
    blog: "mongodb+srv://blog-user:pw2@db.example.net/blog-prod-db?retryWrites=true&w=majority"
nats: {enabled: false}
mongodb: {enabled: false}
redis: {enabled: false}
externalRedis:
  mode: sentinel
  sentinelAddrs: [s1.example.net:26379, s2.example.net:26379, s3.example.net:26379]
  sentinelMaster: main
externalNats:
  urls: [nats://n1.example.net:4222, nats://n2.example.net:4222]
`,
		pdb:           true,
		networkPolicy: true,
		kongType:      corev1.ServiceTypeClusterIP,
		redisEnv: map[string]string{
			"REDIS_SENTINEL_ADDRS":  "s1.example.net:26379,s2.example.net:26379,s3.example.net:26379",
			"REDIS_SENTINEL_MASTER": "main",
		},
		natsURL:      "nats://n1.example.net:4222,nats://n2.example.net:4222",
		monitoringNS: map[string]string{"kubernetes.io/metadata.name": "monitoring"},
	},
	{
		name:     "small dev",
		values:   "@examples/dev.yaml" + jwtValues,
		replicas: 1,
		kongType: corev1.ServiceTypeClusterIP,
		bundled:  []string{"nats", "mongodb", "redis"},
		redisEnv: map[string]string{
			"REDIS_HOST": "prod-redis-master." + testNamespace + ".svc." + clusterDomain,
			"REDIS_PORT": "6379",
		},
		natsURL: "nats://" + podHosts("prod-nats", "prod-nats-headless", 1, 4222)[0],
		dbHosts: podHosts("prod-mongodb", "prod-mongodb-headless", 1, 27017),
	},
}

// parseValues reads a value set; "@<file>" at the start stands for that
// file of the chart (the examples the README points to).
func parseValues(t *testing.T, s string) map[string]any {
	t.Helper()
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		file, extra, _ := strings.Cut(rest, "\n")
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), ChartPath, file))
		if err != nil {
			t.Fatal(err)
		}
		s = string(raw) + "\n" + extra
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &vals); err != nil {
		t.Fatalf("test values: %v", err)
	}
	return vals
}

func TestChart(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := renderChart(t, parseValues(t, tc.values))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			c := &check{t: t, r: r, tc: tc}
			c.objectSet()
			for _, component := range Services {
				c.service(component)
			}
			c.kong()
			c.networkPolicies()
			c.serviceMonitors()
		})
	}
}

type check struct {
	t  *testing.T
	r  *Rendered
	tc chartCase
}

func name(component string) string { return fullname + "-" + component }

// objectSet: exactly the objects this value set calls for.
func (c *check) objectSet() {
	t, r, tc := c.t, c.r, c.tc
	want := func(kind string, got []string, names ...string) {
		t.Helper()
		slices.Sort(got)
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Errorf("%s: rendered %v, want %v", kind, got, names)
		}
	}
	apps := []string{name("auth"), name("blog"), name("kong")}
	want("Deployments", keys(r.Deployments), apps...)
	want("Services", keys(r.Services), apps...)
	want("ServiceAccounts", keys(r.ServiceAccounts), apps...)
	want("ConfigMaps", keys(r.ConfigMaps), name("kong"))
	var hpas, pdbs, nps, sms, secrets []string
	if tc.replicas == 0 {
		hpas = []string{name("auth"), name("blog")}
	}
	if tc.pdb {
		pdbs = apps
	}
	if tc.networkPolicy {
		nps = slices.Clone(apps)
		for _, dep := range tc.bundled {
			nps = append(nps, fullname+"-"+dep)
		}
	}
	if tc.serviceMonitor {
		sms = []string{name("auth"), name("blog")}
	}
	if tc.existingSecret == "" {
		secrets = []string{"blog-platform-secrets"}
		if slices.Contains(tc.bundled, "redis") {
			secrets = append(secrets, "blog-platform-redis-acl")
		}
	}
	want("HorizontalPodAutoscalers", keys(r.HPAs), hpas...)
	want("PodDisruptionBudgets", keys(r.PDBs), pdbs...)
	want("NetworkPolicies", keys(r.NetworkPolicies), nps...)
	want("ServiceMonitors", keys(r.ServiceMonitors), sms...)
	want("Secrets", keys(r.Secrets), secrets...)
	for _, sa := range r.ServiceAccounts {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa.Name)
		}
	}
	if tc.existingSecret == "" {
		// The generated secrets are real values, never the published examples.
		for key, v := range r.Secrets["blog-platform-secrets"].Data {
			if len(v) == 0 || chassisconfig.IsExampleSecret(string(v)) {
				t.Errorf("Secret key %s: empty or an example value", key)
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

// deploymentsSelectedBy returns the Deployments whose pods sel selects.
func (c *check) deploymentsSelectedBy(sel *metav1.LabelSelector) []string {
	var out []string
	for n, d := range c.r.Deployments {
		if selects(c.t, sel, d.Spec.Template.Labels) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func containerPort(ctr *corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range ctr.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// workload: what every Deployment of the chart must satisfy.
func (c *check) workload(d *appsv1.Deployment) *corev1.Container {
	t := c.t
	t.Helper()
	pod := d.Spec.Template
	if !selects(t, d.Spec.Selector, pod.Labels) {
		t.Errorf("%s: selector %v does not match its pod labels %v", d.Name, d.Spec.Selector, pod.Labels)
	}
	if got := c.deploymentsSelectedBy(d.Spec.Selector); !slices.Equal(got, []string{d.Name}) {
		t.Errorf("%s: its selector also selects %v", d.Name, got)
	}
	if s := d.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("%s: strategy %+v, want RollingUpdate with maxUnavailable 0", d.Name, s)
	}
	spec := pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", d.Name)
	}
	if _, ok := c.r.ServiceAccounts[spec.ServiceAccountName]; !ok {
		t.Errorf("%s: service account %q is not rendered", d.Name, spec.ServiceAccountName)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod must run as a non-root user, got %+v", d.Name, psc)
	}
	// Spread over nodes, counting this Deployment's own pods.
	spread := false
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.TopologyKey == "kubernetes.io/hostname" && tsc.MaxSkew == 1 && selects(t, tsc.LabelSelector, pod.Labels) {
			spread = true
		}
	}
	if !spread {
		t.Errorf("%s: no topology spread across nodes selecting its pods: %+v", d.Name, spec.TopologySpreadConstraints)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.Name, len(spec.Containers))
	}
	ctr := &spec.Containers[0]
	sc := ctr.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: container security context %+v: want a read-only root, no privilege escalation, all capabilities dropped", d.Name, sc)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := ctr.Resources.Requests[res], ctr.Resources.Limits[res]
		if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %v / limit %v: both set, request <= limit", d.Name, res, req.String(), lim.String())
		}
	}
	if ctr.StartupProbe == nil || ctr.ReadinessProbe == nil || ctr.LivenessProbe == nil {
		t.Errorf("%s: startup, readiness and liveness probes are all required", d.Name)
	}
	// Every mount has its volume, every volume's source exists.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	tmp := false
	for _, m := range ctr.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("%s: mount %s has no volume", d.Name, m.Name)
			continue
		}
		if m.MountPath == "/tmp" && v.EmptyDir != nil {
			tmp = true
		}
		if v.Secret != nil {
			c.secretKeys(d.Name, v.Secret.SecretName, v.Secret.Items)
		}
		if v.ConfigMap != nil {
			cm, ok := c.r.ConfigMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("%s: volume %s: ConfigMap %s not rendered", d.Name, v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("%s: volume %s: ConfigMap %s has no key %s", d.Name, v.Name, v.ConfigMap.Name, it.Key)
				}
			}
		}
	}
	if !tmp {
		t.Errorf("%s: a read-only root needs an emptyDir at /tmp", d.Name)
	}
	// Replicas: fixed, or owned by an HPA naming this Deployment.
	if c.tc.replicas != 0 && d.Name != name("kong") {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != c.tc.replicas {
			t.Errorf("%s: replicas %v, want %d", d.Name, d.Spec.Replicas, c.tc.replicas)
		}
	}
	c.budget(d)
	return ctr
}

// secretKeys: a volume's Secret is the chart's (with those keys) or the
// operator's existing one.
func (c *check) secretKeys(owner, secret string, items []corev1.KeyToPath) {
	t := c.t
	t.Helper()
	if s, ok := c.r.Secrets[secret]; ok {
		for _, it := range items {
			if _, ok := s.Data[it.Key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", owner, secret, it.Key)
			}
		}
		return
	}
	allowed := []string{c.tc.existingSecret}
	if c.tc.natsCred {
		allowed = append(allowed, "nats-creds")
	}
	if secret == "" || !slices.Contains(allowed, secret) {
		t.Errorf("%s: Secret %q is neither rendered nor a configured existing secret", owner, secret)
	}
}

// budget: the PDB and the HPA name this Deployment and leave room to drain a
// node.
func (c *check) budget(d *appsv1.Deployment) {
	t := c.t
	t.Helper()
	minReplicas := int32(0)
	if d.Spec.Replicas != nil {
		minReplicas = *d.Spec.Replicas
	}
	if hpa, ok := c.r.HPAs[d.Name]; ok {
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != d.Name {
			t.Errorf("HPA %s: scaleTargetRef %+v, want Deployment %s", hpa.Name, ref, d.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
			t.Errorf("HPA %s: min %v max %d: want 2 <= min <= max", hpa.Name, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		} else {
			minReplicas = *hpa.Spec.MinReplicas
		}
		if d.Spec.Replicas != nil {
			t.Errorf("%s: sets replicas although an HPA scales it (every upgrade would reset the count)", d.Name)
		}
		if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA %s: want a CPU utilisation target", hpa.Name)
		}
	}
	pdb, ok := c.r.PDBs[d.Name]
	if !ok {
		return
	}
	if got := c.deploymentsSelectedBy(pdb.Spec.Selector); !slices.Equal(got, []string{d.Name}) {
		t.Errorf("PDB %s selects the pods of %v, want %s only", pdb.Name, got, d.Name)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || int32(pdb.Spec.MinAvailable.IntValue()) >= minReplicas {
		t.Errorf("PDB %s: minAvailable %v with at least %d replicas: want 1 <= minAvailable < replicas (a node can drain)", pdb.Name, pdb.Spec.MinAvailable, minReplicas)
	}
}

// envOf returns the container's environment: literal values, and secret
// references as "secret:<name>/<key>".
func envOf(ctr *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// Variables the services need in a release deployment on Kubernetes: their
// defaults in code suit only a developer's machine (localhost dependencies,
// no credentials, no trusted proxy, no drain).
var requiredCommon = []string{
	"GO_MODE", "ALLOW_EXAMPLE_SECRETS", "TRUSTED_PROXIES", "SERVER_PORT", "METRICS_PORT",
	"SHUTDOWN_DRAIN_DELAY", "SHUTDOWN_GRACE_PERIOD",
	"DB_URI", "DB_NAME", "REDIS_USERNAME", "REDIS_PASSWORD", "NATS_URL",
}

var requiredAuth = []string{"SEED_API_KEY", "SEED_ADMIN_EMAIL", "SEED_ADMIN_PASSWORD", "RSA_PRIVATE_KEY_PATH", "RSA_PUBLIC_KEY_PATH"}

// secretVars must come from a Secret, never from a literal in the manifest.
var secretVars = []string{"DB_URI", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD", "NATS_PASSWORD", "SEED_API_KEY", "SEED_ADMIN_PASSWORD"}

// service checks one of auth and blog.
func (c *check) service(component string) {
	t := c.t
	d, ok := c.r.Deployments[name(component)]
	if !ok {
		t.Fatalf("no Deployment %s", name(component))
	}
	ctr := c.workload(d)
	env := envOf(ctr)
	spec := d.Spec.Template.Spec

	// Required variables, secrets from Secrets, every name one the service reads.
	required := slices.Clone(requiredCommon)
	for k := range c.tc.redisEnv {
		required = append(required, k)
	}
	if c.tc.natsCred {
		required = append(required, "NATS_CREDS")
	} else {
		required = append(required, "NATS_USER", "NATS_PASSWORD")
	}
	if component == "auth" {
		required = append(required, requiredAuth...)
	}
	for _, k := range required {
		if env[k] == "" {
			t.Errorf("%s: %s is not set", d.Name, k)
		}
	}
	for _, k := range secretVars {
		if v, ok := env[k]; ok && !strings.HasPrefix(v, "secret:") {
			t.Errorf("%s: %s is a literal in the manifest; it must come from a Secret", d.Name, k)
		}
	}
	read := configSource(t)
	for k := range env {
		if !strings.Contains(read, strconv.Quote(k)) {
			t.Errorf("%s: sets %s, which no configuration code of the services reads", d.Name, k)
		}
	}
	if env["GO_MODE"] != "release" || env["ALLOW_EXAMPLE_SECRETS"] != "false" {
		t.Errorf("%s: GO_MODE %q ALLOW_EXAMPLE_SECRETS %q: want release and false", d.Name, env["GO_MODE"], env["ALLOW_EXAMPLE_SECRETS"])
	}
	for k, want := range c.tc.redisEnv {
		if env[k] != want {
			t.Errorf("%s: %s = %q, want %q", d.Name, k, env[k], want)
		}
	}
	// A replica set: acknowledged writes survive a failover; stale-tolerant
	// reads may use secondaries.
	if env["DB_WRITE_CONCERN"] != "majority" || env["DB_READ_PREFERENCE"] != "secondaryPreferred" {
		t.Errorf("%s: DB_WRITE_CONCERN %q DB_READ_PREFERENCE %q: want majority and secondaryPreferred",
			d.Name, env["DB_WRITE_CONCERN"], env["DB_READ_PREFERENCE"])
	}
	if env["NATS_URL"] != c.tc.natsURL {
		t.Errorf("%s: NATS_URL = %q, want %q", d.Name, env["NATS_URL"], c.tc.natsURL)
	}

	// The service's own loader accepts the rendered environment in release
	// mode (secrets resolved from the rendered Secret, or stand-ins for an
	// existing one).
	resolved := c.resolve(d.Name, env)
	var err error
	if component == "auth" {
		_, err = authconfig.Load(chassisconfig.FromMap(resolved))
	} else {
		_, err = blogconfig.Load(chassisconfig.FromMap(resolved))
	}
	if err != nil {
		t.Errorf("%s: the service refuses the rendered configuration:\n%v", d.Name, err)
	}
	if c.tc.dbHosts != nil {
		c.dbURI(d.Name, resolved["DB_URI"], resolved["DB_NAME"])
	}

	// Files named by variables are mounted.
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, k := range []string{"RSA_PRIVATE_KEY_PATH", "RSA_PUBLIC_KEY_PATH", "NATS_CREDS"} {
		p, ok := env[k]
		if !ok {
			continue
		}
		vol, ok := mounts[path.Dir(p)]
		if !ok {
			t.Errorf("%s: %s=%s: nothing is mounted at %s", d.Name, k, p, path.Dir(p))
			continue
		}
		found := false
		for _, v := range spec.Volumes {
			if v.Name == vol && v.Secret != nil {
				for _, it := range v.Secret.Items {
					found = found || it.Path == path.Base(p)
				}
			}
		}
		if !found {
			t.Errorf("%s: %s=%s: volume %s has no item %s", d.Name, k, p, vol, path.Base(p))
		}
	}

	// Ports: the container ports are the ones the service listens on.
	httpPort, ok := containerPort(ctr, intstr.FromString("http"))
	if !ok || strconv.Itoa(int(httpPort)) != env["SERVER_PORT"] {
		t.Errorf("%s: container port http %d, SERVER_PORT %q", d.Name, httpPort, env["SERVER_PORT"])
	}
	metricsPort, ok := containerPort(ctr, intstr.FromString("metrics"))
	if !ok || strconv.Itoa(int(metricsPort)) != env["METRICS_PORT"] {
		t.Errorf("%s: container port metrics %d, METRICS_PORT %q", d.Name, metricsPort, env["METRICS_PORT"])
	}

	// Probes: real routes of the service, on its HTTP port.
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", ctr.StartupProbe, "/health/live"},
		{"readiness", ctr.ReadinessProbe, "/health/ready"},
		{"liveness", ctr.LivenessProbe, "/health/live"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: %s probe must be an HTTP GET", d.Name, p.kind)
			continue
		}
		got := p.probe.HTTPGet
		if port, ok := containerPort(ctr, got.Port); !ok || port != httpPort {
			t.Errorf("%s: %s probe port %v is not the HTTP port %d", d.Name, p.kind, got.Port.String(), httpPort)
		}
		if got.Path != p.path {
			t.Errorf("%s: %s probe path %q, want %q", d.Name, p.kind, got.Path, p.path)
		}
		if status := healthStatus(t, got.Path, false); status != http.StatusOK {
			t.Errorf("%s: %s probe %s answers %d on a healthy service", d.Name, p.kind, got.Path, status)
		}
	}
	// Readiness is the probe that turns 503 while the service drains;
	// liveness is not (a draining pod must not be restarted).
	if healthStatus(t, ctr.ReadinessProbe.HTTPGet.Path, true) != http.StatusServiceUnavailable ||
		healthStatus(t, ctr.LivenessProbe.HTTPGet.Path, true) != http.StatusOK {
		t.Errorf("%s: readiness must fail and liveness pass while draining", d.Name)
	}

	// Shutdown: preStop sleeps the drain delay, and the pod has time for it,
	// the service's own drain and both shutdown steps.
	drain, err1 := time.ParseDuration(env["SHUTDOWN_DRAIN_DELAY"])
	grace, err2 := time.ParseDuration(env["SHUTDOWN_GRACE_PERIOD"])
	if err1 != nil || err2 != nil || drain <= 0 {
		t.Fatalf("%s: SHUTDOWN_DRAIN_DELAY %q SHUTDOWN_GRACE_PERIOD %q", d.Name, env["SHUTDOWN_DRAIN_DELAY"], env["SHUTDOWN_GRACE_PERIOD"])
	}
	pre := ctr.Lifecycle
	if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil || time.Duration(pre.PreStop.Sleep.Seconds)*time.Second != drain {
		t.Errorf("%s: preStop %+v: want a sleep of SHUTDOWN_DRAIN_DELAY (%v)", d.Name, pre, drain)
	}
	need := 2*drain + 2*grace
	if tg := spec.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %v must exceed preStop + drain + 2 x grace = %v", d.Name, tg, need)
	}

	// Service: headless, selecting exactly these pods, ports resolving to
	// container ports.
	s, ok := c.r.Services[d.Name]
	if !ok {
		t.Fatalf("no Service %s", d.Name)
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (Kong balances over the pods)", s.Name, s.Spec.ClusterIP)
	}
	c.servicePorts(s, d, map[string]int32{"http": httpPort, "metrics": metricsPort})
}

func (c *check) servicePorts(s *corev1.Service, d *appsv1.Deployment, want map[string]int32) {
	t := c.t
	t.Helper()
	sel := &metav1.LabelSelector{MatchLabels: s.Spec.Selector}
	if got := c.deploymentsSelectedBy(sel); !slices.Equal(got, []string{d.Name}) {
		t.Errorf("Service %s selects the pods of %v, want %s", s.Name, got, d.Name)
	}
	got := map[string]int32{}
	for _, p := range s.Spec.Ports {
		port, ok := containerPort(&d.Spec.Template.Spec.Containers[0], p.TargetPort)
		if !ok {
			t.Errorf("Service %s: port %s targets %v, which the pod does not expose", s.Name, p.Name, p.TargetPort.String())
		}
		got[p.Name] = port
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Service %s: ports reach container ports %v, want %v", s.Name, got, want)
	}
}

// resolve replaces secret references by the rendered Secret's values (a
// missing key fails), or by stand-ins when the Secret is the operator's.
func (c *check) resolve(owner string, env map[string]string) map[string]string {
	t := c.t
	t.Helper()
	out := map[string]string{}
	for k, v := range env {
		ref, ok := strings.CutPrefix(v, "secret:")
		if !ok {
			out[k] = v
			continue
		}
		secret, key, _ := strings.Cut(ref, "/")
		if s, ok := c.r.Secrets[secret]; ok {
			val, ok := s.Data[key]
			if !ok {
				t.Errorf("%s: %s refers to key %s, which Secret %s lacks", owner, k, key, secret)
			}
			out[k] = string(val)
			continue
		}
		if secret != c.tc.existingSecret {
			t.Errorf("%s: %s refers to Secret %s, neither rendered nor configured", owner, k, secret)
		}
		out[k] = "from-existing-" + key
		if strings.HasSuffix(key, "-db-uri") {
			out[k] = "mongodb://user:from-existing@db.example.net:27017/" + env["DB_NAME"] + "?replicaSet=rs0"
		}
	}
	if _, ok := out["NATS_CREDS"]; ok {
		// The service reads the mounted file at start; stand in a valid one.
		out["NATS_CREDS"] = credsFile(t)
	}
	return out
}

// credsFile writes a NATS credentials file (a user JWT and its seed) like
// the one an operator's Secret holds.
func credsFile(t *testing.T) string {
	t.Helper()
	okp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	seed, _ := ukp.Seed()
	encoded, err := jwt.NewUserClaims(upub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(encoded, seed)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "service.creds")
	if err := os.WriteFile(p, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dbURI: the chart-made connection string names every replica-set member.
func (c *check) dbURI(owner, raw, dbName string) {
	t := c.t
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("%s: DB_URI does not parse: %v", owner, err)
		return
	}
	if u.Scheme != "mongodb" || u.User == nil || u.Path != "/"+dbName || u.Query().Get("replicaSet") != "rs0" ||
		u.Query().Get("authSource") != dbName {
		t.Errorf("%s: DB_URI %s://%s%s?%s: want mongodb, a user, database %s, replicaSet rs0, authSource %s",
			owner, u.Scheme, u.Host, u.Path, u.RawQuery, dbName, dbName)
	}
	if got := strings.Split(u.Host, ","); !slices.Equal(got, c.tc.dbHosts) {
		t.Errorf("%s: DB_URI hosts %v, want %v", owner, got, c.tc.dbHosts)
	}
}

// healthStatus asks the services' real health routes (the chassis package
// both mount) for path.
func healthStatus(t *testing.T, p string, draining bool) int {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	h := health.New(time.Second)
	if draining {
		h.Drain()
	}
	e := gin.New()
	h.Mount(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
	return rec.Code
}

// configSource is the text of the services' configuration code, where every
// variable name they read appears as a string literal.
func configSource(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	var b strings.Builder
	for _, dir := range []string{"chassis/runtime", "chassis/config", "auth_service/config", "blog_service/config"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(raw)
		}
	}
	return b.String()
}

// kong: the ConfigMap is kong/kong-load-balanced.yml with the replicas
// replaced by the Services' DNS names, and the Deployment runs from it.
func (c *check) kong() {
	t := c.t
	d := c.r.Deployments[name("kong")]
	ctr := c.workload(d)
	env := envOf(ctr)

	cm := c.r.ConfigMaps[name("kong")]
	rendered := map[string]any{}
	if err := yamlv3.Unmarshal([]byte(cm.Data["kong.yml"]), &rendered); err != nil {
		t.Fatalf("kong.yml does not parse: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), KongSourcePath))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	if err := yamlv3.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	// Upstream targets: each upstream's service, by the DNS name of a
	// rendered headless Service that selects that service's pods, on the
	// Service's HTTP port.
	hostOf := func(component string) string {
		s, ok := c.r.Services[name(component)]
		if !ok || s.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Kong names %s, which is not a rendered headless Service", svcHost(component))
		}
		return fmt.Sprintf("%s.%s.svc.%s:%d", s.Name, c.r.Namespace, clusterDomain, s.Spec.Ports[0].Port)
	}
	for _, u := range want["upstreams"].([]any) {
		up := u.(map[string]any)
		component := strings.TrimSuffix(up["name"].(string), "_upstream")
		up["targets"] = []any{map[string]any{"target": hostOf(component), "weight": 100}}
	}
	for _, p := range want["plugins"].([]any) {
		cfg := p.(map[string]any)["config"].(map[string]any)
		if _, ok := cfg["verification_urls"]; ok {
			cfg["verification_urls"] = []any{"http://" + hostOf("auth") + "/verify/apikey"}
		}
	}
	if !reflect.DeepEqual(rendered, want) {
		gotY, _ := yamlv3.Marshal(rendered)
		wantY, _ := yamlv3.Marshal(want)
		t.Errorf("Kong's configuration is not %s with the Services' names; got:\n%s\nwant:\n%s\n(regenerate: %s)",
			KongSourcePath, gotY, wantY, RegenerateCommand)
	}
	if strings.Contains(cm.Data["kong.yml"], "__SERVICE_") {
		t.Errorf("kong.yml keeps a placeholder")
	}

	// The Deployment reads the ConfigMap.
	cfgPath := env["KONG_DECLARATIVE_CONFIG"]
	mounted := false
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == path.Dir(cfgPath) {
			for _, v := range d.Spec.Template.Spec.Volumes {
				mounted = mounted || (v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name && path.Base(cfgPath) == "kong.yml")
			}
		}
	}
	if !mounted {
		t.Errorf("kong: KONG_DECLARATIVE_CONFIG %q is not the mounted ConfigMap %s", cfgPath, cm.Name)
	}
	for _, k := range []string{"KONG_PREFIX"} {
		p := env[k]
		ok := false
		for _, m := range ctr.VolumeMounts {
			ok = ok || m.MountPath == p
		}
		if !ok {
			t.Errorf("kong: %s %q is not a writable mount (read-only root)", k, p)
		}
	}
	// Upstream names resolve to A records: an SRV answer for a headless
	// Service lists every named port, the metrics port included.
	if order := strings.Split(env["KONG_DNS_ORDER"], ","); len(order) == 0 || slices.Contains(order, "SRV") || !slices.Contains(order, "A") {
		t.Errorf("kong: KONG_DNS_ORDER %q must resolve A records and never SRV", env["KONG_DNS_ORDER"])
	}
	// Probes on the status listener.
	status, ok := containerPort(ctr, intstr.FromString("status"))
	if !ok || env["KONG_STATUS_LISTEN"] != fmt.Sprintf("0.0.0.0:%d", status) {
		t.Errorf("kong: status port %d, KONG_STATUS_LISTEN %q", status, env["KONG_STATUS_LISTEN"])
	}
	proxy, ok := containerPort(ctr, intstr.FromString("proxy"))
	if !ok || env["KONG_PROXY_LISTEN"] != fmt.Sprintf("0.0.0.0:%d", proxy) {
		t.Errorf("kong: proxy port %d, KONG_PROXY_LISTEN %q", proxy, env["KONG_PROXY_LISTEN"])
	}
	for kind, p := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe, "startup": ctr.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if port, _ := containerPort(ctr, p.HTTPGet.Port); port != status || !strings.HasPrefix(p.HTTPGet.Path, "/status") {
			t.Errorf("kong: %s probe %s on %v, want /status... on the status port", kind, p.HTTPGet.Path, p.HTTPGet.Port.String())
		}
	}
	if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet == nil || ctr.ReadinessProbe.HTTPGet.Path != "/status/ready" {
		t.Errorf("kong: readiness must be /status/ready (configuration loaded)")
	}
	if ctr.Lifecycle == nil || ctr.Lifecycle.PreStop == nil || ctr.Lifecycle.PreStop.Exec == nil ||
		!slices.Equal(ctr.Lifecycle.PreStop.Exec.Command[:2], []string{"kong", "quit"}) {
		t.Errorf("kong: preStop must be a graceful `kong quit`")
	}
	s := c.r.Services[name("kong")]
	if s.Spec.Type != c.tc.kongType {
		t.Errorf("kong Service type %q, want %q", s.Spec.Type, c.tc.kongType)
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("kong LoadBalancer: externalTrafficPolicy %q, want Local (client addresses)", s.Spec.ExternalTrafficPolicy)
	}
	c.servicePorts(s, d, map[string]int32{"proxy": proxy})
}

// networkPolicies: Kong alone reaches the services' HTTP port, the
// monitoring namespace alone their metrics port, the services alone the
// bundled NATS, MongoDB and Redis.
func (c *check) networkPolicies() {
	t := c.t
	if !c.tc.networkPolicy {
		return
	}
	onlyPods := func(np *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, want ...string) {
		t.Helper()
		var got []string
		for _, p := range peers {
			if p.NamespaceSelector != nil || p.IPBlock != nil || p.PodSelector == nil {
				t.Errorf("NetworkPolicy %s: peer %+v: want pods of this namespace only", np.Name, p)
				continue
			}
			got = append(got, c.deploymentsSelectedBy(p.PodSelector)...)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("NetworkPolicy %s: admits the pods of %v, want %v", np.Name, got, want)
		}
	}
	ports := func(rule networkingv1.NetworkPolicyIngressRule) []string {
		var out []string
		for _, p := range rule.Ports {
			out = append(out, p.Port.String())
		}
		return out
	}
	for _, component := range Services {
		np := c.r.NetworkPolicies[name(component)]
		if got := c.deploymentsSelectedBy(&np.Spec.PodSelector); !slices.Equal(got, []string{name(component)}) {
			t.Errorf("NetworkPolicy %s selects %v", np.Name, got)
		}
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("NetworkPolicy %s: policyTypes %v", np.Name, np.Spec.PolicyTypes)
		}
		seen := map[string]bool{}
		for _, rule := range np.Spec.Ingress {
			p := ports(rule)
			switch {
			case slices.Equal(p, []string{"http"}):
				onlyPods(np, rule.From, name("kong"))
			case slices.Equal(p, []string{"metrics"}):
				if len(rule.From) != 1 || rule.From[0].PodSelector != nil || rule.From[0].NamespaceSelector == nil ||
					!reflect.DeepEqual(rule.From[0].NamespaceSelector.MatchLabels, c.tc.monitoringNS) {
					t.Errorf("NetworkPolicy %s: metrics from %+v, want the namespaces %v only", np.Name, rule.From, c.tc.monitoringNS)
				}
			default:
				t.Errorf("NetworkPolicy %s: a rule for ports %v (from %+v) opens more than http and metrics", np.Name, p, rule.From)
			}
			seen[strings.Join(p, ",")] = true
		}
		if !seen["http"] || !seen["metrics"] {
			t.Errorf("NetworkPolicy %s: rules %v, want http and metrics", np.Name, keys(seen))
		}
	}
	// Bundled dependencies: the labels their charts put on their servers.
	depLabels := map[string]map[string]string{
		"nats":    {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": testRelease, "app.kubernetes.io/component": "nats"},
		"mongodb": {"app.kubernetes.io/name": "mongodb", "app.kubernetes.io/instance": testRelease},
		"redis":   {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": testRelease},
	}
	clientPorts := map[string][]string{"nats": {"4222"}, "mongodb": {"27017"}, "redis": {"6379", "26379"}}
	for _, dep := range c.tc.bundled {
		np := c.r.NetworkPolicies[fullname+"-"+dep]
		if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, depLabels[dep]) {
			t.Errorf("NetworkPolicy %s selects %v, want the %s chart's pods %v", np.Name, np.Spec.PodSelector.MatchLabels, dep, depLabels[dep])
		}
		if got := c.deploymentsSelectedBy(&np.Spec.PodSelector); len(got) != 0 {
			t.Errorf("NetworkPolicy %s also selects %v", np.Name, got)
		}
		if len(np.Spec.Ingress) != 2 {
			t.Fatalf("NetworkPolicy %s: %d rules, want clients and peers", np.Name, len(np.Spec.Ingress))
		}
		clients, peers := np.Spec.Ingress[0], np.Spec.Ingress[1]
		if !slices.Equal(ports(clients), clientPorts[dep]) {
			t.Errorf("NetworkPolicy %s: client ports %v, want %v", np.Name, ports(clients), clientPorts[dep])
		}
		onlyPods(np, clients.From, name("auth"), name("blog"))
		if len(peers.From) != 1 || peers.From[0].PodSelector == nil ||
			!reflect.DeepEqual(peers.From[0].PodSelector.MatchLabels, depLabels[dep]) || peers.From[0].NamespaceSelector != nil {
			t.Errorf("NetworkPolicy %s: second rule %+v, want the %s servers themselves", np.Name, peers.From, dep)
		}
	}
}

func (c *check) serviceMonitors() {
	t := c.t
	for _, sm := range c.r.ServiceMonitors {
		var matched []string
		for n, s := range c.r.Services {
			if selects(t, &sm.Spec.Selector, s.Labels) {
				matched = append(matched, n)
			}
		}
		if !slices.Equal(matched, []string{sm.Name}) {
			t.Errorf("ServiceMonitor %s selects Services %v, want %s", sm.Name, matched, sm.Name)
		}
		if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{c.r.Namespace}) {
			t.Errorf("ServiceMonitor %s: namespaces %v", sm.Name, sm.Spec.NamespaceSelector.MatchNames)
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor %s: endpoints %+v, want the metrics port's /metrics", sm.Name, sm.Spec.Endpoints)
		}
		if sm.Labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s: labels %v lack serviceMonitor.labels", sm.Name, sm.Labels)
		}
	}
}

// Values that cannot work are refused at render time with a message naming
// the value.
func TestChartRefusesIncompleteValues(t *testing.T) {
	for _, tc := range []struct {
		name, values, want string
	}{
		{"no JWT keys", ``, "secrets.jwt.privateKey is required"},
		{"external Mongo without URIs", jwtValues + "mongodb: {enabled: false}\n", "secrets.externalDbUri.auth"},
		{"external NATS without URLs", jwtValues + "nats: {enabled: false}\n", "externalNats.urls is required"},
		{"unknown Redis mode", jwtValues + "redis: {enabled: false}\nexternalRedis: {mode: shards}\n", "/externalRedis/mode"},
		{"external Sentinel without addresses", jwtValues + "redis: {enabled: false}\n", "externalRedis.sentinelAddrs is required"},
		{"external Cluster without addresses", jwtValues + "redis: {enabled: false}\nexternalRedis: {mode: cluster}\n", "externalRedis.clusterAddrs is required"},
		// values.schema.json: a misspelt or misplaced value fails instead of
		// being ignored.
		{"misspelt value", jwtValues + "kong: {service: {typ: LoadBalancer}}\n", "typ"},
		{"unknown Service type", jwtValues + "kong: {service: {type: External}}\n", "/kong/service/type"},
		{"zero replicas", jwtValues + "auth: {replicas: 0}\n", "/auth/replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, parseValues(t, tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Each dependency is declared with a repository, a version constraint that
// parses, and a condition that is its own enabled flag, on by default.
func TestChartDependencies(t *testing.T) {
	chrt, err := loader.Load(filepath.Join(repoRoot(t), ChartPath))
	if err != nil {
		t.Fatal(err)
	}
	vals := chartValues(t)
	var names []string
	for _, dep := range chrt.Metadata.Dependencies {
		names = append(names, dep.Name)
		if dep.Repository == "" {
			t.Errorf("dependency %s: no repository", dep.Name)
		}
		if _, err := semver.NewConstraint(dep.Version); err != nil {
			t.Errorf("dependency %s: version %q: %v", dep.Name, dep.Version, err)
		}
		if dep.Condition != dep.Name+".enabled" {
			t.Errorf("dependency %s: condition %q, want %s.enabled", dep.Name, dep.Condition, dep.Name)
		}
		if dig(t, vals, dep.Name, "enabled") != true {
			t.Errorf("dependency %s: %s.enabled is not true in values.yaml", dep.Name, dep.Name)
		}
	}
	if !slices.Equal(names, []string{"nats", "mongodb", "redis"}) {
		t.Errorf("dependencies %v, want nats, mongodb, redis", names)
	}
}
