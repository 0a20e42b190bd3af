package deploycheck

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeEnv is what the root .env provides for interpolation: every
// variable compose refuses to start without. Distinct, recognisable values
// (none of them an .env.example value) let the tests see where each one ends
// up.
var composeEnv = map[string]string{
	"DB_ADMIN":            "test-admin",
	"DB_ADMIN_PWD":        "test-admin-pwd",
	"AUTH_DB_USER_PWD":    "test-auth-db-pwd",
	"BLOG_DB_USER_PWD":    "test-blog-db-pwd",
	"REDIS_PASSWORD":      "test-redis-pwd",
	"REDIS_AUTH_PASSWORD": "test-redis-auth-pwd",
	"REDIS_BLOG_PASSWORD": "test-redis-blog-pwd",
	"NATS_AUTH_PASSWORD":  "test-nats-auth-pwd",
	"NATS_BLOG_PASSWORD":  "test-nats-blog-pwd",
	"SEED_API_KEY":        "test-seed-api-key",
	"SEED_ADMIN_EMAIL":    "ops@example.org",
	"SEED_ADMIN_PASSWORD": "test-admin-password",
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

// kind is "auth" or "blog" for an application service, "" otherwise.
func (f composeFile) kind(service string) string {
	switch {
	case slices.Contains(f.authReplicas, service):
		return "auth"
	case slices.Contains(f.blogReplicas, service):
		return "blog"
	}
	return ""
}

// loadCompose loads a compose file the way `docker compose` does, but with
// only env for interpolation: neither the process environment nor a root
// .env file in the checkout can change the outcome. The services' optional
// env_file entries are not read, so the project shows what compose itself
// passes to each container (the stack must work without those files).
func loadCompose(t *testing.T, name string, env map[string]string, extra ...cli.ProjectOptionsFn) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	opts := append([]cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(root),
		cli.WithEnv(pairs),
		cli.WithoutEnvironmentResolution,
	}, extra...)
	options, err := cli.NewProjectOptions([]string{filepath.Join(root, name)}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return options.LoadProject(context.Background())
}

func mustLoadCompose(t *testing.T, name string) *types.Project {
	t.Helper()
	return mustLoadComposeWith(t, name, nil)
}

// mustLoadComposeWith loads with composeEnv plus overrides.
func mustLoadComposeWith(t *testing.T, name string, overrides map[string]string) *types.Project {
	t.Helper()
	env := maps.Clone(composeEnv)
	maps.Copy(env, overrides)
	project, err := loadCompose(t, name, env)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return project
}

