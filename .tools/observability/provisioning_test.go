package observability

import (
	"encoding/json"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const repoRoot = "../.."

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// mounts maps a service's bind-mount targets to their sources.
func mounts(volumes []string) map[string]string {
	out := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out[parts[1]] = strings.TrimPrefix(parts[0], "./")
		}
	}
	return out
}

// Both compose files provision the same Grafana: the data source points at
// their Prometheus service, the dashboards folder is mounted where the
// provider reads it, the dashboard's default data source is the provisioned
// one, and Prometheus mounts the alert rules where its configuration loads
// them.
func TestComposeProvisioning(t *testing.T) {
	var datasources struct {
		Datasources []struct {
			UID string `yaml:"uid"`
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, ".extra/observability/grafana/provisioning/datasources/prometheus.yml", &datasources)
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, ".extra/observability/grafana/provisioning/dashboards/platform.yml", &providers)
	if len(datasources.Datasources) != 1 || len(providers.Providers) != 1 {
		t.Fatalf("want one data source and one dashboard provider: %+v %+v", datasources, providers)
	}
	ds := datasources.Datasources[0]
	dsURL, err := url.Parse(ds.URL)
	if err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type variable struct {
		Name    string `json:"name"`
		Current struct {
			Value string `json:"value"`
		} `json:"current"`
	}
	var dash struct {
		Templating struct {
			List []variable `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(dash.Templating.List, func(v variable) bool { return v.Name == "datasource" })
	if i < 0 || dash.Templating.List[i].Current.Value != ds.UID {
		t.Errorf("the dashboard's datasource variable does not default to the provisioned uid %q", ds.UID)
	}

	for _, file := range []string{"docker-compose.yml", "docker-compose-load-balanced.yml"} {
		t.Run(file, func(t *testing.T) {
			var compose struct {
				Services map[string]struct {
					Image    string   `yaml:"image"`
					Profiles []string `yaml:"profiles"`
					Command  []string `yaml:"command"`
					Volumes  []string `yaml:"volumes"`
				} `yaml:"services"`
			}
			readYAML(t, file, &compose)
			grafana, ok := compose.Services["grafana"]
			if !ok || !slices.Contains(grafana.Profiles, "observability") {
				t.Fatal("no grafana service in the observability profile")
			}
			prom, ok := compose.Services[dsURL.Hostname()]
			if !ok || !slices.Contains(prom.Profiles, "observability") || dsURL.Port() != "9090" {
				t.Errorf("the data source %s is not the observability profile's Prometheus", ds.URL)
			}
			gm := mounts(grafana.Volumes)
			if gm["/etc/grafana/provisioning"] != ".extra/observability/grafana/provisioning" {
				t.Errorf("grafana mounts %v: the provisioning folder must be /etc/grafana/provisioning", gm)
			}
			if gm[providers.Providers[0].Options.Path] != ".extra/observability/grafana/dashboards" {
				t.Errorf("grafana mounts %v: the dashboards folder must be at the provider's path %s", gm, providers.Providers[0].Options.Path)
			}

			pm := mounts(prom.Volumes)
			var promConfig struct {
				RuleFiles []string `yaml:"rule_files"`
			}
			readYAML(t, pm["/etc/prometheus/prometheus.yml"], &promConfig)
			if len(promConfig.RuleFiles) != 1 || pm[promConfig.RuleFiles[0]] != ".extra/observability/alerts.yml" {
				t.Errorf("prometheus loads rules %v from mounts %v; want alerts.yml", promConfig.RuleFiles, pm)
			}
		})
	}
}
