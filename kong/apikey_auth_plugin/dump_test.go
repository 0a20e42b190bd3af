package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestDumpDescribesThePluginToKong builds the plugin binary the way the Kong
// Dockerfiles do (module alone, GOWORK=off, CGO_ENABLED=0) and checks what
// `-dump` tells Kong: Kong runs KONG_PLUGINSERVER_APIKEY_AUTH_PLUGIN_QUERY_CMD
// and registers the plugin from this output.
func TestDumpDescribesThePluginToKong(t *testing.T) {
	binary := filepath.Join(t.TempDir(), "apikey-auth-plugin") // go-pdk names the plugin after the binary
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (standalone, as in kong/Dockerfile): %v\n%s", err, out)
	}

	out, err := exec.Command(binary, "-dump").Output()
	if err != nil {
		t.Fatalf("%s -dump: %v", binary, err)
	}
	var info struct {
		Protocol   string
		SocketPath string
		Plugins    []struct {
			Name     string
			Phases   []string
			Version  string
			Priority int
			Schema   struct {
				Name   string
				Fields []map[string]struct {
					Type   string
					Fields []map[string]struct {
						Type     string
						Elements *struct {
							Type   string
							Fields []map[string]struct {
								Type     string
								Elements *struct{ Type string }
							}
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("-dump output is not JSON: %v\n%s", err, out)
	}
	if info.Protocol != "ProtoBuf:1" || info.SocketPath != "/usr/local/kong/apikey-auth-plugin.socket" {
		t.Errorf("protocol %q socket %q, want ProtoBuf:1 on /usr/local/kong/apikey-auth-plugin.socket (Kong's default for this name)", info.Protocol, info.SocketPath)
	}
	if len(info.Plugins) != 1 {
		t.Fatalf("dump lists %d plugins, want 1:\n%s", len(info.Plugins), out)
	}
	plugin := info.Plugins[0]
	if plugin.Name != "apikey-auth-plugin" || plugin.Schema.Name != "apikey-auth-plugin" {
		t.Errorf("name %q / schema name %q, want apikey-auth-plugin", plugin.Name, plugin.Schema.Name)
	}
	if !slices.Equal(plugin.Phases, []string{"access"}) {
		t.Errorf("phases = %v, want [access]", plugin.Phases)
	}
	if plugin.Priority != Priority || Priority != 1000 {
		t.Errorf("priority = %d, want 1000", plugin.Priority)
	}
	if plugin.Version != Version || plugin.Version == "" {
		t.Errorf("version = %q, want %q", plugin.Version, Version)
	}

	wantFields := map[string]string{ // field -> Kong schema type
		"verification_urls":    "array",
		"timeout_ms":           "integer",
		"cache_ttl_seconds":    "integer",
		"public_paths":         "array",
		"stale_ttl_seconds":    "integer",
		"negative_ttl_seconds": "integer",
		"bypass":               "boolean",
		"rate_limits":          "array",
	}
	gotFields := map[string]string{}
	var urlElements string
	var ruleElements string
	ruleFields := map[string]string{} // rate_limits element field -> type (+ element type)
	for _, top := range plugin.Schema.Fields {
		config, ok := top["config"]
		if !ok {
			continue
		}
		if config.Type != "record" {
			t.Errorf("config type = %q, want record", config.Type)
		}
		for _, field := range config.Fields {
			for name, decl := range field {
				gotFields[name] = decl.Type
				if name == "verification_urls" && decl.Elements != nil {
					urlElements = decl.Elements.Type
				}
				if name == "rate_limits" && decl.Elements != nil {
					ruleElements = decl.Elements.Type
					for _, rf := range decl.Elements.Fields {
						for rname, rdecl := range rf {
							ruleFields[rname] = rdecl.Type
							if rdecl.Elements != nil {
								ruleFields[rname] += " of " + rdecl.Elements.Type
							}
						}
					}
				}
			}
		}
	}
	for name, typ := range wantFields {
		if gotFields[name] != typ {
			t.Errorf("schema field %s has type %q, want %q (schema fields: %v)", name, gotFields[name], typ, gotFields)
		}
	}
	if len(gotFields) != len(wantFields) {
		t.Errorf("schema fields = %v, want exactly %v (internal state must not leak into Kong's schema)", gotFields, wantFields)
	}
	if urlElements != "string" {
		t.Errorf("verification_urls elements = %q, want string", urlElements)
	}
	// rate_limits: [{paths: [string], per_minute: integer}], the shape the
	// Kong files and the local gateway use.
	wantRule := map[string]string{"paths": "array of string", "per_minute": "integer"}
	if ruleElements != "record" || len(ruleFields) != len(wantRule) || ruleFields["paths"] != wantRule["paths"] || ruleFields["per_minute"] != wantRule["per_minute"] {
		t.Errorf("rate_limits elements = %q with fields %v, want record with %v", ruleElements, ruleFields, wantRule)
	}
}