// envOf returns a service's environment as plain strings (unset = absent).
func envOf(svc types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
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
// message naming it, rather than start a container with an empty password
// (or Mongo's service users without one).
func TestComposeRequiresSecrets(t *testing.T) {
	for _, f := range composeFiles {
		for missing := range composeEnv {
			t.Run(f.name+"/without "+missing, func(t *testing.T) {
				t.Parallel()
				env := maps.Clone(composeEnv)
				delete(env, missing)
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
				if got := envOf(redis)["REDIS_PASSWORD"]; got != composeEnv["REDIS_PASSWORD"] {
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

// One image per service, built once: every replica runs the same image name;
// exactly one service builds it (from the repository, pull_policy build, so
// compose never fetches a registry image of that name), the other replicas
// run it as is (pull_policy never).
func TestComposeOneImagePerService(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			root := repoRoot(t)
			project := mustLoadCompose(t, f.name)
			groups := []struct {
				replicas            []string
				context, dockerfile string
			}{
				{[]string{"kong"}, filepath.Join(root, "kong"), f.kongDockerfile},
				{f.authReplicas, root, "auth_service/Dockerfile"},
				{f.blogReplicas, root, "blog_service/Dockerfile"},
			}
			images := map[string]string{} // image -> group's first replica
			for _, g := range groups {
				image := project.Services[g.replicas[0]].Image
				if image == "" || !strings.HasPrefix(image, "blogplatform/") {
					t.Errorf("%s: image %q, want a local blogplatform/... name", g.replicas[0], image)
				}
				if other, dup := images[image]; dup {
					t.Errorf("%s and %s share image %q but are built from different Dockerfiles", other, g.replicas[0], image)
				}
				images[image] = g.replicas[0]
				var builders []string
				for _, name := range g.replicas {
					svc := project.Services[name]
					if svc.Image != image {
						t.Errorf("%s: image %q, want %q like %s", name, svc.Image, image, g.replicas[0])
					}
					if svc.Build == nil {
						if svc.PullPolicy != types.PullPolicyNever {
							t.Errorf("%s: pull_policy %q, want never (the image is built by %s, not pulled)", name, svc.PullPolicy, g.replicas[0])
						}
						continue
					}
					builders = append(builders, name)
					if svc.PullPolicy != types.PullPolicyBuild {
						t.Errorf("%s: pull_policy %q, want build (never pull a registry image of this name)", name, svc.PullPolicy)
					}
					if svc.Build.Context != g.context || svc.Build.Dockerfile != g.dockerfile {
						t.Errorf("%s: build %s with %s, want %s with %s (services need the repository root for ../chassis)",
							name, svc.Build.Context, svc.Build.Dockerfile, g.context, g.dockerfile)
					}
				}
				if len(builders) != 1 {
					t.Errorf("%v: built by %v, want exactly one builder", g.replicas, builders)
				}
			}
			for name, svc := range project.Services {
				if svc.Build != nil && !slices.Contains(slices.Collect(maps.Values(images)), name) &&
					!slices.Contains(f.appServices(), name) {
					t.Errorf("%s is built; only kong and the services are", name)
				}
			}
		})
	}
}

// The gateway is published on loopback unless the operator opens it with
// GATEWAY_BIND; nothing else is published (metrics, Mongo, Redis, NATS stay
// on the compose network; Prometheus and Jaeger UIs are loopback only).
func TestComposePublishedPorts(t *testing.T) {
	for _, f := range composeFiles {
		for _, tc := range []struct {
			name   string
			env    map[string]string
			wantIP string
		}{
			{"default", nil, "127.0.0.1"},
			{"GATEWAY_BIND=0.0.0.0", map[string]string{"GATEWAY_BIND": "0.0.0.0"}, "0.0.0.0"},
			{"GATEWAY_BIND=192.0.2.7", map[string]string{"GATEWAY_BIND": "192.0.2.7"}, "192.0.2.7"},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				project := mustLoadComposeWith(t, f.name, tc.env)
				for name, svc := range project.Services {
					if name != "kong" && len(svc.Ports) > 0 {
						t.Errorf("%s publishes %v; only Kong is reachable from outside", name, svc.Ports)
					}
				}
				var published []string
				for _, p := range project.Services["kong"].Ports {
					published = append(published, p.HostIP+":"+p.Published+":"+strconv.FormatUint(uint64(p.Target), 10))
				}
				want := []string{tc.wantIP + ":8000:8000", tc.wantIP + ":8443:8443"}
				if !slices.Equal(sorted(published), want) {
					t.Errorf("kong publishes %v, want %v", published, want)
				}
			})
		}
	}
}

// The services are configured entirely by compose: every variable their
// configuration needs in release mode is set in each service's environment,
// from the root .env, and the services' own configuration code accepts it.
func TestComposeServicesHaveTheirReleaseConfiguration(t *testing.T) {
	read := configKeys(t)
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			for _, name := range f.appServices() {
				kind := f.kind(name)
				env := envOf(project.Services[name])
				for _, key := range releaseRequired[kind] {
					if env[key] == "" {
						t.Errorf("%s: %s is not set; the service needs it in release mode", name, key)
					}
				}
				// Every variable compose sets is one the service reads: a typo
				// would otherwise be silently ignored.
				for key := range env {
					if !read[kind][key] {
						t.Errorf("%s: compose sets %s, which %s_service's configuration never reads", name, key, kind)
					}
				}
				if env["GO_MODE"] != "release" {
					t.Errorf("%s: GO_MODE %q, want release", name, env["GO_MODE"])
				}
				// The real configuration loader accepts what compose passes.
				if _, err := loadServiceConfig(kind, env); err != nil {
					t.Errorf("%s: the service would refuse to start with this environment:\n%v", name, err)
				}
			}
		})
	}
}

