package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The private key is written readable by its owner only; the output tells
// a non-root operator how the auth container (uid 10001) gets to read it.
func TestKeygenWritesAnOwnerOnlyPrivateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var stdout, stderr bytes.Buffer
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		// Run as root, keygen chowns to the container's user: pretend
		// otherwise so the test does not depend on who runs it.
		uid, gid = 1000, 1000
	}
	if code := run([]string{"-dir", dir, "-bits", "1024"}, &stdout, &stderr, uid, gid); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for name, want := range map[string]os.FileMode{"private.pem": 0o600, "public.pem": 0o644} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, info.Mode().Perm(), want)
		}
	}
	for _, want := range []string{"AUTH_UID=", "AUTH_GID=", "chown 10001:10001"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}

	// An existing key is kept, made owner-only if it was not.
	if err := os.Chmod(filepath.Join(dir, "private.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"-dir", dir}, &stdout, &stderr, uid, gid); code != 1 || !strings.Contains(stderr.String(), "already exists") {
		t.Errorf("second run: exit %d, %s", code, stderr.String())
	}
	if info, _ := os.Stat(filepath.Join(dir, "private.pem")); info.Mode().Perm() != 0o600 {
		t.Errorf("existing private key left at %v", info.Mode().Perm())
	}
}
