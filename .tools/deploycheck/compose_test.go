package deploycheck

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeEnv is what the root .env provides for interpolation. Distinct,
// recognisable values let the tests see where each one ends up.
var composeEnv = map[string]string{
	"DB_ADMIN":           "test-admin",
	"DB_ADMIN_PWD":       "test-admin-pwd",
	"REDIS_PASSWORD":     "test-redis-pwd",
	"NATS_AUTH_PASSWORD": "test-nats-auth-pwd",
	"NATS_BLOG_PASSWORD": "test-nats-blog-pwd",
}

type composeFile struct {
	name           string
	kongDockerfile string
	authReplicas   []string
	blogReplicas   []string
}

var composeFiles = []composeFile{
	{name: "docker-compose.yml", kongDockerfile: "Dockerfile",
		authReplicas: []string{"auth"}, blogReplicas: []string{"blog"}},
	{name: "docker-compose-load-balanced.yml", kongDockerfile: "Dockerfile-load-balanced",
		authReplicas: []string{"auth1", "auth2"}, blogReplicas: []string{"blog1", "blog2"}},
}

func (f composeFile) appServices() []string {
	return append(slices.Clone(f.authReplicas), f.blogReplicas...)
}

// loadCompose loads a compose file the way `docker compose` does, but with
// only env for interpolation: neither the process environment nor a root
// .env file in the checkout can change the outcome.
func loadCompose(t *testing.T, name string, env map[string]string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	options, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, name)},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(pairs),
	)
	if err != nil {
		t.Fatal(err)
	}
	return options.LoadProject(context.Background())
}

func mustLoadCompose(t *testing.T, name string) *types.Project {
	t.Helper()
	project, err := loadCompose(t, name, composeEnv)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return project
}

func TestComposeServices(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			want := append([]string{"kong", "mongo", "nats", "redis"}, f.appServices()...)
			slices.Sort(want)
			if got := project.ServiceNames(); !slices.Equal(sorted(got), want) {
				t.Errorf("services = %v, want %v", sorted(got), want)
			}
		})
	}
}

// Secrets have no defaults: a missing one must stop `docker compose` with a
// message naming it, rather than start Redis or NATS with an empty password.
func TestComposeRequiresSecrets(t *testing.T) {
	for _, f := range composeFiles {
		for missing := range composeEnv {
			t.Run(f.name+"/without "+missing, func(t *testing.T) {
				env := map[string]string{}
				for k, v := range composeEnv {
					if k != missing {
						env[k] = v
					}
				}
				_, err := loadCompose(t, f.name, env)
				if err == nil || !strings.Contains(err.Error(), missing) {
					t.Errorf("loading without %s: err = %v, want an error naming it", missing, err)
				}
			})
		}
	}
}

func TestComposeHealthchecksAndRestart(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			for name, svc := range project.Services {
				hc := svc.HealthCheck
				if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
					t.Errorf("%s: no usable healthcheck (%+v)", name, hc)
					continue
				}
				if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
					t.Errorf("%s: healthcheck needs interval, timeout and retries", name)
				}
				if svc.Restart != types.RestartPolicyUnlessStopped {
					t.Errorf("%s: restart = %q, want unless-stopped", name, svc.Restart)
				}
			}
			wantProbe := map[string]string{
				"kong":  "kong health",
				"mongo": "db.adminCommand('ping')",
				"redis": "redis-cli",
				"nats":  "http://127.0.0.1:8222/healthz",
			}
			for _, app := range f.appServices() {
				wantProbe[app] = "http://127.0.0.1:8000/health/ready"
			}
			for name, probe := range wantProbe {
				svc, ok := project.Services[name]
				if !ok || svc.HealthCheck == nil {
					continue // reported above
				}
				if cmd := strings.Join(svc.HealthCheck.Test[1:], " "); !strings.Contains(cmd, probe) {
					t.Errorf("%s: healthcheck %q does not use %q", name, cmd, probe)
				}
			}
			// The redis probe authenticates with the container's own variable
			// ($$ in the file), not a value baked into the compose model.
			if redis, ok := project.Services["redis"]; ok && redis.HealthCheck != nil {
				cmd := strings.Join(redis.HealthCheck.Test, " ")
				if !strings.Contains(cmd, "$REDIS_PASSWORD") || strings.Contains(cmd, composeEnv["REDIS_PASSWORD"]) {
					t.Errorf("redis healthcheck %q should expand $REDIS_PASSWORD inside the container", cmd)
				}
				if got := redis.Environment["REDIS_PASSWORD"]; got == nil || *got != composeEnv["REDIS_PASSWORD"] {
					t.Errorf("redis container lacks REDIS_PASSWORD for its healthcheck")
				}
			}
		})
	}
}

