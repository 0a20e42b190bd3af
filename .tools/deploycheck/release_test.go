package deploycheck

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"go.yaml.in/yaml/v3"

	authconfig "blogplatform/auth_service/config"
	blogconfig "blogplatform/blog_service/config"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
	"blogplatform/tools/internal/envfiles"
)

// releaseRequired lists, per service, the variables a compose deployment must
// set because their defaults in code only suit a developer's machine: the
// connection to each dependency and its credentials (Mongo runs with
// authentication, Redis with an ACL user per service and NATS with passwords), the address of the only
// trusted proxy, the internal metrics port Prometheus scrapes, the seeded API
// key and admin that make the stack usable, and the example-secrets switch.
// TestReleaseRequiredMatchesTheServicesConfiguration keeps it in step with
// the configuration code.
var releaseRequired = map[string][]string{
	"auth": append(slices.Clone(releaseRequiredCommon),
		"SEED_API_KEY", "SEED_ADMIN_EMAIL", "SEED_ADMIN_PASSWORD", "RSA_PRIVATE_KEY_PATH", "RSA_PUBLIC_KEY_PATH"),
	"blog": releaseRequiredCommon,
}

var releaseRequiredCommon = []string{
	"GO_MODE", "ALLOW_EXAMPLE_SECRETS", "TRUSTED_PROXIES", "METRICS_PORT",
	"DB_HOST", "DB_NAME", "DB_USER", "DB_USER_PWD",
	"REDIS_HOST", "REDIS_USERNAME", "REDIS_PASSWORD",
	"NATS_URL", "NATS_USER", "NATS_PASSWORD",
}

// configFiles are the files that read each service's configuration.
var configFiles = map[string][]string{
	"auth": {"chassis/runtime/config.go", "chassis/runtime/redisconfig.go", "auth_service/config/config.go"},
	"blog": {"chassis/runtime/config.go", "chassis/runtime/redisconfig.go", "blog_service/config/config.go"},
}

// modeSecrets are secrets of a deployment mode compose does not run (Redis
// behind Sentinel): refused as example values when set, not required.
var modeSecrets = []string{"REDIS_SENTINEL_PASSWORD"}

// configKeys parses the configuration code and returns, per service, every
// variable it reads: the first argument of each src.String / src.Int / ...
// call on the config source, and every argument of RejectExampleSecrets.
func configKeys(t *testing.T) map[string]map[string]bool {
	t.Helper()
	keys, _ := parseConfigCode(t)
	return keys
}

// secretKeys returns, per service, the variables its configuration refuses
// to accept with an example value in release mode.
func secretKeys(t *testing.T) map[string][]string {
	t.Helper()
	_, secrets := parseConfigCode(t)
	return secrets
}

func parseConfigCode(t *testing.T) (map[string]map[string]bool, map[string][]string) {
	t.Helper()
	root := repoRoot(t)
	keys := map[string]map[string]bool{}
	secrets := map[string][]string{}
	for kind, files := range configFiles {
		keys[kind] = map[string]bool{}
		for _, rel := range files {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, rel), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if recv, ok := sel.X.(*ast.Ident); !ok || recv.Name != "src" {
					return true
				}
				for i, arg := range call.Args {
					lit, ok := arg.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					key, err := strconv.Unquote(lit.Value)
					if err != nil {
						continue
					}
					if sel.Sel.Name == "RejectExampleSecrets" {
						keys[kind][key] = true
						secrets[kind] = append(secrets[kind], key)
					} else if i == 0 {
						keys[kind][key] = true
					}
				}
				return true
			})
		}
		if len(keys[kind]) < 10 {
			t.Fatalf("%s: found only %d configuration variables in %v; has the config code changed shape?", kind, len(keys[kind]), files)
		}
	}
	return keys, secrets
}

// loadServiceConfig runs the service's own configuration loader on env alone
// (no file, no process environment).
func loadServiceConfig(kind string, env map[string]string) (runtime.Base, error) {
	src := chassisconfig.FromMap(env)
	switch kind {
	case "auth":
		c, err := authconfig.Load(src)
		return c.Base, err
	default:
		c, err := blogconfig.Load(src)
		return c.Base, err
	}
}