// Mongo runs with authentication, and its init scripts create each service's
// user from the same variables the service logs in with.
func TestComposeMongoUsersMatchTheServices(t *testing.T) {
	for _, f := range composeFiles {
		for _, tc := range []struct {
			name string
			env  map[string]string
		}{
			{"defaults", nil},
			{"custom names", map[string]string{"AUTH_DB_NAME": "a-db", "AUTH_DB_USER": "a-user", "BLOG_DB_NAME": "b-db", "BLOG_DB_USER": "b-user"}},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				project := mustLoadComposeWith(t, f.name, tc.env)
				mongo := envOf(project.Services["mongo"])
				if mongo["MONGO_INITDB_ROOT_USERNAME"] != composeEnv["DB_ADMIN"] || mongo["MONGO_INITDB_ROOT_PASSWORD"] != composeEnv["DB_ADMIN_PWD"] {
					t.Errorf("mongo root user not set from DB_ADMIN / DB_ADMIN_PWD: %v", mongo)
				}
				for _, name := range f.appServices() {
					prefix := strings.ToUpper(f.kind(name)) + "_"
					env := envOf(project.Services[name])
					pairs := map[string]string{"DB_NAME": prefix + "DB_NAME", "DB_USER": prefix + "DB_USER", "DB_USER_PWD": prefix + "DB_USER_PWD"}
					for serviceKey, mongoKey := range pairs {
						if env[serviceKey] == "" || env[serviceKey] != mongo[mongoKey] {
							t.Errorf("%s: %s = %q but mongo's %s = %q; the init script must create the user the service logs in as",
								name, serviceKey, env[serviceKey], mongoKey, mongo[mongoKey])
						}
					}
					if env["DB_USER_PWD"] != composeEnv[prefix+"DB_USER_PWD"] {
						t.Errorf("%s: DB_USER_PWD %q, want the root .env's %s", name, env["DB_USER_PWD"], prefix+"DB_USER_PWD")
					}
					if want, ok := tc.env[prefix+"DB_NAME"]; ok && env["DB_NAME"] != want {
						t.Errorf("%s: DB_NAME %q, want %q from %sDB_NAME", name, env["DB_NAME"], want, prefix)
					}
				}
			})
		}
	}
}

