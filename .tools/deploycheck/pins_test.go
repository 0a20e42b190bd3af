package deploycheck

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// exactTag is repository:version with all three version numbers, optionally
// followed by one variant (alpine3.22, noble...). No floating tags.
var exactTag = regexp.MustCompile(`^([a-z0-9./_-]+):v?([0-9]+\.[0-9]+\.[0-9]+)(?:-([a-z0-9.]+))?$`)

type version [3]int

func parseVersion(s string) (version, error) {
	var v version
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, fmt.Errorf("version %q", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("version %q", s)
		}
		v[i] = n
	}
	return v, nil
}

func (v version) less(o version) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func mustVersion(s string) version {
	v, err := parseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// minimumAlpine is the oldest supported Alpine release (3.20 and older are
// end of life).
var minimumAlpine = mustVersion("3.22")

// pinRules say which releases of each image are acceptable: supported lines
// that carry the fixes the platform relies on.
func pinRules(t *testing.T) map[string]func(version) error {
	goLine := goDirective(t)
	return map[string]func(version) error{
		// 3.9 is the last open-source 3.x line (3.8 fixed a plugin-server
		// fail-open case).
		"kong": func(v version) error { return requireLine(v, "3.9") },
		"mongo": func(v version) error {
			if requireLine(v, "7.0") == nil || requireLine(v, "8.0") == nil {
				return nil
			}
			return fmt.Errorf("want MongoDB 7.0.x or 8.0.x")
		},
		"redis": func(v version) error { return atLeast(v, "7.4") },
		"nats":  func(v version) error { return atLeast(v, "2.11") },
		"alpine": func(v version) error {
			if v.less(minimumAlpine) {
				return fmt.Errorf("Alpine %s is end of life; want %s or later", v, minimumAlpine)
			}
			return nil
		},
		// The build runs with GOTOOLCHAIN=local: the image's Go must be at
		// least every module's go directive, on the same release line.
		"golang": func(v version) error {
			if v.less(goLine) || v[0] != goLine[0] || v[1] != goLine[1] {
				return fmt.Errorf("want Go %d.%d.x at least %s (the modules' go directive)", goLine[0], goLine[1], goLine)
			}
			return nil
		},
		"prom/prometheus":          func(version) error { return nil },
		"grafana/grafana":          func(v version) error { return atLeast(v, "11.0") },
		"jaegertracing/all-in-one": func(version) error { return nil },
	}
}

func requireLine(v version, line string) error {
	l := mustVersion(line)
	if v[0] != l[0] || v[1] != l[1] {
		return fmt.Errorf("want the %s.x line", line)
	}
	return nil
}

func atLeast(v version, min string) error {
	if v.less(mustVersion(min)) {
		return fmt.Errorf("want %s or later", min)
	}
	return nil
}

// goDirective returns the highest go directive of the modules the images
// build.
func goDirective(t *testing.T) version {
	t.Helper()
	line := regexp.MustCompile(`(?m)^go ([0-9.]+)\s*$`)
	var highest version
	for _, mod := range []string{"chassis/go.mod", "auth_service/go.mod", "blog_service/go.mod", "kong/apikey_auth_plugin/go.mod"} {
		m := line.FindStringSubmatch(readRepoFile(t, mod))
		if m == nil {
			t.Fatalf("%s has no go directive", mod)
		}
		v, err := parseVersion(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if highest.less(v) {
			highest = v
		}
	}
	return highest
}

// checkPin reports why image is not an acceptable exact pin, or nil.
func checkPin(image string, rules map[string]func(version) error) error {
	m := exactTag.FindStringSubmatch(image)
	if m == nil {
		return fmt.Errorf("not pinned to an exact version (repository:X.Y.Z[-variant])")
	}
	repo, variant := m[1], m[3]
	rule, ok := rules[repo]
	if !ok {
		return fmt.Errorf("no version rule for %s; add one to pinRules", repo)
	}
	v, err := parseVersion(m[2])
	if err != nil {
		return err
	}
	if err := rule(v); err != nil {
		return err
	}
	// An Alpine-based variant names its Alpine release, which must be
	// supported too.
	if strings.HasPrefix(variant, "alpine") {
		av, err := parseVersion(strings.TrimPrefix(variant, "alpine"))
		if err != nil {
			return fmt.Errorf("variant %q: name the Alpine release (alpine3.22...)", variant)
		}
		if av.less(minimumAlpine) {
			return fmt.Errorf("variant %s is end of life; want alpine%d.%d or later", variant, minimumAlpine[0], minimumAlpine[1])
		}
	}
	return nil
}

// Every image the stacks run or build from is pinned to an exact, supported
// version.
func TestImagesArePinnedToSupportedVersions(t *testing.T) {
	rules := pinRules(t)
	for _, f := range composeFiles {
		t.Run(f.name, func(t *testing.T) {
			project, err := loadCompose(t, f.name, composeEnv, cli.WithProfiles([]string{"observability"}))
			if err != nil {
				t.Fatal(err)
			}
			for name, svc := range project.Services {
				if strings.HasPrefix(svc.Image, "blogplatform/") {
					continue // built here: its FROM lines are checked below
				}
				if err := checkPin(svc.Image, rules); err != nil {
					t.Errorf("%s: image %s: %v", name, svc.Image, err)
				}
			}
		})
	}
	for _, df := range dockerfiles {
		t.Run(df, func(t *testing.T) {
			stageNames := map[string]bool{}
			for _, from := range filter(parseDockerfile(t, df), "FROM") {
				fields := strings.Fields(from.args)
				image := fields[0]
				if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
					stageNames[fields[2]] = true
				}
				if stageNames[image] {
					continue
				}
				if err := checkPin(image, rules); err != nil {
					t.Errorf("FROM %s: %v", image, err)
				}
			}
		})
	}
}

// The rules themselves refuse what the issue called out.
func TestPinRules(t *testing.T) {
	rules := pinRules(t)
	for image, ok := range map[string]bool{
		"kong:3.9.3":                 true,
		"kong:3.7.1":                 false,
		"kong:3.9":                   false,
		"kong:latest":                false,
		"mongo:7.0.12":               true,
		"mongo:8.0.32":               true,
		"mongo:8.3.8":                false,
		"redis:7.2.5":                false,
		"redis:8.10.2-alpine3.23":    true,
		"redis:8.10.2-alpine":        false,
		"nats:2.10.17-alpine":        false,
		"nats:2.15.0-alpine3.22":     true,
		"nats:2.15.0-alpine3.20":     false,
		"alpine:3.20.3":              false,
		"alpine:3.24.2":              true,
		"golang:1.26.8-alpine3.24":   true,
		"golang:1.25.9-alpine3.22":   false,
		"busybox:1.37.0":             false,
		"prom/prometheus:v2.53.1":    true,
		"jaegertracing/all-in-one:1": false,
	} {
		if err := checkPin(image, rules); (err == nil) != ok {
			t.Errorf("%s: err %v, want accepted %v", image, err, ok)
		}
	}
}
