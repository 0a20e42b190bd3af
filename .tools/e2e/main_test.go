package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"blogplatform/tools/internal/platform"
)

// The platform is started once per test binary: building the two services
// and starting four replicas is the expensive part, and the tests use fresh
// random emails and slugs so they do not depend on each other's data. Tests
// that kill or stop a replica restart it before they end.
var (
	stack   *platform.Platform
	logTail *lineRing
	// keysDir holds auth_service's RSA pair for this run (security tests
	// forge tokens with it).
	keysDir string
)

func keysDirFor(work string) string {
	keysDir = filepath.Join(work, "keys")
	return keysDir
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	work, err := os.MkdirTemp("", "e2e-platform-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(work)

	logTail = newLineRing(4000)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	p, err := platform.Start(ctx, platform.Options{
		GatewayAddr: "127.0.0.1:0",
		Replicas:    2,
		Memory:      true,
		WorkDir:     work,
		KeysDir:     keysDirFor(work),
		ProcessLogs: logTail,
		Logger:      slog.New(slog.NewTextHandler(logTail, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the platform did not start: %v\n--- last process log lines ---\n%s\n", err, logTail.last(200))
		return 1
	}
	stack = p
	fmt.Fprintf(os.Stderr, "e2e: platform ready at %s in %v (store %s, redis %s)\n",
		p.GatewayURL(), time.Since(start).Round(time.Millisecond), p.Info().StoreBackend, p.Info().RedisKind)

	code := m.Run()

	if err := p.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the platform:", err)
		code = 1
	}
	return code
}

// dumpLogsOnFailure prints the end of the processes' logs when t fails, so a
// failure caused by a service shows the service's side of it.
func dumpLogsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- last process log lines ---\n%s", logTail.last(150))
		}
	})
}

// lineRing keeps the last lines written to it (the replicas' logs and the
// platform's messages): enough to explain a failure without flooding the
// output of passing runs.
type lineRing struct {
	mu      sync.Mutex
	lines   []string
	next    int
	full    bool
	partial string
}

func newLineRing(n int) *lineRing { return &lineRing{lines: make([]string, n)} }

func (r *lineRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	text := r.partial + string(p)
	parts := strings.Split(text, "\n")
	r.partial = parts[len(parts)-1]
	for _, line := range parts[:len(parts)-1] {
		r.lines[r.next] = line
		r.next = (r.next + 1) % len(r.lines)
		if r.next == 0 {
			r.full = true
		}
	}
	return len(p), nil
}

func (r *lineRing) last(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}

var _ io.Writer = (*lineRing)(nil)
