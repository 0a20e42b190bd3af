package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"blogplatform/tools/internal/gateway"
)

// Replica is one service process. Its address stays the same across
// restarts, so the gateway keeps routing to it.
type Replica struct {
	Name    string // auth1, blog2, ...
	Service string // auth or blog
	Addr    string // 127.0.0.1:port it listens on
	// MetricsAddr is its internal metrics listener (/metrics), which the
	// gateway never routes to.
	MetricsAddr string

	bin string
	dir string   // working directory (the service folder, so keys/ resolves)
	env []string // full environment
	out *logSink

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	exitErr error         // set before exited is closed
	starts  int
}

// start launches the process. It fails if the previous one is still running.
func (r *Replica) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil && !isClosed(r.exited) {
		return fmt.Errorf("%s is already running (pid %d)", r.Name, r.cmd.Process.Pid)
	}
	cmd := exec.Command(r.bin)
	cmd.Dir = r.dir
	cmd.Env = r.env
	cmd.SysProcAttr = childProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.Name, err)
	}
	r.starts++
	r.cmd = cmd
	exited := make(chan struct{})
	r.exited = exited

	var pipes sync.WaitGroup
	pipes.Go(func() { r.out.copyLines(r.Name, stdout) })
	pipes.Go(func() { r.out.copyLines(r.Name, stderr) })
	go func() {
		// Wait must only run after the pipes are drained (os/exec's rule),
		// so every last log line is kept.
		pipes.Wait()
		err := cmd.Wait()
		r.mu.Lock()
		r.exitErr = err
		r.mu.Unlock()
		close(exited)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Pid is the current process id, 0 when none was started.
func (r *Replica) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Running reports whether the current process has not exited.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil && !isClosed(r.exited)
}

// Signal sends sig to the running process (e.g. syscall.SIGKILL to simulate
// a crash, syscall.SIGTERM for a graceful stop).
func (r *Replica) Signal(sig os.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || isClosed(r.exited) {
		return fmt.Errorf("%s is not running", r.Name)
	}
	return r.cmd.Process.Signal(sig)
}

// Wait blocks until the current process exits and returns its exit error
// (nil for exit status 0).
func (r *Replica) Wait(ctx context.Context) error {
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	if exited == nil {
		return nil
	}
	select {
	case <-exited:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.exitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart starts the process again (after it exited, or after stopping it
// with SIGTERM and grace when it is still running) and waits until it is
// ready.
func (r *Replica) Restart(ctx context.Context, grace time.Duration) error {
	if r.Running() {
		if err := r.stop(grace); err != nil {
			return err
		}
	}
	if err := r.start(); err != nil {
		return err
	}
	return r.WaitReady(ctx)
}

// WaitReady polls GET /health/ready until it answers 200. It fails early when
// the process exits, with its last log lines.
func (r *Replica) WaitReady(ctx context.Context) error {
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	url := "http://" + r.Addr + "/health/ready"
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	lastStatus := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("X-Request-ID", gateway.HealthProbeRequestIDPrefix+"startup")
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			lastStatus = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (%v); last log lines:\n%s",
				r.Name, r.Wait(context.Background()), r.out.tail(r.Name, 30))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (last /health/ready: %s): %w; last log lines:\n%s",
				r.Name, lastStatus, ctx.Err(), r.out.tail(r.Name, 30))
		case <-ticker.C:
		}
	}
}

// stop sends SIGTERM, waits up to grace for the process to exit, then kills
// it. It returns once the process is gone.
func (r *Replica) stop(grace time.Duration) error {
	if err := r.Signal(syscall.SIGTERM); err != nil {
		if !r.Running() {
			return nil // already gone
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := r.Wait(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return nil // exited (its exit status is in the log, not an error here)
	}
	r.out.note(r.Name, fmt.Sprintf("did not exit %v after SIGTERM; sending SIGKILL", grace))
	_ = r.Signal(syscall.SIGKILL)
	return r.Wait(context.Background())
}
