package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blogplatform/blog_service/config"
	chassisconfig "blogplatform/chassis/config"
)

// TestInvalidConfigurationStops: a present but invalid value stops the
// service before it connects to anything, with one line naming it.
func TestInvalidConfigurationStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("CACHE_BLOG_TTL=soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BREAKER_MIN_REQUESTS", "-3") // the environment is read too
	src, err := chassisconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = config.Load(src); err == nil {
		t.Fatal("invalid configuration accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(err.Error(), "BREAKER_MIN_REQUESTS=") || !strings.Contains(err.Error(), "CACHE_BLOG_TTL=") {
		t.Errorf("error %q: want one line for each of BREAKER_MIN_REQUESTS and CACHE_BLOG_TTL", err)
	}
}
