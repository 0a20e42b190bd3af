package deploycheck

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The init scripts create database users only; auth_service seeds roles, the
// API key and the admin itself (CONTRACT §2.12), so a seed here would be a
// second, diverging source of that data.
func TestMongoInitScriptsOnlyCreateUsers(t *testing.T) {
	tests := []struct {
		script    string
		databases []string
	}{
		{".extra/setup/auth-init-mongo.js", []string{"auth-prod-db", "auth-dev-db", "auth-test-db"}},
		{".extra/setup/blog-init-mongo.js", []string{"blog-prod-db", "blog-dev-db", "blog-test-db"}},
	}
	// Mongo shell calls that write data or schema.
	writes := regexp.MustCompile(`\.(insert|insertOne|insertMany|update|updateOne|updateMany|replaceOne|save|createCollection|createIndex|createIndexes|drop|deleteOne|deleteMany|remove)\s*\(`)
	listed := regexp.MustCompile(`"([a-z]+-(?:prod|dev|test)-db)"`)
	call := regexp.MustCompile(`\.([A-Za-z]+)\s*\(`)

	for _, tc := range tests {
		t.Run(tc.script, func(t *testing.T) {
			script := readRepoFile(t, tc.script)
			code := stripJSComments(script)

			if m := writes.FindString(code); m != "" {
				t.Errorf("script writes data (%s): only database users belong here", m)
			}
			var databases []string
			for _, m := range listed.FindAllStringSubmatch(code, -1) {
				databases = append(databases, m[1])
			}
			if !slices.Equal(databases, tc.databases) {
				t.Errorf("databases %v, want %v", databases, tc.databases)
			}
			for _, want := range []string{"createUser(", "`${name}-user`", `pwd: "changeit"`, `role: "readWrite", db: name`, "getSiblingDB(name)", "getUser(user)"} {
				if !strings.Contains(code, want) {
					t.Errorf("script lacks %q", want)
				}
			}
			allowed := []string{"getSiblingDB", "getUser", "createUser"}
			for _, m := range call.FindAllStringSubmatch(code, -1) {
				if !slices.Contains(allowed, m[1]) {
					t.Errorf("script calls %s(); only %v are expected", m[1], allowed)
				}
			}
		})
	}
}

func stripJSComments(src string) string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "//") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
