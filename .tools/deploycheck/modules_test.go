package deploycheck

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// devInfrastructure lists the module paths of the development infrastructure:
// the embedded store, NATS server and Redis stand-in, the OpenAPI validator of
// the tests, and devkit, the module that wraps them. Release binaries link
// none of them, and product code (chassis) requires none of them.
var devInfrastructure = []string{
	"blogplatform/devkit",
	"github.com/FerretDB/FerretDB",
	"github.com/nats-io/nats-server/v2",
	"github.com/alicebob/miniredis/v2",
	"github.com/getkin/kin-openapi",
}

func isDevInfrastructure(path string) bool {
	for _, m := range devInfrastructure {
		if path == m || strings.HasPrefix(path, m+"/") {
			return true
		}
	}
	return false
}

var services = []string{"auth_service", "blog_service"}

// goIn runs the go command in a module folder of the repository, alone (as
// the Dockerfiles build it) and without changing go.mod.
func goIn(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join(repoRoot(t), dir)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr)
	}
	return out
}

// goMod is the part of `go mod edit -json` these tests read.
type goMod struct {
	Require []struct{ Path string }
	Replace []struct {
		Old struct{ Path string }
		New struct{ Path string }
	}
}

func readGoMod(t *testing.T, dir string) goMod {
	t.Helper()
	var m goMod
	if err := json.Unmarshal(goIn(t, dir, "mod", "edit", "-json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The release binaries link no development infrastructure: the packages
// `go build ./cmd` compiles (what the Docker build compiles) include none of
// its packages.
func TestReleaseBinariesLinkNoDevelopmentInfrastructure(t *testing.T) {
	for _, service := range services {
		t.Run(service, func(t *testing.T) {
			deps := strings.Fields(string(goIn(t, service, "list", "-deps", "./cmd")))
			if !slices.Contains(deps, "blogplatform/chassis/httpx") {
				t.Fatalf("go list -deps ./cmd lists %d packages without blogplatform/chassis/httpx; the listing is not the binary's", len(deps))
			}
			for _, pkg := range deps {
				if isDevInfrastructure(pkg) {
					t.Errorf("the release binary links %s", pkg)
				}
			}
		})
	}
}

// Product code requires no development infrastructure: the chassis module's
// go.mod names none of it, and chassis builds and tests alone (as a module
// that names none of it must), its test packages included. A chassis test
// that needs a live server belongs in devkit/chassistest: in the workspace
// it could import devkit without chassis's go.mod naming it, so go.mod
// alone would not show it.
func TestChassisRequiresNoDevelopmentInfrastructure(t *testing.T) {
	m := readGoMod(t, "chassis")
	if len(m.Require) == 0 {
		t.Fatal("chassis/go.mod requires nothing; the check below would check nothing")
	}
	for _, r := range m.Require {
		if isDevInfrastructure(r.Path) {
			t.Errorf("chassis/go.mod requires %s", r.Path)
		}
	}
	for _, r := range m.Replace {
		if isDevInfrastructure(r.Old.Path) {
			t.Errorf("chassis/go.mod replaces %s", r.Old.Path)
		}
	}
	deps := strings.Fields(string(goIn(t, "chassis", "list", "-test", "-deps", "-f", "{{.ImportPath}}", "./...")))
	if !slices.Contains(deps, "blogplatform/chassis/httpx") {
		t.Fatalf("go list -test -deps ./... lists %d packages without blogplatform/chassis/httpx", len(deps))
	}
	for _, pkg := range deps {
		if isDevInfrastructure(pkg) {
			t.Errorf("chassis (or one of its tests) uses %s", pkg)
		}
	}
}

// The service images fetch only the modules the binary links: no
// `go mod download` of the whole graph (test-only modules included), a
// BuildKit cache mount for modules and build cache instead, and every module
// a replace directive names is in the build context (at least its go.mod,
// which the go command reads even when no package of it is built).
func TestServiceDockerfilesFetchOnlyWhatTheBinaryNeeds(t *testing.T) {
	root := repoRoot(t)
	ignore, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer ignore.Close()
	patterns, err := ignorefile.ReadAll(ignore)
	if err != nil {
		t.Fatal(err)
	}
	buildContext, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range services {
		t.Run(service, func(t *testing.T) {
			df := service + "/Dockerfile"
			if first, _, _ := strings.Cut(readRepoFile(t, df), "\n"); first != "# syntax=docker/dockerfile:1" {
				t.Errorf("first line %q, want # syntax=docker/dockerfile:1 (RUN --mount needs the BuildKit frontend)", first)
			}
			build := stages(parseDockerfile(t, df))[0]
			var goBuild string
			var copied []string
			for _, in := range build {
				switch {
				case in.keyword == "RUN" && strings.Contains(in.args, "go mod download"):
					t.Errorf("RUN %s downloads every module go.mod lists, test-only ones included", in.args)
				case in.keyword == "RUN" && strings.Contains(in.args, "go build"):
					goBuild = in.args
				case in.keyword == "COPY":
					copied = append(copied, sourcesOf(in)...)
				}
			}
			for _, mount := range []string{"--mount=type=cache,target=/go/pkg/mod", "--mount=type=cache,target=/root/.cache/go-build"} {
				if !strings.Contains(goBuild, mount) {
					t.Errorf("go build %q lacks %s", goBuild, mount)
				}
			}
			replaces := readGoMod(t, service).Replace
			if len(replaces) == 0 {
				t.Fatalf("%s/go.mod has no replace directive; the check below would check nothing", service)
			}
			for _, r := range replaces {
				if !strings.HasPrefix(r.New.Path, "../") {
					continue
				}
				dir := strings.TrimPrefix(r.New.Path, "../")
				if !slices.Contains(copied, dir+"/") && !slices.Contains(copied, dir+"/go.mod") {
					t.Errorf("go.mod replaces %s with %s, but the build stage copies only %v", r.Old.Path, r.New.Path, copied)
				}
				if ok, err := buildContext.MatchesOrParentMatches(dir + "/go.mod"); err != nil || ok {
					t.Errorf(".dockerignore keeps %s/go.mod out of the build context (err %v)", dir, err)
				}
			}
		})
	}
}