// The list above names real variables of the services, and includes every
// secret the services refuse to run with as an example value.
func TestReleaseRequiredMatchesTheServicesConfiguration(t *testing.T) {
	read := configKeys(t)
	secrets := secretKeys(t)
	for kind, required := range releaseRequired {
		for _, key := range required {
			if !read[kind][key] {
				t.Errorf("%s: %s is listed as required but %v never read it", kind, key, configFiles[kind])
			}
		}
		for _, key := range secrets[kind] {
			if !slices.Contains(required, key) && !slices.Contains(modeSecrets, key) {
				t.Errorf("%s: secret %s has no safe default but is not in releaseRequired", kind, key)
			}
		}
	}
}

// Kong is the only proxy the services believe: the compose network has a
// fixed subnet, Kong a fixed address in it, and TRUSTED_PROXIES is exactly
// that address, in both stacks, with the defaults and with the operator's
// own subnet.
func TestComposeForwardedAddressTrust(t *testing.T) {
	for _, f := range composeFiles {
		for _, tc := range []struct {
			name string
			env  map[string]string
		}{
			{"defaults", nil},
			{"custom subnet", map[string]string{"NETWORK_SUBNET": "10.99.7.0/24", "NETWORK_IP_RANGE": "10.99.7.64/26", "GATEWAY_ADDRESS": "10.99.7.5"}},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				project := mustLoadComposeWith(t, f.name, tc.env)
				network, ok := project.Networks["default"]
				if !ok || len(network.Ipam.Config) != 1 {
					t.Fatalf("the default network needs exactly one fixed ipam subnet, got %+v", network.Ipam)
				}
				subnet, err := netip.ParsePrefix(network.Ipam.Config[0].Subnet)
				if err != nil {
					t.Fatalf("subnet %q: %v", network.Ipam.Config[0].Subnet, err)
				}
				kong := project.Services["kong"]
				attachment := kong.Networks["default"]
				if attachment == nil || attachment.Ipv4Address == "" {
					t.Fatalf("kong has no fixed ipv4_address on the default network")
				}
				kongAddr, err := netip.ParseAddr(attachment.Ipv4Address)
				if err != nil {
					t.Fatalf("kong ipv4_address %q: %v", attachment.Ipv4Address, err)
				}
				// Docker keeps the first address for the network's gateway.
				last := lastAddr(subnet)
				if !subnet.Contains(kongAddr) || kongAddr == subnet.Masked().Addr() || kongAddr == subnet.Masked().Addr().Next() || kongAddr == last {
					t.Errorf("kong address %s is not a usable host address of %s", kongAddr, subnet)
				}
				// Dynamic addresses come from ip_range only, so no other
				// container can hold Kong's address when Kong (re)starts.
				ipRange, err := netip.ParsePrefix(network.Ipam.Config[0].IPRange)
				if err != nil {
					t.Errorf("ip_range %q: %v; without it another container may take Kong's address", network.Ipam.Config[0].IPRange, err)
				} else if !subnet.Contains(ipRange.Masked().Addr()) || ipRange.Bits() < subnet.Bits() || ipRange.Contains(kongAddr) {
					t.Errorf("ip_range %s must lie in %s and leave out Kong's address %s", ipRange, subnet, kongAddr)
				}
				if want, ok := tc.env["GATEWAY_ADDRESS"]; ok && kongAddr.String() != want {
					t.Errorf("kong address %s, want GATEWAY_ADDRESS %s", kongAddr, want)
				}
				for _, name := range f.appServices() {
					svc := project.Services[name]
					if got := envOf(svc)["TRUSTED_PROXIES"]; got != kongAddr.String() {
						t.Errorf("%s: TRUSTED_PROXIES %q, want exactly Kong's address %s", name, got, kongAddr)
					}
					for netName, cfg := range svc.Networks {
						if netName != "default" || (cfg != nil && cfg.Ipv4Address != "") {
							t.Errorf("%s: network %s %+v; the services sit on the default network only", name, netName, cfg)
						}
					}
				}
				// Kong is the edge: it must not believe client-sent forwarding
				// headers, so its own idea of the client is the TCP peer.
				for _, key := range []string{"KONG_TRUSTED_IPS", "KONG_REAL_IP_HEADER", "KONG_REAL_IP_RECURSIVE"} {
					if v, set := envOf(kong)[key]; set && v != "" {
						t.Errorf("kong sets %s=%q; Kong is the edge and must not trust client-sent X-Forwarded-For by default", key, v)
					}
				}
			})
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	bits := p.Bits()
	for i := 0; i < 4; i++ {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 1 << (7 - b)
			}
		}
	}
	return netip.AddrFrom4(a)
}

