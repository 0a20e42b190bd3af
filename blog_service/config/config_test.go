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
	if c.NATSTimeout != 2*time.Second || c.NATSAttemptTimeout != 100*time.Millisecond || c.NATSMaxAttempts != 31 ||
		c.NATSRetryBudget != 1 {
		t.Errorf("auth call defaults: %v %v %d %v", c.NATSTimeout, c.NATSAttemptTimeout, c.NATSMaxAttempts, c.NATSRetryBudget)
	}
	if c.BreakerFailureRatio != 0.5 || c.BreakerMinRequests != 20 || c.BreakerWindow != 10*time.Second ||
		c.BreakerOpenTimeout != 5*time.Second || c.BreakerHalfOpenRequests != 5 || c.IgnoredBreakerFailures != "" {
		t.Errorf("breaker defaults: %+v", c)
	}
	if c.BlogCacheTTL != 10*time.Minute || c.SimilarCacheTTL != 6*time.Hour || c.ListCacheTTL != 2*time.Minute {
		t.Errorf("cache TTL defaults: %v %v %v", c.BlogCacheTTL, c.SimilarCacheTTL, c.ListCacheTTL)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(chassisconfig.FromMap(map[string]string{
		"BREAKER_FAILURE_RATIO": "0.25", "BREAKER_MIN_REQUESTS": "7", "BREAKER_WINDOW": "30s",
		"BREAKER_HALF_OPEN_REQUESTS": "3", "BREAKER_FAILURES": "3", "NATS_ATTEMPT_TIMEOUT": "100ms",
		"NATS_MAX_ATTEMPTS": "7", "NATS_RETRY_BUDGET": "0.5",
		"BREAKER_OPEN_TIMEOUT": "750ms", "CACHE_BLOG_TTL": "60",
		"CACHE_SIMILAR_TTL": "1h", "CACHE_LIST_TTL": "30s", "CACHE_RETRY_INTERVAL": "1s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BreakerFailureRatio != 0.25 || c.BreakerMinRequests != 7 || c.BreakerWindow != 30*time.Second ||
		c.BreakerHalfOpenRequests != 3 || c.IgnoredBreakerFailures != "3" || c.NATSAttemptTimeout != 100*time.Millisecond ||
		c.NATSMaxAttempts != 7 || c.NATSRetryBudget != 0.5 {
		t.Errorf("auth call values not read: %+v", c)
	}
	if c.BreakerOpenTimeout != 750*time.Millisecond || c.BlogCacheTTL != time.Minute ||
		c.SimilarCacheTTL != time.Hour || c.ListCacheTTL != 30*time.Second || c.CacheRetryInterval != time.Second {
		t.Errorf("values not read: %+v", c)
	}
}

// TestInvalidValues: each invalid value is one line naming its variable.
func TestInvalidValues(t *testing.T) {
	_, err := Load(chassisconfig.FromMap(map[string]string{
		"BREAKER_FAILURE_RATIO": "many", "CACHE_LIST_TTL": "forever", "NATS_REQUEST_TIMEOUT": "-1s",
		"BREAKER_FAILURES": "whatever", // deprecated and ignored: never an error
	}))
	if err == nil {
		t.Fatal("invalid values accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per variable, got %q", err.Error())
	}
	for i, name := range []string{"BREAKER_FAILURE_RATIO", "NATS_REQUEST_TIMEOUT", "CACHE_LIST_TTL"} {
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
