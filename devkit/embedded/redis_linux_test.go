package embedded

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/devkit/wait"
)

// TestRedisChildDiesWithParent kills a parent process (a helper copy of this
// test binary, see TestMain) with SIGKILL, so none of its cleanup code runs,
// and checks that its redis-server child dies too instead of lingering as an
// orphan that holds a port.
func TestRedisChildDiesWithParent(t *testing.T) {
	ensureRedisServerBinary(t)
	t.Setenv(EnvRedisStandIn, "") // this test is about the real child process
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe)
	// EnvRedisStandIn was cleared above, so the helper inherits that too.
	helper.Env = append(os.Environ(), envRedisHelper+"=1", envRedisHelperDir+"="+t.TempDir())
	helper.Stderr = os.Stderr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper output: %v", err)
	}
	var pid, port int
	if f := strings.Fields(line); len(f) == 2 {
		pid, _ = strconv.Atoi(f[0])
		port, _ = strconv.Atoi(f[1])
	}
	if pid == 0 || port == 0 {
		t.Fatalf("helper printed %q", line)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer c.Close()
	ctx := testCtx(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("helper's redis not answering: %v", err)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	// redis-server is now a child of init (or a subreaper), which reaps it; a
	// zero signal to its pid fails once it is gone.
	if !wait.For(10*time.Second, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
	}) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("redis-server pid %d survived its parent", pid)
	}
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Error("orphaned redis still answers PING")
	}
}

// isZombie reports whether pid has exited but not been reaped yet (state Z),
// which counts as dead for this test: it no longer runs or holds its port.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces, so split after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
