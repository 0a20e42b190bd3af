package chartcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// chartValues reads the chart's values.yaml.
func chartValues(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), ChartPath, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		t.Fatal(err)
	}
	return vals
}

// dig follows keys through nested maps.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a map on the way to %v", k, keys)
		}
		v = m[k]
	}
	return v
}

// The bundled NATS servers get the users, permissions and liveness settings
// of the compose server's configuration file, and each user's password from
// the chart's Secret.
func TestBundledNATSMatchesComposeServer(t *testing.T) {
	// nats-server resolves $NATS_*_PASSWORD from the environment.
	t.Setenv("NATS_AUTH_PASSWORD", "'x'")
	t.Setenv("NATS_BLOG_PASSWORD", "'x'")
	server, err := conf.ParseFile(filepath.Join(repoRoot(t), ".extra/nats/nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	vals := chartValues(t)
	merge := dig(t, vals, "nats", "config", "merge")
	for _, k := range []string{"ping_interval", "ping_max"} {
		if got, want := fmt.Sprint(dig(t, merge, k)), fmt.Sprint(server[k]); got != want {
			t.Errorf("nats.config.merge.%s = %s, nats-server.conf says %s", k, got, want)
		}
	}
	wantUsers := map[string]any{}
	for _, u := range dig(t, server, "authorization", "users").([]any) {
		m := u.(map[string]any)
		wantUsers[m["user"].(string)] = m["permissions"]
	}
	env := dig(t, vals, "nats", "container", "env").(map[string]any)
	secret := dig(t, vals, "secrets", "name")
	gotUsers := map[string]any{}
	for _, u := range dig(t, merge, "authorization", "users").([]any) {
		m := u.(map[string]any)
		user := m["user"].(string)
		gotUsers[user] = m["permissions"]
		variable := "NATS_" + strings.ToUpper(user) + "_PASSWORD"
		if m["password"] != "<< $"+variable+" >>" {
			t.Errorf("user %s: password %v, want << $%s >>", user, m["password"], variable)
		}
		ref := dig(t, env, variable, "valueFrom", "secretKeyRef")
		if want := map[string]any{"name": secret, "key": "nats-" + user + "-password"}; !reflect.DeepEqual(ref, want) {
			t.Errorf("nats.container.env.%s: %v, want %v", variable, ref, want)
		}
	}
	if !reflect.DeepEqual(gotUsers, wantUsers) {
		t.Errorf("nats users and permissions differ from .extra/nats/nats-server.conf:\nchart: %v\nconf:  %v", gotUsers, wantUsers)
	}
	for _, k := range []string{"auth", "blog"} {
		if dig(t, vals, k, "natsUser") != k || wantUsers[k] == nil {
			t.Errorf("%s.natsUser must be the NATS user %s", k, k)
		}
	}
}

// aclRule is one Redis ACL user: key patterns and allowed commands.
type aclRule struct{ keys, commands []string }

// The bundled Redis gets the same per-service ACL users as compose: the
// same key patterns and commands, starting from nothing.
func TestBundledRedisACLMatchesCompose(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose-load-balanced.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yamlv3.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	want := map[string]aclRule{}
	cmd := compose.Services["redis"].Command
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != "--user" || i+1 >= len(cmd) {
			continue
		}
		name := cmd[i+1]
		var r aclRule
		for _, tok := range cmd[i+2:] {
			if strings.HasPrefix(tok, "--") {
				break
			}
			switch {
			case strings.HasPrefix(tok, "~"):
				r.keys = append(r.keys, tok)
			case strings.HasPrefix(tok, "+"):
				r.commands = append(r.commands, tok)
			}
		}
		want[name] = r
	}
	if len(want) != 2 {
		t.Fatalf("compose's redis defines ACL users %v; want auth and blog", keys(want))
	}
	vals := chartValues(t)
	got := map[string]aclRule{}
	for _, u := range dig(t, vals, "redis", "auth", "acl", "users").([]any) {
		m := u.(map[string]any)
		commands := strings.Fields(m["commands"].(string))
		if len(commands) == 0 || commands[0] != "-@all" {
			t.Errorf("redis ACL user %v: commands must start from -@all", m["username"])
		} else {
			commands = commands[1:]
		}
		got[m["username"].(string)] = aclRule{keys: strings.Fields(m["keys"].(string)), commands: commands}
	}
	for name, w := range want {
		g := got[name]
		for _, l := range [][]string{g.keys, g.commands, w.keys, w.commands} {
			slices.Sort(l)
		}
		if !slices.Equal(g.keys, w.keys) || !slices.Equal(g.commands, w.commands) {
			t.Errorf("redis ACL user %s: chart keys %v commands %v; compose keys %v commands %v", name, g.keys, g.commands, w.keys, w.commands)
		}
	}
	if len(got) != len(want) {
		t.Errorf("chart ACL users %v, compose %v", keys(got), keys(want))
	}
	for _, k := range []string{"auth", "blog"} {
		if _, ok := got[fmt.Sprint(dig(t, vals, k, "redisUsername"))]; !ok {
			t.Errorf("%s.redisUsername is not an ACL user of the bundled Redis", k)
		}
	}
}
