package chartcheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The chart's Kong file is what the generator makes of the compose stack's
// file today: one source for routes and plugin settings.
func TestChartKongConfigIsUpToDate(t *testing.T) {
	root := repoRoot(t)
	want, err := GenerateKongFile(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(ChartKongPath)))
	if err != nil {
		t.Fatalf("%v; generate it with (from the repository root): %s", err, RegenerateCommand)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with %s; regenerate it with (from the repository root):\n  %s",
			ChartKongPath, KongSourcePath, RegenerateCommand)
	}
}

func TestGenerateKong(t *testing.T) {
	const upstreams = `
upstreams:
  - name: auth_upstream
    targets:
      - target: auth1:8000
        weight: 100
      - target: auth2:8000
        weight: 100
`
	const plugins = `
plugins:
  - name: apikey-auth-plugin
    config:
      verification_urls:
        - http://auth1:8000/verify/apikey
        - http://auth2:8000/verify/apikey
`
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the output
		absent    []string
		err       string
	}{
		{
			name: "replicas collapse into one placeholder per service",
			src:  "# two auth replicas (auth1, auth2)\n_format_version: \"3.0\"\n" + upstreams + plugins,
			want: []string{
				"- target: __SERVICE_auth__:8000\n        weight: 100\n",
				"- http://__SERVICE_auth__:8000/verify/apikey\n",
				"# two auth replicas (auth1, auth2)", // comments are kept
				"# GENERATED from kong/kong-load-balanced.yml",
			},
			absent: []string{"auth2:8000"},
		},
		{
			name: "an unknown host is refused",
			src:  strings.Replace(upstreams, "auth2", "cache1", 1) + plugins,
			err:  `host "cache1" is not a replica`,
		},
		{
			name: "a replica address in another field is refused",
			src:  upstreams + plugins + "services:\n  - name: x\n    url: http://blog2:8000\n",
			err:  `replica address "blog2:8000" outside`,
		},
		{
			name: "no targets means the file changed shape",
			src:  plugins,
			err:  "found 0 upstream targets",
		},
		{
			name: "a relative verification URL is refused",
			src:  upstreams + strings.Replace(plugins, "http://auth1:8000/verify/apikey", "/verify/apikey", 1),
			err:  "not an absolute URL",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := GenerateKong([]byte(tc.src))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(string(out), a) {
					t.Errorf("output keeps %q:\n%s", a, out)
				}
			}
			if strings.Count(string(out), "__SERVICE_auth__") != 2 {
				t.Errorf("want one target and one URL:\n%s", out)
			}
		})
	}
}