func TestComposeDependsOnHealthyServices(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			for name, svc := range project.Services {
				for dep, cfg := range svc.DependsOn {
					if cfg.Condition != types.ServiceConditionHealthy {
						t.Errorf("%s depends on %s with condition %q, want service_healthy", name, dep, cfg.Condition)
					}
					if _, ok := project.Services[dep]; !ok {
						t.Errorf("%s depends on unknown service %s", name, dep)
					}
				}
			}
			wantDeps := map[string][]string{
				"kong":  sorted(f.appServices()),
				"mongo": nil, "redis": nil, "nats": nil,
			}
			for _, app := range f.appServices() {
				wantDeps[app] = []string{"mongo", "nats", "redis"}
			}
			for name, want := range wantDeps {
				var got []string
				for dep := range project.Services[name].DependsOn {
					got = append(got, dep)
				}
				if !slices.Equal(sorted(got), want) {
					t.Errorf("%s depends on %v, want %v", name, sorted(got), want)
				}
			}
		})
	}
}

var pinnedTag = regexp.MustCompile(`^[a-z0-9./_-]+:[0-9]+\.[0-9]+(\.[0-9]+)?([-.][a-z0-9.]+)?$`)

func TestComposeImagesArePinned(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			wantImages := map[string]string{
				"mongo": "mongo:7.0.12",
				"redis": "redis:7.2.5",
				"nats":  "nats:2.10.17-alpine",
			}
			for name, svc := range project.Services {
				if svc.Build != nil {
					continue // pinned through its Dockerfile (TestDockerfileBaseImagesArePinned)
				}
				if !pinnedTag.MatchString(svc.Image) || strings.Contains(svc.Image, "latest") {
					t.Errorf("%s: image %q is not pinned to a version", name, svc.Image)
				}
				if want, ok := wantImages[name]; ok && svc.Image != want {
					t.Errorf("%s: image %q, want %q", name, svc.Image, want)
				}
			}
		})
	}
}

func TestComposeBuilds(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			root := repoRoot(t)
			project := mustLoadCompose(t, f.name)
			want := map[string][2]string{ // service -> context, dockerfile
				"kong": {filepath.Join(root, "kong"), f.kongDockerfile},
			}
			for _, a := range f.authReplicas {
				want[a] = [2]string{root, "auth_service/Dockerfile"}
			}
			for _, b := range f.blogReplicas {
				want[b] = [2]string{root, "blog_service/Dockerfile"}
			}
			for name, svc := range project.Services {
				w, built := want[name]
				if !built {
					if svc.Build != nil {
						t.Errorf("%s is built; only kong and the services are", name)
					}
					continue
				}
				if svc.Build == nil {
					t.Errorf("%s: not built from this repository", name)
					continue
				}
				if svc.Build.Context != w[0] || svc.Build.Dockerfile != w[1] {
					t.Errorf("%s: build %s with %s, want %s with %s (services need the repository root for ../chassis)", name, svc.Build.Context, svc.Build.Dockerfile, w[0], w[1])
				}
			}
		})
	}
}

func TestComposeOnlyKongPublishesPorts(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			for name, svc := range project.Services {
				if name == "kong" {
					continue
				}
				if len(svc.Ports) > 0 {
					t.Errorf("%s publishes %v; only Kong is reachable from outside", name, svc.Ports)
				}
			}
			var published []string
			for _, p := range project.Services["kong"].Ports {
				if p.Target == 8001 || p.Target == 8444 {
					if p.HostIP != "127.0.0.1" {
						t.Errorf("kong admin port %d is published on %q; at most 127.0.0.1", p.Target, p.HostIP)
					}
					continue
				}
				published = append(published, p.Published+":"+strconv.FormatUint(uint64(p.Target), 10))
			}
			if want := []string{"8000:8000", "8443:8443"}; !slices.Equal(sorted(published), want) {
				t.Errorf("kong publishes %v, want %v", published, want)
			}
		})
	}
}