// Metrics are served on the internal port 9464 only: never published, never
// routed by Kong, and scraped by Prometheus on every replica.
func TestComposeMetricsStayInternal(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			var want []string
			for _, name := range f.appServices() {
				svc := project.Services[name]
				if got := envOf(svc)["METRICS_PORT"]; got != "9464" {
					t.Errorf("%s: METRICS_PORT %q, want 9464", name, got)
				}
				for _, p := range svc.Ports {
					t.Errorf("%s publishes %d; metrics must stay on the compose network", name, p.Target)
				}
				for _, port := range svc.Expose {
					if strings.HasPrefix(port, "9464") {
						t.Errorf("%s exposes 9464", name)
					}
				}
				want = append(want, name+":9464")
			}
			var config struct {
				ScrapeConfigs []struct {
					JobName       string `yaml:"job_name"`
					MetricsPath   string `yaml:"metrics_path"`
					StaticConfigs []struct {
						Targets []string `yaml:"targets"`
					} `yaml:"static_configs"`
				} `yaml:"scrape_configs"`
			}
			if err := yaml.Unmarshal(readHostFile(t, prometheusConfigOf(t, f)), &config); err != nil {
				t.Fatal(err)
			}
			var targets []string
			for _, sc := range config.ScrapeConfigs {
				if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
					t.Errorf("job %s scrapes %s, want /metrics", sc.JobName, sc.MetricsPath)
				}
				for _, st := range sc.StaticConfigs {
					targets = append(targets, st.Targets...)
				}
			}
			if !slices.Equal(sorted(targets), sorted(want)) {
				t.Errorf("prometheus scrapes %v, want %v", sorted(targets), sorted(want))
			}
		})
	}
	// Kong's declarative files never point at the metrics port.
	for _, rel := range []string{"kong/kong.yml", "kong/kong-load-balanced.yml"} {
		if strings.Contains(readRepoFile(t, rel), ":9464") {
			t.Errorf("%s routes to the internal metrics port 9464", rel)
		}
	}
}

