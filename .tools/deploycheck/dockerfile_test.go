package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	keyword string // upper case
	args    string
}

func parseDockerfile(t *testing.T, rel string) []instruction {
	t.Helper()
	var out []instruction
	var current strings.Builder
	flush := func() {
		line := strings.TrimSpace(current.String())
		current.Reset()
		if line == "" {
			return
		}
		keyword, args, _ := strings.Cut(line, " ")
		out = append(out, instruction{keyword: strings.ToUpper(keyword), args: strings.TrimSpace(args)})
	}
	for _, raw := range strings.Split(readRepoFile(t, rel), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			current.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		current.WriteString(line)
		flush()
	}
	flush()
	return out
}

func filter(instructions []instruction, keyword string) []instruction {
	var out []instruction
	for _, in := range instructions {
		if in.keyword == keyword {
			out = append(out, in)
		}
	}
	return out
}

// stages returns each stage's instructions, in order, starting at its FROM.
func stages(instructions []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range instructions {
		if in.keyword == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

var dockerfiles = []string{
	"kong/Dockerfile",
	"kong/Dockerfile-load-balanced",
	"auth_service/Dockerfile",
	"blog_service/Dockerfile",
}

// The build toolchain stays out of the runtime image (versions: pins_test.go).
func TestDockerfilesAreMultiStage(t *testing.T) {
	for _, df := range dockerfiles {
		t.Run(df, func(t *testing.T) {
			if froms := filter(parseDockerfile(t, df), "FROM"); len(froms) < 2 {
				t.Errorf("%d stages; the build toolchain must stay out of the runtime image", len(froms))
			}
		})
	}
}

func TestDockerfilesBuildStaticBinaries(t *testing.T) {
	for _, df := range dockerfiles {
		t.Run(df, func(t *testing.T) {
			build := stages(parseDockerfile(t, df))[0]
			var env, goBuild []string
			for _, in := range build {
				switch {
				case in.keyword == "ENV":
					env = append(env, in.args)
				case in.keyword == "RUN" && strings.Contains(in.args, "go build"):
					goBuild = append(goBuild, in.args)
				case in.keyword == "RUN" && strings.Contains(in.args, "go mod tidy"):
					t.Errorf("RUN %s: go.mod/go.sum are used as committed, never tidied at build time", in.args)
				}
			}
			if len(goBuild) != 1 {
				t.Fatalf("want one go build, found %v", goBuild)
			}
			allEnv := strings.Join(env, " ") + " " + goBuild[0]
			for _, want := range []string{"CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local"} {
				if !strings.Contains(allEnv, want) {
					t.Errorf("build stage lacks %s (env %q, build %q)", want, env, goBuild[0])
				}
			}
		})
	}
}

// sourcesOf lists the host paths a COPY or ADD reads (not --from copies,
// which read another stage).
func sourcesOf(in instruction) []string {
	fields := strings.Fields(in.args)
	var paths []string
	for _, f := range fields {
		if strings.HasPrefix(f, "--from=") {
			return nil
		}
		if strings.HasPrefix(f, "--") {
			continue
		}
		paths = append(paths, f)
	}
	if len(paths) < 2 {
		return nil
	}
	return paths[:len(paths)-1]
}

func TestDockerfilesNeverCopySecrets(t *testing.T) {
	secret := regexp.MustCompile(`(^|/)(\.env|\.test\.env|keys(/.*)?|[^/]*\.pem|[^/]*\.key)$`)
	for _, df := range dockerfiles {
		t.Run(df, func(t *testing.T) {
			for _, in := range parseDockerfile(t, df) {
				if in.keyword == "ADD" {
					t.Errorf("ADD %s: use COPY (no remote fetches or archive unpacking)", in.args)
				}
				if in.keyword != "COPY" && in.keyword != "ADD" {
					continue
				}
				for _, src := range sourcesOf(in) {
					if secret.MatchString(strings.TrimSuffix(src, "/")) || strings.Contains(src, ".env") || strings.Contains(src, "keys") {
						t.Errorf("%s %s copies a secret", in.keyword, in.args)
					}
				}
			}
			for _, in := range filter(parseDockerfile(t, df), "ENV") {
				for _, secretVar := range []string{"PASSWORD", "PWD", "SECRET", "API_KEY", "PRIVATE_KEY="} {
					if strings.Contains(strings.ToUpper(in.args), secretVar) {
						t.Errorf("ENV %s bakes a secret into the image", in.args)
					}
				}
			}
		})
	}
}

// Everything a COPY of a whole folder would take must pass the context's
// .dockerignore: secrets excluded, sources kept.
func TestDockerignoreExcludesSecrets(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		ignoreFile string
		excluded   []string
		kept       []string
	}{
		{ignoreFile: ".dockerignore",
			excluded: []string{".env", "auth_service/.env", "auth_service/.test.env", "blog_service/.env", "blog_service/.test.env",
				"auth_service/keys", "auth_service/keys/private.pem", "auth_service/keys/public.pem", "some/dir/server.pem",
				".git/config", ".data/mongo/x", ".devstack/run.log"},
			kept: []string{"chassis/go.mod", "chassis/go.sum", "devkit/go.mod", "auth_service/go.mod", "auth_service/cmd/main.go", "blog_service/cmd/main.go",
				"auth_service/.env.example", "blog_service/.test.env.example", "auth_service/Dockerfile", "blog_service/Dockerfile",
				// The documentation page blog_service embeds.
				"chassis/apidocs/page/index.html", "chassis/apidocs/page/docs.js", "chassis/apidocs/page/docs.css",
				"chassis/apidocs/swagger-ui/swagger-ui-bundle.js", "chassis/apidocs/swagger-ui/swagger-ui-standalone-preset.js",
				"chassis/apidocs/swagger-ui/swagger-ui.css"}},
		{ignoreFile: "auth_service/.dockerignore",
			excluded: []string{".env", ".test.env", "keys", "keys/private.pem", "keys/public.pem"},
			kept:     []string{"go.mod", "cmd/main.go", ".env.example"}},
		{ignoreFile: "blog_service/.dockerignore",
			excluded: []string{".env", ".test.env", "keys/x.pem"},
			kept:     []string{"go.mod", "cmd/main.go", ".env.example"}},
		{ignoreFile: "kong/.dockerignore",
			excluded: []string{".env", "apikey_auth_plugin/tmp/apikey-auth-plugin", "x.pem"},
			kept:     []string{"kong.yml", "kong-load-balanced.yml", "apikey_auth_plugin/go.mod", "apikey_auth_plugin/go.sum", "apikey_auth_plugin/main.go", "apikey_auth_plugin/verify/verify.go"}},
	}
	for _, tc := range tests {
		t.Run(tc.ignoreFile, func(t *testing.T) {
			f, err := os.Open(filepath.Join(root, tc.ignoreFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			patterns, err := ignorefile.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			matcher, err := patternmatcher.New(patterns)
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range tc.excluded {
				if ok, err := matcher.MatchesOrParentMatches(path); err != nil || !ok {
					t.Errorf("%s is sent to the Docker daemon (err %v)", path, err)
				}
			}
			for _, path := range tc.kept {
				if ok, err := matcher.MatchesOrParentMatches(path); err != nil || ok {
					t.Errorf("%s is excluded but the build needs it (err %v)", path, err)
				}
			}
		})
	}
}

func TestKongDockerfiles(t *testing.T) {
	tests := []struct {
		path, declarative string
	}{
		{"kong/Dockerfile", "kong.yml"},
		{"kong/Dockerfile-load-balanced", "kong-load-balanced.yml"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			all := stages(parseDockerfile(t, tc.path))
			build, runtime := all[0], all[len(all)-1]

			var buildCmd string
			for _, in := range filter(build, "RUN") {
				if strings.Contains(in.args, "go build") {
					buildCmd = in.args
				}
			}
			if !strings.Contains(buildCmd, "-o /out/apikey-auth-plugin") {
				t.Errorf("go build %q must name the binary apikey-auth-plugin (Kong names the plugin after it)", buildCmd)
			}

			var copies []string
			for _, in := range filter(runtime, "COPY") {
				copies = append(copies, strings.Join(strings.Fields(in.args), " "))
			}
			wantCopies := []string{
				"--from=plugin /out/apikey-auth-plugin /usr/local/bin/apikey-auth-plugin",
				tc.declarative + " /etc/kong/kong.yml",
				"error-template.json /etc/kong/error-template.json",
			}
			if !slices.Equal(copies, wantCopies) {
				t.Errorf("runtime COPY %q, want %q", copies, wantCopies)
			}

			env := map[string]string{}
			for _, in := range filter(runtime, "ENV") {
				for key, value := range parseEnv(in.args) {
					env[key] = value
				}
			}
			wantEnv := map[string]string{
				"KONG_DATABASE":           "off",
				"KONG_DECLARATIVE_CONFIG": "/etc/kong/kong.yml",
				"KONG_PLUGINS":            "bundled,apikey-auth-plugin",
				"KONG_PLUGINSERVER_NAMES": "apikey-auth-plugin",
				"KONG_PLUGINSERVER_APIKEY_AUTH_PLUGIN_START_CMD": "/usr/local/bin/apikey-auth-plugin",
				"KONG_PLUGINSERVER_APIKEY_AUTH_PLUGIN_QUERY_CMD": "/usr/local/bin/apikey-auth-plugin -dump",
				"KONG_ADMIN_LISTEN":     "127.0.0.1:8001",
				"KONG_PROXY_ACCESS_LOG": "/dev/stdout",
				"KONG_PROXY_ERROR_LOG":  "/dev/stderr",
				// Kong's own errors in the platform's JSON shape, also for
				// clients that send no Accept header (Kong's default type is
				// text/plain).
				"KONG_ERROR_TEMPLATE_JSON": "/etc/kong/error-template.json",
				"KONG_ERROR_DEFAULT_TYPE":  "application/json",
			}
			for key, want := range wantEnv {
				if env[key] != want {
					t.Errorf("ENV %s = %q, want %q", key, env[key], want)
				}
			}
			// DNS: a restarted replica (new address, absent from DNS while
			// down) is found within seconds, not after Docker's long TTL or
			// Kong's 30 s negative cache.
			for key, limit := range map[string]int{"KONG_DNS_VALID_TTL": 10, "KONG_DNS_STALE_TTL": 5, "KONG_DNS_NOT_FOUND_TTL": 5, "KONG_DNS_ERROR_TTL": 5} {
				n, err := strconv.Atoi(env[key])
				if err != nil || n < 1 || n > limit {
					t.Errorf("ENV %s = %q, want 1..%d seconds", key, env[key], limit)
				}
			}
			// No version or timing headers to clients (Kong's default sends
			// Server/Via with its version and latency headers): only the
			// request id, or nothing.
			if h := env["KONG_HEADERS"]; h != "off" {
				if h == "" {
					t.Error("ENV KONG_HEADERS is not set: Kong would send Server/Via with its version and latency headers")
				}
				for _, name := range strings.Split(h, ",") {
					if name = strings.TrimSpace(name); name != "X-Kong-Request-Id" {
						t.Errorf("ENV KONG_HEADERS lists %q; only X-Kong-Request-Id (or off) may be sent", name)
					}
				}
			}
			// Kong is the edge: the client address is the TCP peer, whatever
			// X-Forwarded-For a client sends.
			for _, key := range []string{"KONG_TRUSTED_IPS", "KONG_REAL_IP_HEADER", "KONG_REAL_IP_RECURSIVE"} {
				if v, set := env[key]; set {
					t.Errorf("ENV %s=%q: Kong must not trust client-sent forwarding headers by default", key, v)
				}
			}

			users := filter(runtime, "USER")
			if len(users) == 0 || users[len(users)-1].args != "kong" {
				t.Errorf("runtime user %v, want kong", users)
			}
			// The official image's entrypoint prepares the prefix directory
			// (permissions, stale sockets) for `kong docker-start`.
			if ep := filter(all[len(all)-1], "ENTRYPOINT"); len(ep) != 0 {
				t.Errorf("ENTRYPOINT %v overrides the image's /docker-entrypoint.sh", ep)
			}
			cmds := filter(runtime, "CMD")
			if len(cmds) != 1 || cmds[0].args != `["kong", "docker-start"]` {
				t.Errorf("CMD %v, want [\"kong\", \"docker-start\"] (the image's entrypoint starts Kong that way)", cmds)
			}
			if stop := filter(runtime, "STOPSIGNAL"); len(stop) != 0 {
				t.Errorf("STOPSIGNAL %v replaces the image's graceful SIGQUIT", stop)
			}
			if hc := filter(runtime, "HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0].args, `"kong", "health"`) {
				t.Errorf("HEALTHCHECK %v, want kong health", hc)
			}
			if expose := filter(runtime, "EXPOSE"); len(expose) != 1 || expose[0].args != "8000 8443" {
				t.Errorf("EXPOSE %v, want the proxy ports 8000 8443 only", expose)
			}
		})
	}
}

func TestServiceDockerfiles(t *testing.T) {
	for _, service := range []string{"auth_service", "blog_service"} {
		t.Run(service, func(t *testing.T) {
			all := stages(parseDockerfile(t, service+"/Dockerfile"))
			build, runtime := all[0], all[len(all)-1]

			var copies []string
			for _, in := range filter(build, "COPY") {
				copies = append(copies, sourcesOf(in)...)
			}
			for _, want := range []string{"chassis/", service + "/"} {
				if !slices.Contains(copies, want) {
					t.Errorf("build stage copies %v; it needs %s (context is the repository root)", copies, want)
				}
			}
			var buildCmd string
			for _, in := range filter(build, "RUN") {
				if strings.Contains(in.args, "go build") {
					buildCmd = in.args
				}
			}
			for _, want := range []string{"-trimpath", `-ldflags="-s -w"`, "-o /out/server", "./cmd"} {
				if !strings.Contains(buildCmd, want) {
					t.Errorf("go build %q lacks %s", buildCmd, want)
				}
			}

			env := map[string]string{}
			for _, in := range filter(runtime, "ENV") {
				for key, value := range parseEnv(in.args) {
					env[key] = value
				}
			}
			if env["GO_MODE"] != "release" || env["SERVER_PORT"] != "8000" {
				t.Errorf("runtime env %v, want GO_MODE=release and SERVER_PORT=8000", env)
			}
			users := filter(runtime, "USER")
			if len(users) == 0 || users[len(users)-1].args == "root" || strings.HasPrefix(users[len(users)-1].args, "0") {
				t.Errorf("runtime USER %v, want a non-root user", users)
			}
			if expose := filter(runtime, "EXPOSE"); len(expose) != 1 || expose[0].args != "8000" {
				t.Errorf("EXPOSE %v, want 8000", expose)
			}
			if hc := filter(runtime, "HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0].args, "http://127.0.0.1:8000/health/ready") {
				t.Errorf("HEALTHCHECK %v, want /health/ready", hc)
			}
			if ep := filter(runtime, "ENTRYPOINT"); len(ep) != 1 || ep[0].args != `["/server"]` {
				t.Errorf("ENTRYPOINT %v, want [\"/server\"]", ep)
			}
		})
	}
}

// parseEnv reads `ENV K=V K2="V 2"` (the only form these Dockerfiles use).
func parseEnv(args string) map[string]string {
	out := map[string]string{}
	for len(args) > 0 {
		args = strings.TrimSpace(args)
		key, rest, ok := strings.Cut(args, "=")
		if !ok {
			break
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			value, args = rest[1:end+1], rest[end+2:]
		} else {
			value, args, _ = strings.Cut(rest, " ")
		}
		out[strings.TrimSpace(key)] = value
	}
	return out
}
