package embedded

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// lookRedisServer finds the redis-server binary: serverPath when set (its
// absence is an error naming it), else redis-server on PATH (its absence is
// missing, which carries the install line).
func lookRedisServer(serverPath string, missing error) (string, error) {
	path := serverPath
	if path == "" {
		path = "redis-server"
	}
	binary, err := exec.LookPath(path)
	if err != nil {
		if serverPath != "" {
			return "", fmt.Errorf("embedded: redis-server %q: %w", serverPath, err)
		}
		return "", missing
	}
	return binary, nil
}

// spawnRedis writes name's config file in dir (the common lines, then what
// lines returns for the chosen port) and starts binary with it and args on
// a free loopback port, waiting until it answers PING (with password when
// set). A port taken between the probe and the bind is retried with
// another, a few times.
func spawnRedis(binary, dir, name string, args []string, password string, lines func(port int) ([]string, error)) (*redisProc, string, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		extra, err := lines(port)
		if err != nil {
			return nil, "", err
		}
		conf := append([]string{
			"port " + strconv.Itoa(port),
			"bind " + redisHost,
			"daemonize no",
			`logfile ""`,
			"dir " + redisQuote(dir),
		}, extra...)
		confPath := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("embedded: write %s config: %w", name, err)
		}
		out := &tailBuffer{max: 8 << 10}
		cmd := exec.Command(binary, append([]string{confPath}, args...)...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = childProcAttr()
		if err := cmd.Start(); err != nil {
			return nil, "", fmt.Errorf("embedded: start %s (%s): %w", name, binary, err)
		}
		p := &redisProc{cmd: cmd, exited: make(chan struct{}), out: out}
		go func() {
			p.waitErr = cmd.Wait()
			close(p.exited)
		}()
		addr := net.JoinHostPort(redisHost, strconv.Itoa(port))
		version, err := waitRedisReady(addr, password, p)
		if err == nil {
			p.version = version
			return p, addr, nil
		}
		_ = p.stop(redisStopGrace)
		lastErr = fmt.Errorf("embedded: %s: %w", name, err)
		if !strings.Contains(out.String(), "Address already in use") {
			break
		}
	}
	return nil, "", lastErr
}
