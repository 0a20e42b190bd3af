package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// KindStandIn is what [Redis.Kind] reports when the miniredis stand-in runs.
const KindStandIn = "embedded miniredis stand-in"

// EnvRedisStandIn, when set to "1" or "true", makes StartRedis use the
// miniredis stand-in even if redis-server is on PATH, exactly like
// RedisOptions.ForceStandIn. It lets a developer or CI run the whole suite
// against the stand-in without code changes.
const EnvRedisStandIn = "EMBEDDED_REDIS_STANDIN"

const (
	redisHost         = "127.0.0.1"
	redisReadyTimeout = 10 * time.Second
	// redisStopGrace is how long redis-server gets to exit after SIGTERM
	// before it is killed.
	redisStopGrace = 5 * time.Second
)

// RedisOptions configures [StartRedis]. The zero value starts redis-server (or
// the stand-in) on a free 127.0.0.1 port without a password.
type RedisOptions struct {
	// Password, when set, is required from clients (requirepass / AUTH).
	Password string
	// Port to listen on; 0 picks a free port at the first start. Stop/Start
	// always reuse the port of the first start.
	Port int
	// Dir is redis-server's working directory; "" means a private temporary
	// directory removed by Close. Persistence is off either way (save "",
	// appendonly no), so nothing survives a Stop/Start.
	Dir string
	// ForceStandIn uses miniredis even when redis-server is available, so
	// tests can cover the fallback path. See also EnvRedisStandIn.
	ForceStandIn bool
	// ServerPath is the redis-server binary; "" means exec.LookPath("redis-server").
	// A ServerPath that does not exist is an error, not a fallback. Forcing the
	// stand-in (ForceStandIn or EnvRedisStandIn) wins over ServerPath.
	ServerPath string
	// Logger, when set, is told which Redis runs (at Info) on every start.
	Logger *slog.Logger
	// Users are Redis ACL users created next to the default user (which
	// keeps Password and full rights, for the platform's own checks). The
	// real redis-server enforces their rules; the miniredis stand-in only
	// checks their passwords (it has no ACL rules), and says so in the log.
	Users []RedisUser
}

// RedisUser is one ACL user: it logs in with Name and Password and may run
// only what Rules allow. Rules are redis ACL rules as in ACL SETUSER, e.g.
// "~auth_*", "+get"; every user starts from nothing (reset: no keys, no
// channels, no commands), so only what is listed is granted.
type RedisUser struct {
	Name     string
	Password string
	Rules    []string
}

// aclLine is the redis.conf "user" directive for u, every token quoted.
func (u RedisUser) aclLine() string {
	tokens := append([]string{"user", u.Name, "reset", "on", ">" + u.Password}, u.Rules...)
	for i, t := range tokens[1:] {
		tokens[i+1] = redisQuote(t)
	}
	return strings.Join(tokens, " ")
}

// ACLEnforced reports whether the users' rules are enforced (the real
// redis-server); the stand-in checks their passwords only.
func (r *Redis) ACLEnforced() bool { return !r.IsStandIn() }

// Redis is a running Redis: a real redis-server child process or the miniredis
// stand-in. Both listen on 127.0.0.1 and speak RESP, so clients cannot tell
// them apart except through Kind. It is safe for concurrent use.
type Redis struct {
	opts     RedisOptions
	binary   string // "" for the stand-in
	port     int
	workDir  string
	ownsDir  bool
	confPath string

	mu      sync.Mutex
	kind    string
	running bool
	closed  bool
	proc    *redisProc
	mini    *miniredis.Miniredis
}

// StartRedis starts redis-server from PATH as a child process when it exists
// (and the stand-in is not forced), otherwise the in-process miniredis
// stand-in, and returns once the server answers PING. Kind tells which one
// runs; the stand-in lacks some commands and behaviours (e.g. persistence,
// some scripting and memory policies), so callers should report it.
func StartRedis(opts RedisOptions) (*Redis, error) {
	r := &Redis{opts: opts, port: opts.Port}
	for _, u := range opts.Users {
		if u.Name == "" || u.Name == "default" || u.Password == "" {
			return nil, fmt.Errorf("embedded: redis user %q needs a name other than default and a password", u.Name)
		}
	}

	forced := opts.ForceStandIn || envTrue(os.Getenv(EnvRedisStandIn))
	if !forced {
		path := opts.ServerPath
		if path == "" {
			path = "redis-server"
		}
		if p, err := exec.LookPath(path); err == nil {
			r.binary = p
		} else if opts.ServerPath != "" {
			// An explicit path that does not work is a configuration mistake,
			// not a reason to quietly fall back.
			return nil, fmt.Errorf("embedded: redis-server %q: %w", opts.ServerPath, err)
		}
	}

	if r.binary != "" {
		r.workDir = opts.Dir
		if r.workDir == "" {
			d, err := os.MkdirTemp("", "embedded-redis-*")
			if err != nil {
				return nil, fmt.Errorf("embedded: redis temp dir: %w", err)
			}
			r.workDir, r.ownsDir = d, true
		} else if err := os.MkdirAll(r.workDir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded: redis dir: %w", err)
		}
		abs, err := filepath.Abs(r.workDir)
		if err != nil {
			r.removeDir()
			return nil, fmt.Errorf("embedded: redis dir: %w", err)
		}
		r.workDir = abs
		r.confPath = filepath.Join(abs, "embedded-redis.conf")
	}

	if err := r.Start(); err != nil {
		r.removeDir()
		return nil, err
	}
	return r, nil
}