func TestComposeServiceEnvironment(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			natsUser := map[string]string{}
			for _, a := range f.authReplicas {
				natsUser[a] = "auth"
			}
			for _, b := range f.blogReplicas {
				natsUser[b] = "blog"
			}
			natsPassword := map[string]string{"auth": composeEnv["NATS_AUTH_PASSWORD"], "blog": composeEnv["NATS_BLOG_PASSWORD"]}

			for name, svc := range project.Services {
				env := func(key string) string {
					if v := svc.Environment[key]; v != nil {
						return *v
					}
					return ""
				}
				// Every NATS client logs in with its own user.
				if env("NATS_URL") != "" || natsUser[name] != "" {
					user := natsUser[name]
					if env("NATS_URL") != "nats://nats:4222" || env("NATS_USER") != user || user == "" || env("NATS_PASSWORD") != natsPassword[user] {
						t.Errorf("%s: NATS_URL %q NATS_USER %q NATS_PASSWORD %q, want nats://nats:4222 as %q with its password", name, env("NATS_URL"), env("NATS_USER"), env("NATS_PASSWORD"), user)
					}
				}
				if natsUser[name] == "" {
					continue
				}
				want := map[string]string{
					"GO_MODE":        "release",
					"DB_HOST":        "mongo",
					"REDIS_HOST":     "redis",
					"REDIS_PASSWORD": composeEnv["REDIS_PASSWORD"],
				}
				if natsUser[name] == "auth" {
					want["RSA_PRIVATE_KEY_PATH"] = "/keys/private.pem"
					want["RSA_PUBLIC_KEY_PATH"] = "/keys/public.pem"
				}
				for key, value := range want {
					if env(key) != value {
						t.Errorf("%s: %s = %q, want %q", name, key, env(key), value)
					}
				}
				// The service .env files are optional (defaults in code), so a
				// fresh checkout can start without them.
				for _, ef := range svc.EnvFiles {
					if ef.Required {
						t.Errorf("%s: env_file %s is required; make it required: false", name, ef.Path)
					}
				}
				wantEnvFile := filepath.Join(repoRoot(t), natsUser[name]+"_service", ".env")
				if len(svc.EnvFiles) != 1 || svc.EnvFiles[0].Path != wantEnvFile {
					t.Errorf("%s: env_file %v, want %s", name, svc.EnvFiles, wantEnvFile)
				}
			}
		})
	}
}

func TestComposeVolumes(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			root := repoRoot(t)
			project := mustLoadCompose(t, f.name)
			type mount struct {
				source, target string
				readOnly       bool
			}
			mounts := func(service string) []mount {
				var out []mount
				for _, v := range project.Services[service].Volumes {
					out = append(out, mount{v.Source, v.Target, v.ReadOnly})
				}
				return out
			}
			want := map[string][]mount{
				"mongo": {
					{"dbdata", "/data/db", false},
					{filepath.Join(root, ".extra/setup/auth-init-mongo.js"), "/docker-entrypoint-initdb.d/auth-init-mongo.js", true},
					{filepath.Join(root, ".extra/setup/blog-init-mongo.js"), "/docker-entrypoint-initdb.d/blog-init-mongo.js", true},
				},
				// /data is where the redis image writes (the reference used /data/cache).
				"redis": {{"cache", "/data", false}},
				"nats":  {{filepath.Join(root, ".extra/nats/nats-server.conf"), "/etc/nats/nats-server.conf", true}},
				"kong":  nil,
			}
			for _, a := range f.authReplicas {
				want[a] = []mount{{filepath.Join(root, "auth_service/keys"), "/keys", true}}
			}
			for _, b := range f.blogReplicas {
				want[b] = nil
			}
			for service, w := range want {
				if got := mounts(service); !slices.Equal(got, w) {
					t.Errorf("%s mounts %+v, want %+v", service, got, w)
				}
			}
			for _, volume := range []string{"dbdata", "cache"} {
				if _, ok := project.Volumes[volume]; !ok {
					t.Errorf("named volume %s is not declared", volume)
				}
			}
		})
	}
}

