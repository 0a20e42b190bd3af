package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDotenvParsing(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	content := "# comment\nGO_MODE=debug\nRSA_PRIVATE_KEY_PATH=\"keys/private.pem\"\nexport NAME='quoted value'\nPORT=8000 # trailing comment\nEMPTY=\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	values, err := ParseDotenvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GO_MODE": "debug", "RSA_PRIVATE_KEY_PATH": "keys/private.pem", "NAME": "quoted value", "PORT": "8000", "EMPTY": ""}
	for k, v := range want {
		if values[k] != v {
			t.Errorf("%s = %q, want %q", k, values[k], v)
		}
	}
}

// TestDotenvSyntax pins the dotenv syntax users know from other tools
// (docker compose, direnv, node's dotenv): the parser is godotenv's.
func TestDotenvSyntax(t *testing.T) {
	content := strings.Join([]string{
		"# a comment line",
		"   # an indented comment",
		"export EXPORTED=yes",
		"export  SPACED=two spaces after export",
		"DOUBLE=\"has # no comment\"",
		"SINGLE='literal $HOME and \\n'",
		"ESCAPED=\"a\\nb\"",
		"INLINE=value # comment",
		"HASH=abc#def",
		"PADDED =  padded  ",
		"MULTI=\"first",
		"second\"",
		"SINGLEMULTI='one",
		"two'",
		"REF=${EXPORTED}-ref",
		"EMPTY=",
		"EMPTYQ=\"\"",
		"CRLF=crlf\r",
		"LAST=no newline",
	}, "\n")
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	values, err := ParseDotenvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"EXPORTED":    "yes",
		"SPACED":      "two spaces after export",
		"DOUBLE":      "has # no comment",
		"SINGLE":      `literal $HOME and \n`,
		"ESCAPED":     "a\nb",
		"INLINE":      "value",
		"HASH":        "abc#def",
		"PADDED":      "padded",
		"MULTI":       "first\nsecond",
		"SINGLEMULTI": "one\ntwo",
		"REF":         "yes-ref",
		"EMPTY":       "",
		"EMPTYQ":      "",
		"CRLF":        "crlf",
		"LAST":        "no newline",
	}
	for k, v := range want {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if len(values) != len(want) {
		t.Errorf("parsed %d variables, want %d: %v", len(values), len(want), values)
	}
}

// TestDotenvErrorsNameTheLine: a malformed file is one line naming the file
// and the offending line, without the file's values.
func TestDotenvErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		line          int
		what          string
	}{
		{"no equals sign", "A=1\nB=2\nNOT A VARIABLE\nC=3\n", 3, "expected KEY=VALUE"},
		{"bad name", "A=1\nB-C=secret-value\n", 2, `unexpected character "-"`},
		{"last line without equals", "A=1\nB", 2, "expected KEY=VALUE"},
		{"unterminated quote", "A=\"ok\nmulti\"\nB=1\nC=\"secret-value\nD=2\n", 4, "unterminated quoted value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.env")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ParseDotenvFile(path)
			if err == nil {
				t.Fatal("malformed file accepted")
			}
			msg := err.Error()
			prefix := fmt.Sprintf("%s:%d: ", path, tc.line)
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.what) {
				t.Errorf("error %q, want %q... containing %q", msg, prefix, tc.what)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "secret-value") {
				t.Errorf("error %q must be one line without the file's values", msg)
			}
			if _, err := Load(path); err == nil || err.Error() != msg {
				t.Errorf("Load: %v, want the same error", err)
			}
		})
	}
}

func TestEnvironmentWinsOverFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("SERVER_PORT=8000\nDB_NAME=from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SERVER_PORT", "9001")
	src, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Int("SERVER_PORT", 1, 0, 65535); got != 9001 {
		t.Errorf("SERVER_PORT = %d, want the environment's 9001", got)
	}
	if got := src.String("DB_NAME", "default"); got != "from-file" {
		t.Errorf("DB_NAME = %q, want from-file", got)
	}
	if got := src.String("UNSET_VARIABLE_FOR_TEST", "fallback"); got != "fallback" {
		t.Errorf("default not applied: %q", got)
	}
}

func TestMissingFileUsesDefaults(t *testing.T) {
	src, err := Load(filepath.Join(t.TempDir(), "absent.env"))
	if err != nil {
		t.Fatalf("a missing file must not be an error: %v", err)
	}
	if got := src.Int("SOME_PORT_NOT_SET", 8000, 0, 65535); got != 8000 {
		t.Errorf("got %d", got)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		name, key, value string
		read             func(*Source)
	}{
		{"int not a number", "BCRYPT_COST", "abc", func(s *Source) { s.Int("BCRYPT_COST", 10, 4, 14) }},
		{"int out of range", "BCRYPT_COST", "99", func(s *Source) { s.Int("BCRYPT_COST", 10, 4, 14) }},
		{"bad duration", "NATS_REQUEST_TIMEOUT", "soon", func(s *Source) {
			s.Duration("NATS_REQUEST_TIMEOUT", time.Second, time.Millisecond, 0, time.Minute)
		}},
		{"not allowed", "GO_MODE", "prod", func(s *Source) { s.OneOf("GO_MODE", "release", "debug", "release", "test") }},
		{"bad bool", "FEATURE", "maybe", func(s *Source) { s.Bool("FEATURE", false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := FromMap(map[string]string{tt.key: tt.value})
			tt.read(src)
			err := src.Err()
			if err == nil {
				t.Fatal("invalid value accepted")
			}
			if !strings.Contains(err.Error(), tt.key) || strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error %q should be one line naming %s", err, tt.key)
			}
		})
	}
}

func TestDurationAcceptsBareIntegersInUnit(t *testing.T) {
	src := FromMap(map[string]string{"DB_QUERY_TIMEOUT_SEC": "60", "NATS_REQUEST_TIMEOUT": "150ms"})
	if got := src.Duration("DB_QUERY_TIMEOUT_SEC", 0, time.Second, 0, time.Hour); got != time.Minute {
		t.Errorf("got %s", got)
	}
	if got := src.Duration("NATS_REQUEST_TIMEOUT", 0, time.Millisecond, 0, time.Hour); got != 150*time.Millisecond {
		t.Errorf("got %s", got)
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRejectExampleSecrets(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   []string // variables named in the error; empty: no error
	}{
		{"real secrets", map[string]string{"REDIS_PASSWORD": "s3cr3t-redis", "NATS_PASSWORD": "0123456789"}, nil},
		{"unset is not an example", map[string]string{}, nil},
		{"redis example", map[string]string{"REDIS_PASSWORD": "changeit", "NATS_PASSWORD": "x7-real"}, []string{"REDIS_PASSWORD"}},
		{"every example", map[string]string{"REDIS_PASSWORD": "changeit", "NATS_PASSWORD": "changeit-blog"}, []string{"REDIS_PASSWORD", "NATS_PASSWORD"}},
		{"seeded api key", map[string]string{"SEED_API_KEY": "1D3F2DD1A5DE725DD4DF1D82BBB37"}, []string{"SEED_API_KEY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := FromMap(tc.values)
			src.RejectExampleSecrets("REDIS_PASSWORD", "NATS_PASSWORD", "SEED_API_KEY")
			err := src.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %v", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, key := range tc.want {
				if !strings.Contains(lines[i], key+":") || !strings.Contains(lines[i], "ALLOW_EXAMPLE_SECRETS") {
					t.Errorf("line %q does not name %s and the override", lines[i], key)
				}
				if v := tc.values[key]; strings.Contains(lines[i], v) {
					t.Errorf("line %q repeats the secret", lines[i])
				}
			}
		})
	}
}