func envTrue(v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err == nil && b
}

// Addr is "127.0.0.1:port" (go-redis Options.Addr). It stays the same across
// Stop/Start.
func (r *Redis) Addr() string { return net.JoinHostPort(redisHost, strconv.Itoa(r.Port())) }

// Host is "127.0.0.1".
func (r *Redis) Host() string { return redisHost }

// Port is the TCP port.
func (r *Redis) Port() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.port
}

// Password is the password clients must send, "" for none.
func (r *Redis) Password() string { return r.opts.Password }

// Kind is "redis-server <version>" (e.g. "redis-server 7.0.15") for the real
// server, or KindStandIn for miniredis.
func (r *Redis) Kind() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kind
}

// IsStandIn reports whether the miniredis stand-in is used.
func (r *Redis) IsStandIn() bool { return r.binary == "" }

// Start (re)starts the server on the same port after Stop. It is a no-op if
// the server is running. Data from before Stop is gone in both modes, as with
// a real Redis restart without persistence.
func (r *Redis) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("embedded: redis closed")
	}
	if r.running {
		return nil
	}
	var err error
	if r.binary == "" {
		err = r.startStandInLocked()
	} else {
		err = r.startProcessLocked()
	}
	if err != nil {
		return err
	}
	r.running = true
	if r.opts.Logger != nil {
		r.opts.Logger.Info("embedded redis started",
			slog.String("kind", r.kind), slog.String("addr", net.JoinHostPort(redisHost, strconv.Itoa(r.port))))
		if len(r.opts.Users) > 0 && r.binary == "" {
			r.opts.Logger.Warn("the miniredis stand-in checks the ACL users' passwords but not their key and command rules; install redis-server to enforce them")
		}
	}
	return nil
}

// Stop stops the server but remembers its port, so Start brings it back at
// the same address; clients see connection errors meanwhile. It is a no-op
// if the server is not running.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopLocked()
}

// Close stops the server for good and removes its temporary directory. It is
// idempotent.
func (r *Redis) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.stopLocked()
	r.removeDir()
	return err
}

func (r *Redis) removeDir() {
	if r.ownsDir && r.workDir != "" {
		_ = os.RemoveAll(r.workDir)
	}
}

func (r *Redis) stopLocked() error {
	if !r.running {
		return nil
	}
	r.running = false
	if r.mini != nil {
		r.mini.Close()
		r.mini = nil
		return nil
	}
	p := r.proc
	r.proc = nil
	return p.stop(redisStopGrace)
}

// startStandInLocked starts a fresh miniredis on r.port (a new instance rather
// than miniredis' Restart, so data does not survive Stop/Start, matching the
// real server's behaviour here).
func (r *Redis) startStandInLocked() error {
	m := miniredis.NewMiniRedis()
	if r.opts.Password != "" {
		m.RequireAuth(r.opts.Password)
	}
	for _, u := range r.opts.Users {
		m.RequireUserAuth(u.Name, u.Password)
	}
	addr := net.JoinHostPort(redisHost, strconv.Itoa(r.port))
	// The port was just freed by Stop; retry briefly in case the kernel has
	// not released it yet.
	var err error
	deadline := time.Now().Add(redisReadyTimeout)
	for {
		if err = m.StartAddr(addr); err == nil || time.Now().After(deadline) || r.port == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("embedded: miniredis on %s: %w", addr, err)
	}
	r.port = m.Server().Addr().Port
	r.mini = m
	r.kind = KindStandIn
	return nil
}

