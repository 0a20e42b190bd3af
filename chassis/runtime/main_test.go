package runtime

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blogplatform/chassis/config"
)

type fakeService struct{ closed bool }

func (f *fakeService) Run(ctx context.Context, ln net.Listener) error { ln.Close(); return nil }
func (f *fakeService) Close(ctx context.Context) error                { f.closed = true; return nil }

func TestMainExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.env")
	good := filepath.Join(dir, "good.env")
	if err := os.WriteFile(bad, []byte("BCRYPT_COST=abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("BCRYPT_COST=10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(src *config.Source) (int, error) {
		cost := src.Int("BCRYPT_COST", 10, 4, 14)
		return cost, src.Err()
	}
	svc := &fakeService{}
	tests := []struct {
		name, envFile string
		start         func(context.Context, int) (Service, string, error)
		code          int
		stderr        string
	}{
		{"invalid value names the variable", bad, nil, 1, `invalid configuration: BCRYPT_COST="abc"`},
		{"start failure", good, func(context.Context, int) (Service, string, error) { return nil, "", errors.New("mongo not reachable") }, 1, "svc: start: mongo not reachable"},
		{"listen failure closes the service", good, func(context.Context, int) (Service, string, error) { return svc, "256.0.0.1:1", nil }, 1, "svc: listen on 256.0.0.1:1"},
		{"serves and exits cleanly", good, func(context.Context, int) (Service, string, error) { return &fakeService{}, "127.0.0.1:0", nil }, 0, ""},
		{"missing dotenv file is fine", filepath.Join(dir, "absent.env"), func(context.Context, int) (Service, string, error) { return &fakeService{}, "127.0.0.1:0", nil }, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := mainWith(&stderr, tt.envFile, "svc", load, tt.start)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("code %d stderr %q, want %d containing %q", code, stderr.String(), tt.code, tt.stderr)
			}
		})
	}
	if !svc.closed {
		t.Error("a service that could not listen must be closed")
	}
}
