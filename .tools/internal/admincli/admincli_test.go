package admincli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"blogplatform/tools/internal/platform"
)

// TestDefaultsAreTheLocalPlatformsSeed: without flags the commands sign in
// as the local platform's seeded admin with its seeded key.
func TestDefaultsAreTheLocalPlatformsSeed(t *testing.T) {
	if DefaultAPIKey != platform.DevAPIKey || DefaultEmail != platform.DevAdminEmail || DefaultPassword != platform.DevAdminPassword {
		t.Fatal("the CLI's defaults differ from the local platform's seeded credentials")
	}
	if DefaultGateway != "http://"+platform.DefaultGatewayAddr {
		t.Fatalf("default gateway %s, the platform listens on %s", DefaultGateway, platform.DefaultGatewayAddr)
	}
}

// TestUsageErrorsSendNothing: a wrong command line exits with 2 and the
// usage, before any request (the gateway address below accepts nothing).
func TestUsageErrorsSendNothing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"keys", "list"}, `unknown command "keys"`},
		{"unknown subcommand", []string{"apikeys", "delete"}, `unknown command "apikeys delete"`},
		{"roles without verb", []string{"users", "roles"}, `unknown command "users roles"`},
		{"unknown flag", []string{"apikeys", "list", "-all"}, "flag provided but not defined: -all"},
		{"bad key id", []string{"apikeys", "revoke", "abc"}, `KEY_ID "abc" is not an id`},
		{"missing key id", []string{"apikeys", "revoke"}, "apikeys revoke needs KEY_ID"},
		{"missing role", []string{"users", "roles", "grant", "ada@example.com"}, "users roles grant needs USER ROLE"},
		{"extra argument", []string{"users", "disable", "a@b.c", "now"}, "users disable needs USER"},
		{"session end without target", []string{"sessions", "end", "a@b.c"}, "sessions end needs USER SESSION_ID, or USER -all"},
		{"session end with both", []string{"sessions", "end", "a@b.c", "-all", "000000000000000000000001"}, "sessions end needs"},
		{"bad session id", []string{"sessions", "end", "a@b.c", "xyz"}, `SESSION_ID "xyz" is not an id`},
		{"negative limit", []string{"apikeys", "list", "-limit", "-1"}, "-limit must be positive"},
		{"gateway not a URL", []string{"-gateway", "localhost:8000", "apikeys", "list"}, "is not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"-gateway", "http://127.0.0.1:1", "-timeout", "1s"}, tt.args...)
			if tt.name == "gateway not a URL" {
				args = tt.args
			}
			code := Run(context.Background(), args, Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut})
			if code != ExitUsage || !strings.Contains(errOut.String(), tt.want) || !strings.Contains(errOut.String(), "Usage:") {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), ExitUsage, tt.want)
			}
		})
	}
}

// TestUnreachableGatewayIsAnError: a run that cannot reach the gateway
// exits with 1 and says so.
func TestUnreachableGatewayIsAnError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"apikeys", "list"}, Env{
		Getenv: func(name string) string {
			if name == EnvGateway {
				return "http://127.0.0.1:1"
			}
			return ""
		},
		Stdout: &out, Stderr: &errOut,
	})
	if code != ExitError || !strings.Contains(errOut.String(), "sign-in as "+DefaultEmail) || !strings.Contains(errOut.String(), "127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"-h"}, Env{Stdout: &out, Stderr: &out}); code != ExitOK || !strings.Contains(out.String(), "sessions end USER -all") {
		t.Fatalf("exit %d: %q", code, out.String())
	}
}