func TestComposeServiceEnvironment(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project := mustLoadCompose(t, f.name)
			natsPassword := map[string]string{"auth": composeEnv["NATS_AUTH_PASSWORD"], "blog": composeEnv["NATS_BLOG_PASSWORD"]}
			redisPassword := map[string]string{"auth": composeEnv["REDIS_AUTH_PASSWORD"], "blog": composeEnv["REDIS_BLOG_PASSWORD"]}
			for name, svc := range project.Services {
				env := envOf(svc)
				kind := f.kind(name)
				// Every NATS client logs in with its own user.
				if env["NATS_URL"] != "" || kind != "" {
					if env["NATS_URL"] != "nats://nats:4222" || env["NATS_USER"] != kind || kind == "" || env["NATS_PASSWORD"] != natsPassword[kind] {
						t.Errorf("%s: NATS_URL %q NATS_USER %q NATS_PASSWORD %q, want nats://nats:4222 as %q with its password", name, env["NATS_URL"], env["NATS_USER"], env["NATS_PASSWORD"], kind)
					}
				}
				if kind == "" {
					continue
				}
				want := map[string]string{
					"GO_MODE":    "release",
					"DB_HOST":    "mongo",
					"REDIS_HOST": "redis",
					// Each service's own ACL user; never the default user's password.
					"REDIS_USERNAME": kind,
					"REDIS_PASSWORD": redisPassword[kind],
					// Not set in the root .env: the safe default.
					"ALLOW_EXAMPLE_SECRETS": "false",
				}
				if kind == "auth" {
					want["RSA_PRIVATE_KEY_PATH"] = "/keys/private.pem"
					want["RSA_PUBLIC_KEY_PATH"] = "/keys/public.pem"
					for _, key := range []string{"SEED_API_KEY", "SEED_ADMIN_EMAIL", "SEED_ADMIN_PASSWORD"} {
						want[key] = composeEnv[key]
					}
				}
				for key, value := range want {
					if env[key] != value {
						t.Errorf("%s: %s = %q, want %q", name, key, env[key], value)
					}
				}
				// The service .env files are optional tuning overrides
				// (`required: false`, Compose v2.24+).
				for _, ef := range svc.EnvFiles {
					if ef.Required {
						t.Errorf("%s: env_file %s is required; make it required: false", name, ef.Path)
					}
				}
				wantEnvFile := filepath.Join(repoRoot(t), kind+"_service", ".env")
				if len(svc.EnvFiles) != 1 || svc.EnvFiles[0].Path != wantEnvFile {
					t.Errorf("%s: env_file %v, want %s", name, svc.EnvFiles, wantEnvFile)
				}
			}
			// The operator's explicit choice passes through.
			allowed := mustLoadComposeWith(t, f.name, map[string]string{"ALLOW_EXAMPLE_SECRETS": "true"})
			for _, name := range f.appServices() {
				if got := envOf(allowed.Services[name])["ALLOW_EXAMPLE_SECRETS"]; got != "true" {
					t.Errorf("%s: ALLOW_EXAMPLE_SECRETS=%q with true in .env", name, got)
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
					{filepath.Join(root, ".extra/setup/services-init-mongo.js"), "/docker-entrypoint-initdb.d/services-init-mongo.js", true},
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
			// nats_test.go checks that these values parse as the passwords.
			for _, key := range []string{"NATS_AUTH_PASSWORD", "NATS_BLOG_PASSWORD"} {
				if v := envOf(nats)[key]; !strings.Contains(v, composeEnv[key]) {
					t.Errorf("nats container lacks %s, which nats-server.conf reads (got %q)", key, v)
				}
			}
		})
	}
}

// The replicas of one service must be configured identically to the single
// stack's service: Kong and the NATS queue group treat them as
// interchangeable. Allowed differences: which replica builds the shared image,
// and the drain settings that only matter behind a load balancer.
func TestComposeReplicasAreIdentical(t *testing.T) {
	project := mustLoadCompose(t, "docker-compose-load-balanced.yml")
	single := mustLoadCompose(t, "docker-compose.yml")
	lbOnly := []string{"SHUTDOWN_DRAIN_DELAY", "SHUTDOWN_GRACE_PERIOD"}
	for replica, original := range map[string]string{"auth1": "auth", "auth2": "auth", "blog1": "blog", "blog2": "blog"} {
		got, want := project.Services[replica], single.Services[original]
		for _, svc := range []*types.ServiceConfig{&got, &want} {
			svc.Name, svc.ContainerName = "", ""
			svc.Build, svc.PullPolicy, svc.StopGracePeriod = nil, "", nil
			svc.Environment = maps.Clone(svc.Environment)
			for _, key := range lbOnly {
				delete(svc.Environment, key)
			}
		}
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

// The observability profile adds Prometheus and Jaeger, each with a health
// check, a pinned image and ports on loopback only.
func TestComposeObservabilityProfile(t *testing.T) {
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project, err := loadCompose(t, f.name, composeEnv, cli.WithProfiles([]string{"observability"}))
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
				for _, p := range svc.Ports {
					if p.HostIP != "127.0.0.1" {
						t.Errorf("%s publishes %d on %q; loopback only", name, p.Target, p.HostIP)
					}
				}
			}
		})
	}
}

// prometheusConfigOf returns the host path of the file the observability
// profile mounts as Prometheus' configuration.
func prometheusConfigOf(t *testing.T, f composeFile) string {
	t.Helper()
	project, err := loadCompose(t, f.name, composeEnv, cli.WithProfiles([]string{"observability"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range project.Services["prometheus"].Volumes {
		if v.Target == "/etc/prometheus/prometheus.yml" {
			return v.Source
		}
	}
	t.Fatalf("%s: prometheus mounts no /etc/prometheus/prometheus.yml", f.name)
	return ""
}

// readHostFile reads a file by the absolute path compose resolved.
func readHostFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
