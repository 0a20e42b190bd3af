package embedded

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// envRedisHelper turns the test binary into a helper process that starts a
// redis-server child, prints "<pid> <port>" and then blocks until killed. It
// lets TestRedisChildDiesWithParent kill a real parent process with SIGKILL
// and check that the Pdeathsig setting takes redis-server down with it.
const envRedisHelper = "EMBEDDED_TEST_REDIS_HELPER"

// envRedisHelperDir is the helper's redis-server directory, a t.TempDir of
// the parent test: the SIGKILLed helper cannot remove a directory itself.
const envRedisHelperDir = "EMBEDDED_TEST_REDIS_HELPER_DIR"

func TestMain(m *testing.M) {
	if os.Getenv(envRedisHelper) == "1" {
		os.Exit(redisHelperMain())
	}
	code := m.Run()
	if fakeRedisBuiltIn != "" {
		os.RemoveAll(fakeRedisBuiltIn)
	}
	os.Exit(code)
}

func redisHelperMain() int {
	r, err := StartRedis(RedisOptions{Dir: os.Getenv(envRedisHelperDir)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if r.IsStandIn() {
		fmt.Fprintln(os.Stderr, "helper: redis-server not on PATH")
		return 1
	}
	r.mu.Lock()
	pid := r.proc.cmd.Process.Pid
	r.mu.Unlock()
	fmt.Printf("%d %d\n", pid, r.Port())
	select {} // wait to be killed
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func slogTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeRedisBuiltIn is the folder of the fake binary once built (removed by
// TestMain).
var fakeRedisBuiltIn string

var fakeRedisDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fakeredis-*")
	if err != nil {
		return "", err
	}
	fakeRedisBuiltIn = dir
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "redis-server"), "./testdata/fakeredis").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the fake redis-server: %v\n%s", err, out)
	}
	return dir, nil
})

// ensureRedisServerBinary makes "redis-server" resolvable for the tests of
// the child-process lifecycle: the real one when installed, else a build of
// testdata/fakeredis (same config file, miniredis behind it) put first on
// PATH, which child helper processes inherit. These tests are about process
// management (no orphan, nothing left behind), which the stand-in binary
// exercises the same way.
func ensureRedisServerBinary(t *testing.T) {
	t.Helper()
	if redisServerOnPath() {
		return
	}
	dir, err := fakeRedisDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Logf("redis-server not installed: using the fake binary in %s", dir)
}