// Drain: a replica that is stopping reports not ready for
// SHUTDOWN_DRAIN_DELAY before it closes its listener. Kong's active health
// check must have taken it out of rotation by then, so the delay must exceed
// Kong's unhealthy detection time (interval x failures, plus the last probe's
// timeout), read from the Kong file itself so that neither side can drift.
func TestComposeDrainOutlastsKongHealthChecks(t *testing.T) {
	var kong struct {
		Upstreams []struct {
			Name         string `yaml:"name"`
			Healthchecks struct {
				Active struct {
					Timeout float64 `yaml:"timeout"`
					Healthy struct {
						Interval float64 `yaml:"interval"`
					} `yaml:"healthy"`
					Unhealthy struct {
						Interval     float64 `yaml:"interval"`
						HTTPFailures int     `yaml:"http_failures"`
					} `yaml:"unhealthy"`
				} `yaml:"active"`
			} `yaml:"healthchecks"`
		} `yaml:"upstreams"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "kong/kong-load-balanced.yml")), &kong); err != nil {
		t.Fatal(err)
	}
	if len(kong.Upstreams) == 0 {
		t.Fatal("kong-load-balanced.yml has no upstreams")
	}
	var detection time.Duration
	for _, u := range kong.Upstreams {
		unhealthy := u.Healthchecks.Active.Unhealthy
		if unhealthy.Interval <= 0 || unhealthy.HTTPFailures <= 0 {
			t.Errorf("upstream %s: active unhealthy interval %v / http_failures %d: a draining replica (503 on /health/ready) would never leave rotation",
				u.Name, unhealthy.Interval, unhealthy.HTTPFailures)
			continue
		}
		// Worst case: the drain starts just after a successful probe; the
		// first failing probe comes a healthy interval later, the others an
		// unhealthy interval apart, and the last may take the whole timeout.
		active := u.Healthchecks.Active
		seconds := max(active.Healthy.Interval, unhealthy.Interval)*float64(unhealthy.HTTPFailures) + active.Timeout
		detection = max(detection, time.Duration(seconds*float64(time.Second)))
	}

	f := composeFiles[1]
	project := mustLoadCompose(t, f.name)
	for _, name := range f.appServices() {
		svc := project.Services[name]
		base, err := loadServiceConfig(f.kind(name), envOf(svc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: drain %s, Kong's unhealthy detection at most %s", name, base.DrainDelay, detection)
		if base.DrainDelay <= detection {
			t.Errorf("%s: SHUTDOWN_DRAIN_DELAY %s, want more than Kong's unhealthy detection time %s", name, base.DrainDelay, detection)
		}
		// Docker must not kill the replica while it drains and shuts down
		// (NATS and HTTP each get up to SHUTDOWN_GRACE_PERIOD).
		need := base.DrainDelay + 2*base.ShutdownGrace
		if svc.StopGracePeriod == nil || time.Duration(*svc.StopGracePeriod) < need {
			t.Errorf("%s: stop_grace_period %v, want at least %s (drain + 2 x grace)", name, svc.StopGracePeriod, need)
		}
	}
	// The relation is written next to the setting, for the next person who
	// changes either side.
	raw := readRepoFile(t, f.name)
	i := strings.Index(raw, "SHUTDOWN_DRAIN_DELAY:")
	if i < 0 || !strings.Contains(raw[max(0, i-600):i], "kong-load-balanced.yml") {
		t.Errorf("%s: no comment next to SHUTDOWN_DRAIN_DELAY relating it to kong-load-balanced.yml's health checks", f.name)
	}
}

// loadComposeWithEnvFile interpolates a compose file the way
// `docker compose --env-file path` does.
func loadComposeWithEnvFile(t *testing.T, name, envFile string) error {
	t.Helper()
	root := repoRoot(t)
	options, err := cli.NewProjectOptions([]string{filepath.Join(root, name)},
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithoutEnvironmentResolution,
		cli.WithProfiles([]string{"observability"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	_, err = options.LoadProject(context.Background())
	return err
}

// `go run .tools/copy/envs.go` copies the root .env.example to .env: with it,
// both compose files resolve (no missing variable) and the services accept
// the configuration, because ALLOW_EXAMPLE_SECRETS=true; with
// ALLOW_EXAMPLE_SECRETS=false the same secrets stop them.
func TestRootEnvExampleStartsBothStacks(t *testing.T) {
	root := repoRoot(t)
	example := filepath.Join(root, ".env.example")
	values, err := dotenv.GetEnvFromFile(map[string]string{}, []string{example})
	if err != nil {
		t.Fatal(err)
	}
	for key := range composeEnv {
		if values[key] == "" {
			t.Errorf(".env.example does not set %s, which compose requires", key)
		}
	}
	if values["ALLOW_EXAMPLE_SECRETS"] != "true" {
		t.Errorf(".env.example: ALLOW_EXAMPLE_SECRETS=%q, want true (with a warning)", values["ALLOW_EXAMPLE_SECRETS"])
	}
	if bind, set := values["GATEWAY_BIND"]; set && bind != "127.0.0.1" {
		t.Errorf(".env.example: GATEWAY_BIND=%q, want loopback", bind)
	}
	raw := readRepoFile(t, ".env.example")
	if i := strings.Index(raw, "\nALLOW_EXAMPLE_SECRETS="); i < 0 || !strings.Contains(raw[:i], "WARNING") ||
		!strings.Contains(raw[:i], "ALLOW_EXAMPLE_SECRETS=false") {
		t.Error(".env.example: ALLOW_EXAMPLE_SECRETS=true needs a WARNING comment above it saying to replace the secrets and set it to false")
	}

	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			if err := loadComposeWithEnvFile(t, f.name, example); err != nil {
				t.Fatalf("docker compose config with the generated .env: %v", err)
			}
			pairs := map[string]string{}
			for k, v := range values {
				pairs[k] = v
			}
			project, err := loadCompose(t, f.name, pairs)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range f.appServices() {
				env := envOf(project.Services[name])
				if _, err := loadServiceConfig(f.kind(name), env); err != nil {
					t.Errorf("%s refuses the generated .env although it allows example secrets:\n%v", name, err)
				}
			}
			pairs["ALLOW_EXAMPLE_SECRETS"] = "false"
			project, err = loadCompose(t, f.name, pairs)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range f.appServices() {
				env := envOf(project.Services[name])
				_, err := loadServiceConfig(f.kind(name), env)
				for _, key := range secretKeys(t)[f.kind(name)] {
					if slices.Contains(modeSecrets, key) {
						continue // compose runs no Sentinel
					}
					if err == nil || !strings.Contains(err.Error(), key) {
						t.Errorf("%s with example secrets and ALLOW_EXAMPLE_SECRETS=false: err %v, want a refusal naming %s", name, err, key)
					}
				}
			}
		})
	}
}

// The envs command creates the root .env from the example, warns that its
// secrets are public, and never overwrites an existing file.
func TestEnvsCommand(t *testing.T) {
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "envs")
	build := exec.Command("go", "build", "-o", bin, "./.tools/copy/envs.go")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build envs.go: %v\n%s", err, out)
	}
	work := t.TempDir()
	for _, p := range envfiles.Pairs {
		raw, err := os.ReadFile(filepath.Join(root, p.Example))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, p.Example)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, p.Example), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (string, string) {
		t.Helper()
		cmd := exec.Command(bin)
		cmd.Dir = work
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("envs: %v\n%s%s", err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	_, stderr := run()
	created, err := os.ReadFile(filepath.Join(work, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if string(created) != readRepoFile(t, ".env.example") {
		t.Error("the created .env differs from .env.example")
	}
	for _, want := range []string{"WARNING", "example secrets", "ALLOW_EXAMPLE_SECRETS=false"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("first run: stderr %q lacks %q", stderr, want)
		}
	}

	mine := "ALLOW_EXAMPLE_SECRETS=true\nREDIS_PASSWORD=operators-own\n"
	if err := os.WriteFile(filepath.Join(work, ".env"), []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := run()
	if got, _ := os.ReadFile(filepath.Join(work, ".env")); string(got) != mine {
		t.Errorf("an existing .env was overwritten: %q", got)
	}
	if !strings.Contains(stdout, "kept existing .env") || !strings.Contains(stderr, "WARNING") {
		t.Errorf("second run: stdout %q stderr %q, want the kept file and a reminder that it allows example secrets", stdout, stderr)
	}

	complete := strings.Replace(readRepoFile(t, ".env.example"), "\nALLOW_EXAMPLE_SECRETS=true\n", "\nALLOW_EXAMPLE_SECRETS=false\n", 1)
	if err := os.WriteFile(filepath.Join(work, ".env"), []byte(complete), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr := run(); strings.Contains(stderr, "WARNING") {
		t.Errorf("a complete .env with ALLOW_EXAMPLE_SECRETS=false still draws a warning: %q", stderr)
	}

	// A .env kept from an older checkout that lacks a variable added since
	// is named, so compose's refusal does not come as a surprise.
	var older []string
	for _, line := range strings.Split(complete, "\n") {
		if !strings.HasPrefix(line, "REDIS_BLOG_PASSWORD=") {
			older = append(older, line)
		}
	}
	if err := os.WriteFile(filepath.Join(work, ".env"), []byte(strings.Join(older, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr := run(); !strings.Contains(stderr, "WARNING: .env lacks REDIS_BLOG_PASSWORD;") {
		t.Errorf("a .env without REDIS_BLOG_PASSWORD: stderr %q does not name it", stderr)
	}
}
