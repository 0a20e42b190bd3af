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
	if c.Mongo.Name != "blog-dev-db" || c.ServiceName != "blog" || c.Redis.DB != 2 {
		t.Errorf("base defaults: db %q service %q redis db %d", c.Mongo.Name, c.ServiceName, c.Redis.DB)
	}
	if c.NATSTimeout != 2*time.Second || c.BreakerFailures != 5 || c.BreakerOpenTimeout != 5*time.Second {
		t.Errorf("auth call defaults: %v %d %v", c.NATSTimeout, c.BreakerFailures, c.BreakerOpenTimeout)
	}
	if c.BlogCacheTTL != 10*time.Minute || c.SimilarCacheTTL != 6*time.Hour || c.ListCacheTTL != 2*time.Minute {
		t.Errorf("cache TTL defaults: %v %v %v", c.BlogCacheTTL, c.SimilarCacheTTL, c.ListCacheTTL)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(chassisconfig.FromMap(map[string]string{
		"BREAKER_FAILURES": "3", "BREAKER_OPEN_TIMEOUT": "750ms", "CACHE_BLOG_TTL": "60",
		"CACHE_SIMILAR_TTL": "1h", "CACHE_LIST_TTL": "30s", "CACHE_RETRY_INTERVAL": "1s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BreakerFailures != 3 || c.BreakerOpenTimeout != 750*time.Millisecond || c.BlogCacheTTL != time.Minute ||
		c.SimilarCacheTTL != time.Hour || c.ListCacheTTL != 30*time.Second || c.CacheRetryInterval != time.Second {
		t.Errorf("values not read: %+v", c)
	}
}

// TestInvalidValues: each invalid value is one line naming its variable.
func TestInvalidValues(t *testing.T) {
	_, err := Load(chassisconfig.FromMap(map[string]string{
		"BREAKER_FAILURES": "many", "CACHE_LIST_TTL": "forever", "NATS_REQUEST_TIMEOUT": "-1s",
	}))
	if err == nil {
		t.Fatal("invalid values accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per variable, got %q", err.Error())
	}
	for i, name := range []string{"BREAKER_FAILURES", "NATS_REQUEST_TIMEOUT", "CACHE_LIST_TTL"} {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, name+"=")
		}
		if !found {
			t.Errorf("line %d: no line names %s in %q", i, name, err.Error())
		}
	}
}

// TestExampleFilesAreValid: both example files load without error.
func TestExampleFilesAreValid(t *testing.T) {
	for _, name := range []string{"../.env.example", "../.test.env.example"} {
		values, err := chassisconfig.ParseDotenvFile(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Load(chassisconfig.FromMap(values)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
