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
}

func TestValues(t *testing.T) {
	c, err := Load(chassisconfig.FromMap(map[string]string{
		"ACCESS_TOKEN_VALIDITY_SEC": "60", "REFRESH_TOKEN_VALIDITY_SEC": "120", "BCRYPT_COST": "4",
		"SEED_API_KEY": "k", "SEED_ADMIN_EMAIL": "admin@unusualcode.org", "SEED_ADMIN_PASSWORD": "changeit",
		"AUTH_CACHE_TTL": "5s", "KEYSTORE_SWEEP_INTERVAL": "90",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenValidity != time.Minute || c.RefreshTokenValidity != 2*time.Minute || c.BcryptCost != 4 ||
		c.AuthCacheTTL != 5*time.Second || c.KeystoreSweepInterval != 90*time.Second || c.SeedAdminPassword != "changeit" {
		t.Fatalf("values %+v", c)
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
		{map[string]string{"SEED_ADMIN_EMAIL": "not-an-email", "SEED_ADMIN_PASSWORD": "changeit"}, []string{"SEED_ADMIN_EMAIL"}},
		{map[string]string{"SEED_ADMIN_EMAIL": "a@b.co", "SEED_ADMIN_PASSWORD": "short"}, []string{"SEED_ADMIN_PASSWORD"}},
		{map[string]string{"DB_PORT": "http"}, []string{"DB_PORT"}},
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