func TestComposeRedisAndNatsCommands(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			redis := []string(project.Services["redis"].Command)
			for _, pair := range [][2]string{{"--requirepass", composeEnv["REDIS_PASSWORD"]}, {"--save", "20 1"}} {
				i := slices.Index(redis, pair[0])
				if i < 0 || i+1 >= len(redis) || redis[i+1] != pair[1] {
					t.Errorf("redis command %q lacks %s %q", redis, pair[0], pair[1])
				}
			}
			nats := project.Services["nats"]
			if cmd := strings.Join(nats.Command, " "); cmd != "nats-server --config /etc/nats/nats-server.conf" {
				t.Errorf("nats command %q does not load the mounted configuration", cmd)
			}
			for _, key := range []string{"NATS_AUTH_PASSWORD", "NATS_BLOG_PASSWORD"} {
				if v := nats.Environment[key]; v == nil || *v != composeEnv[key] {
					t.Errorf("nats container lacks %s, which nats-server.conf reads", key)
				}
			}
			mongo := project.Services["mongo"]
			for key, want := range map[string]string{"MONGO_INITDB_ROOT_USERNAME": composeEnv["DB_ADMIN"], "MONGO_INITDB_ROOT_PASSWORD": composeEnv["DB_ADMIN_PWD"]} {
				if v := mongo.Environment[key]; v == nil || *v != want {
					t.Errorf("mongo %s not set from the root .env", key)
				}
			}
		})
	}
}

// The replicas of one service must be configured identically: Kong and the
// NATS queue group treat them as interchangeable.
func TestComposeReplicasAreIdentical(t *testing.T) {
	project := mustLoadCompose(t, "docker-compose-load-balanced.yml")
	single := mustLoadCompose(t, "docker-compose.yml")
	for replica, original := range map[string]string{"auth1": "auth", "auth2": "auth", "blog1": "blog", "blog2": "blog"} {
		got, want := project.Services[replica], single.Services[original]
		got.Name, want.Name = "", ""
		got.ContainerName, want.ContainerName = "", ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs from %s in docker-compose.yml:\n%+v\nvs\n%+v", replica, original, got, want)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// The observability profile adds Prometheus (scraping every replica) and
// Jaeger, each with a health check, a pinned image and ports on loopback only.
func TestComposeObservabilityProfile(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			root := repoRoot(t)
			var pairs []string
			for k, v := range composeEnv {
				pairs = append(pairs, k+"="+v)
			}
			options, err := cli.NewProjectOptions([]string{filepath.Join(root, f.name)},
				cli.WithWorkingDirectory(root), cli.WithEnv(pairs), cli.WithProfiles([]string{"observability"}))
			if err != nil {
				t.Fatal(err)
			}
			project, err := options.LoadProject(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"prometheus", "jaeger"} {
				svc, ok := project.Services[name]
				if !ok {
					t.Fatalf("no %s service in the observability profile", name)
				}
				if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
					t.Errorf("%s has no healthcheck", name)
				}
				if strings.HasSuffix(svc.Image, ":latest") || !strings.Contains(svc.Image, ":") {
					t.Errorf("%s image %q is not pinned", name, svc.Image)
				}
				for _, p := range svc.Ports {
					if p.HostIP != "127.0.0.1" {
						t.Errorf("%s publishes %d on %q; loopback only", name, p.Target, p.HostIP)
					}
				}
			}
			promConfig := ""
			for _, v := range project.Services["prometheus"].Volumes {
				if v.Target == "/etc/prometheus/prometheus.yml" {
					promConfig = v.Source
				}
			}
			raw, err := os.ReadFile(promConfig)
			if err != nil {
				t.Fatalf("prometheus config: %v", err)
			}
			for _, replica := range f.appServices() {
				if !strings.Contains(string(raw), `"`+replica+`:8000"`) {
					t.Errorf("prometheus does not scrape %s", replica)
				}
			}
			for _, replica := range f.appServices() {
				env := project.Services[replica].Environment
				if v := env["TRUSTED_PROXIES"]; v == nil || *v == "" {
					t.Errorf("%s: TRUSTED_PROXIES unset: every client would share Kong's rate-limit budget", replica)
				}
			}
		})
	}
}
