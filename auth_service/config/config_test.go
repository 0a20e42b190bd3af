package config

import (
	"strings"
	"testing"
	"time"

	chassisconfig "blogplatform/chassis/config"
)

func TestDefaults(t *testing.T) {
	c, err := Load(chassisconfig.FromMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenValidity != 172800*time.Second || c.RefreshTokenValidity != 604800*time.Second ||
		c.TokenIssuer != DefaultIssuer || c.TokenAudience != DefaultAudience ||
		c.BcryptCost != 10 || c.RateLimitPerMinute != 120 || c.RateLimitBurst != 30 ||
		c.KeystoreSweepInterval != time.Hour || c.Mongo.Name != "auth-dev-db" || c.ServiceName != "auth" || c.Redis.DB != 0 {
		t.Fatalf("defaults %+v", c)
	}
	if c.SeedAPIKey != "" || c.SeedAdminEmail != "" {
		t.Fatal("nothing is seeded unless configured")
	}
	if c.SignInFailureLimit != 10 || c.SignInFailureWindow != 15*time.Minute || c.SignInUniformErrors ||
		c.APIKeyRejectedTTL != 5*time.Second || c.APIKeyRejectedSize != 10000 {
		t.Fatalf("sign-in and key defaults %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(chassisconfig.FromMap(map[string]string{
		"ACCESS_TOKEN_VALIDITY_SEC": "60", "REFRESH_TOKEN_VALIDITY_SEC": "120", "BCRYPT_COST": "4",
		"SEED_API_KEY": "k", "SEED_ADMIN_EMAIL": "admin@unusualcode.org", "SEED_ADMIN_PASSWORD": "changeit",
		"AUTH_CACHE_TTL": "5s", "KEYSTORE_SWEEP_INTERVAL": "90", "ALLOW_EXAMPLE_SECRETS": "true",
		"SIGNIN_FAILURE_LIMIT": "5", "SIGNIN_FAILURE_WINDOW": "1h", "SIGNIN_UNIFORM_ERRORS": "true",
		"APIKEY_REJECTED_CACHE_TTL": "0", "APIKEY_REJECTED_CACHE_SIZE": "50",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenValidity != time.Minute || c.RefreshTokenValidity != 2*time.Minute || c.BcryptCost != 4 ||
		c.AuthCacheTTL != 5*time.Second || c.KeystoreSweepInterval != 90*time.Second || c.SeedAdminPassword != "changeit" {
		t.Fatalf("values %+v", c)
	}
	if c.SignInFailureLimit != 5 || c.SignInFailureWindow != time.Hour || !c.SignInUniformErrors ||
		c.APIKeyRejectedTTL != 0 || c.APIKeyRejectedSize != 50 {
		t.Fatalf("sign-in and key values %+v", c)
	}
}

// TestInvalidValuesNameTheVariable: each invalid value is refused with one
// line naming its variable.
func TestInvalidValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		values map[string]string
		want   []string
	}{
		{map[string]string{"BCRYPT_COST": "abc"}, []string{"BCRYPT_COST"}},
		{map[string]string{"BCRYPT_COST": "3"}, []string{"BCRYPT_COST"}},
		{map[string]string{"BCRYPT_COST": "15"}, []string{"BCRYPT_COST"}},
		{map[string]string{"ACCESS_TOKEN_VALIDITY_SEC": "-5"}, []string{"ACCESS_TOKEN_VALIDITY_SEC"}},
		{map[string]string{"RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_BURST": "x"}, []string{"RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_BURST"}},
		{map[string]string{"KEYSTORE_SWEEP_INTERVAL": "soon"}, []string{"KEYSTORE_SWEEP_INTERVAL"}},
		{map[string]string{"AUTH_CACHE_TTL": "0"}, []string{"AUTH_CACHE_TTL"}},
		{map[string]string{"SEED_ADMIN_EMAIL": "admin@unusualcode.org"}, []string{"SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD"}},
		{map[string]string{"SEED_ADMIN_EMAIL": "not-an-email", "SEED_ADMIN_PASSWORD": "s3cret-pw"}, []string{"SEED_ADMIN_EMAIL"}},
		{map[string]string{"SEED_ADMIN_EMAIL": "a@b.co", "SEED_ADMIN_PASSWORD": "short"}, []string{"SEED_ADMIN_PASSWORD"}},
		{map[string]string{"DB_PORT": "http"}, []string{"DB_PORT"}},
		{map[string]string{"SIGNIN_FAILURE_LIMIT": "0", "SIGNIN_FAILURE_WINDOW": "later"}, []string{"SIGNIN_FAILURE_LIMIT", "SIGNIN_FAILURE_WINDOW"}},
		{map[string]string{"SIGNIN_UNIFORM_ERRORS": "maybe"}, []string{"SIGNIN_UNIFORM_ERRORS"}},
		{map[string]string{"APIKEY_REJECTED_CACHE_TTL": "2m", "APIKEY_REJECTED_CACHE_SIZE": "0"}, []string{"APIKEY_REJECTED_CACHE_TTL", "APIKEY_REJECTED_CACHE_SIZE"}},
	}
	for _, tt := range tests {
		_, err := Load(chassisconfig.FromMap(tt.values))
		if err == nil {
			t.Fatalf("%v accepted", tt.values)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tt.want) {
			t.Fatalf("%v: %d lines: %v", tt.values, len(lines), err)
		}
		for i, name := range tt.want {
			if !strings.Contains(lines[i], name) {
				t.Errorf("%v: line %q does not name %s", tt.values, lines[i], name)
			}
		}
	}
}

// TestExampleFilesAreValid: the .env.example files load without errors and
// carry the reference's seed values.
func TestExampleFilesAreValid(t *testing.T) {
	for _, path := range []string{"../.env.example", "../.test.env.example"} {
		values, err := chassisconfig.ParseDotenvFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Load(chassisconfig.FromMap(values))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if c.SeedAPIKey != "1D3F2DD1A5DE725DD4DF1D82BBB37" || c.SeedAdminEmail != "admin@unusualcode.org" || c.SeedAdminPassword != "changeit" {
			t.Errorf("%s: seed values %q %q %q", path, c.SeedAPIKey, c.SeedAdminEmail, c.SeedAdminPassword)
		}
		if c.Mongo.Host != "mongo" || c.BcryptCost != 10 {
			t.Errorf("%s: %+v", path, c)
		}
	}
}

// TestExampleSecrets: in release mode the service refuses the secrets
// published in .env.example, one line per variable, unless explicitly
// allowed; other modes accept them (development and tests).
func TestExampleSecrets(t *testing.T) {
	examples := map[string]string{
		"SEED_API_KEY": "1D3F2DD1A5DE725DD4DF1D82BBB37", "SEED_ADMIN_EMAIL": "admin@unusualcode.org",
		"SEED_ADMIN_PASSWORD": "changeit", "REDIS_PASSWORD": "changeit", "NATS_PASSWORD": "changeit-auth",
		"DB_USER_PWD": "changeit",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range examples {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		values map[string]string
		want   []string // variables refused; nil: starts
	}{
		{"release refuses every example", with(map[string]string{"GO_MODE": "release"}),
			[]string{"DB_USER_PWD", "REDIS_PASSWORD", "NATS_PASSWORD", "SEED_API_KEY", "SEED_ADMIN_PASSWORD"}},
		{"release with real secrets", map[string]string{"GO_MODE": "release", "SEED_API_KEY": "k-9f3a", "REDIS_PASSWORD": "12345678"}, nil},
		{"release, every secret real", with(map[string]string{"GO_MODE": "release", "SEED_API_KEY": "k-9f3a", "SEED_ADMIN_PASSWORD": "pw-9f3a11",
			"REDIS_PASSWORD": "r", "NATS_PASSWORD": "n", "DB_USER_PWD": "d"}), nil},
		{"release, admin password left", with(map[string]string{"GO_MODE": "release", "SEED_API_KEY": "k-9f3a",
			"REDIS_PASSWORD": "r", "NATS_PASSWORD": "n", "DB_USER_PWD": "d"}), []string{"SEED_ADMIN_PASSWORD"}},
		{"release, explicitly allowed", with(map[string]string{"GO_MODE": "release", "ALLOW_EXAMPLE_SECRETS": "true"}), nil},
		{"debug accepts examples", with(map[string]string{"GO_MODE": "debug"}), nil},
		{"test accepts examples", with(map[string]string{"GO_MODE": "test"}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(chassisconfig.FromMap(tc.values))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("started with example secrets, want %v refused", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, key := range tc.want {
				if !strings.Contains(err.Error(), "invalid configuration: "+key+": still the example value") {
					t.Errorf("no line for %s in:\n%v", key, err)
				}
			}
		})
	}
}