// startProcessLocked spawns redis-server. The first start with Port 0 picks
// a free port; because another process may grab it between our probe and
// redis-server's bind, a bind failure is retried with a new port (only when
// the port was not fixed).
func (r *Redis) startProcessLocked() error {
	pickPort := r.port == 0
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := r.port
		if pickPort {
			p, err := freePort()
			if err != nil {
				return err
			}
			port = p
		}
		proc, err := r.spawn(port)
		if err == nil {
			r.port, r.proc = port, proc
			r.kind = "redis-server " + proc.version
			return nil
		}
		lastErr = err
		if !errors.Is(err, errRedisBind) {
			break
		}
		if !pickPort {
			// The same port may still be held by the previous process's
			// sockets for a moment after Stop.
			time.Sleep(100 * time.Millisecond)
		}
	}
	return lastErr
}

var errRedisBind = errors.New("redis-server could not bind its port")

func freePort() (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(redisHost, "0"))
	if err != nil {
		return 0, fmt.Errorf("embedded: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// spawn writes the config file and starts redis-server with it. The config
// goes in a 0600 file rather than on the command line so the password does
// not show up in ps output.
func (r *Redis) spawn(port int) (*redisProc, error) {
	conf := strings.Join([]string{
		"port " + strconv.Itoa(port),
		"bind " + redisHost,
		"protected-mode yes",
		`save ""`,
		"appendonly no",
		"daemonize no",
		`logfile ""`, // log to stdout, which we capture for error messages
		"dir " + redisQuote(r.workDir),
	}, "\n") + "\n"
	if r.opts.Password != "" {
		conf += "requirepass " + redisQuote(r.opts.Password) + "\n"
	}
	for _, u := range r.opts.Users {
		conf += u.aclLine() + "\n"
	}
	if err := os.WriteFile(r.confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("embedded: write redis config: %w", err)
	}

	out := &tailBuffer{max: 8 << 10}
	cmd := exec.Command(r.binary, r.confPath)
	cmd.Dir = r.workDir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("embedded: start %s: %w", r.binary, err)
	}
	p := &redisProc{cmd: cmd, exited: make(chan struct{}), out: out}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	version, err := waitRedisReady(net.JoinHostPort(redisHost, strconv.Itoa(port)), r.opts.Password, p)
	if err != nil {
		_ = p.stop(redisStopGrace)
		if strings.Contains(out.String(), "Address already in use") {
			return nil, fmt.Errorf("%w: port %d: %s", errRedisBind, port, out.String())
		}
		return nil, err
	}
	p.version = version
	return p, nil
}

// waitRedisReady pings until the server answers (or the process dies) and
// returns the server's version from INFO.
func waitRedisReady(addr, password string, p *redisProc) (string, error) {
	client := redis.NewClient(&redis.Options{
		Addr:            addr,
		Password:        password,
		DialTimeout:     time.Second,
		ReadTimeout:     time.Second,
		MaxRetries:      -1, // we retry ourselves, and must notice a dead process quickly
		PoolSize:        1,
		DisableIdentity: true, // CLIENT SETINFO is noise in the server log
	})
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), redisReadyTimeout)
	defer cancel()

	// Wait for the port with plain dials first: go-redis logs every failed
	// dial to the process-global logger, which would litter test output.
	var lastErr error
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			break
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("embedded: redis-server on %s not listening after %s: %v; output: %s",
				addr, redisReadyTimeout, lastErr, p.out.String())
		case <-p.exited:
			return "", fmt.Errorf("embedded: redis-server exited during start-up (%v): %s", p.waitErr, p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	for {
		select {
		case <-p.exited:
			return "", fmt.Errorf("embedded: redis-server exited during start-up (%v): %s", p.waitErr, p.out.String())
		default:
		}
		if lastErr = client.Ping(ctx).Err(); lastErr == nil {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("embedded: redis-server on %s not ready after %s: %v; output: %s",
				addr, redisReadyTimeout, lastErr, p.out.String())
		case <-p.exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		// It answered PING, so it is up; some Redis-compatible servers just
		// do not offer INFO server. The version is for display only.
		return "unknown-version", nil
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "unknown-version", nil
}

// redisProc is one redis-server child process.
type redisProc struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed after cmd.Wait returned
	waitErr error         // set before exited is closed
	out     *tailBuffer
	version string
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs, and always waits for
// the process to be reaped so no zombie or orphan is left behind.
func (p *redisProc) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("embedded: kill redis-server: %w", err)
	}
	<-p.exited
	return nil
}

// redisQuote quotes s for redis.conf, whose parser (sdssplitargs) understands
// double quotes with \\, \", \n, \r, \t and \xHH escapes.
func redisQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tailBuffer keeps the last max bytes written to it (the child's output), for
// error messages. Safe for concurrent use: the process writes while start-up
// code reads.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if extra := t.buf.Len() - t.max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}
