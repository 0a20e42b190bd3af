package deploycheck

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The init script creates each service's database user only; auth_service
// seeds roles, the API key and the admin itself, so a seed here would be a
// second, diverging source of that data. The database, user and password
// come from the mongo container's environment (mongosh's process.env), the
// same values compose gives the services, so no password lives in the file.
func TestMongoInitScriptCreatesUsersFromTheEnvironment(t *testing.T) {
	const script = ".extra/setup/services-init-mongo.js"
	// Mongo shell calls that write data or schema.
	writes := regexp.MustCompile(`\.(insert|insertOne|insertMany|update|updateOne|updateMany|replaceOne|save|createCollection|createIndex|createIndexes|drop|deleteOne|deleteMany|remove)\s*\(`)
	call := regexp.MustCompile(`\.([A-Za-z]+)\s*\(`)
	stringLiteral := regexp.MustCompile("\"[^\"]*\"|'[^']*'|`[^`]*`")
	pwdField := regexp.MustCompile(`pwd\s*:\s*([^,\n}]+)`)

	code := stripJSComments(readRepoFile(t, script))
	if m := writes.FindString(code); m != "" {
		t.Errorf("script writes data (%s): only the database users belong here", m)
	}
	allowed := []string{"getSiblingDB", "getUser", "createUser"}
	for _, m := range call.FindAllStringSubmatch(code, -1) {
		if !slices.Contains(allowed, m[1]) {
			t.Errorf("script calls %s(); only %v are expected", m[1], allowed)
		}
	}
	// Both services, each from its own variables.
	for _, want := range []string{`"AUTH_"`, `"BLOG_"`, `"DB_NAME"`, `"DB_USER"`, `"DB_USER_PWD"`, "process.env"} {
		if !strings.Contains(code, want) {
			t.Errorf("script lacks %s: it must read AUTH_/BLOG_ DB_NAME, DB_USER and DB_USER_PWD from process.env", want)
		}
	}
	// The password is an environment value, never a literal.
	pwd := pwdField.FindStringSubmatch(code)
	if pwd == nil {
		t.Fatal("createUser has no pwd field")
	}
	value := strings.TrimSpace(pwd[1])
	if fromEnv := strings.HasPrefix(value, "env[") || strings.HasPrefix(value, "process.env"); !fromEnv || !strings.Contains(value, "DB_USER_PWD") {
		t.Errorf("pwd: %s, want the DB_USER_PWD value from the environment", value)
	}
	for _, lit := range stringLiteral.FindAllString(code, -1) {
		inner := lit[1 : len(lit)-1]
		for _, secret := range []string{"changeit", composeEnv["AUTH_DB_USER_PWD"], composeEnv["BLOG_DB_USER_PWD"]} {
			if strings.Contains(inner, secret) {
				t.Errorf("script contains the literal password %q", secret)
			}
		}
	}
	// A missing variable stops the init (and so the first start) instead of
	// creating a user with an empty password.
	if !strings.Contains(code, "throw new Error") {
		t.Error("script does not refuse to run without its variables")
	}
	for _, want := range []string{"createUser(", `role: "readWrite"`, "getUser(user)"} {
		if !strings.Contains(code, want) {
			t.Errorf("script lacks %q", want)
		}
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
