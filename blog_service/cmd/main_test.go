package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvalidConfigurationStops: a present but invalid value stops the
// service before it connects to anything, with one line naming it.
func TestInvalidConfigurationStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("CACHE_BLOG_TTL=soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENV_FILE", path)
	t.Setenv("BREAKER_FAILURES", "-3")
	err := run()
	if err == nil {
		t.Fatal("run accepted invalid configuration")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(err.Error(), "BREAKER_FAILURES=") || !strings.Contains(err.Error(), "CACHE_BLOG_TTL=") {
		t.Errorf("error %q: want one line for each of BREAKER_FAILURES and CACHE_BLOG_TTL", err)
	}
}
