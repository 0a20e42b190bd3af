package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSentinelOptions configures [StartRedisSentinel]. The zero value gives
// a primary, one replica and three Sentinels (quorum 2) that declare the
// primary down after 500 ms without answers.
type RedisSentinelOptions struct {
	// MasterName is the name the Sentinels monitor (default "mymaster").
	MasterName string
	// Password, when set, is required by the data nodes (requirepass); the
	// replica and the Sentinels use it to reach them (masterauth,
	// sentinel auth-pass). The Sentinels themselves take no password.
	Password string
	// Replicas is the number of replicas (default 1).
	Replicas int
	// Sentinels is the number of Sentinels (default 3); the quorum is a
	// majority of them.
	Sentinels int
	// DownAfter is sentinel down-after-milliseconds (default 500 ms): how
	// long the primary may stay silent before a Sentinel thinks it down.
	DownAfter time.Duration
	// FailoverTimeout is sentinel failover-timeout (default 2 s). A
	// Sentinel whose election failed (split votes) tries again after twice
	// this, so it bounds how long an unlucky failover takes.
	FailoverTimeout time.Duration
	// ServerPath is the redis-server binary; "" means exec.LookPath. There
	// is no stand-in: Sentinel needs the real server.
	ServerPath string
}

// RedisSentinel is a Sentinel-managed Redis group of real redis-server
// processes on 127.0.0.1: data nodes (one primary, replicas replicating it)
// and Sentinels monitoring the primary, each with its own config file in a
// private temporary directory. Tests kill the primary (KillMaster) and wait
// for the Sentinels to promote a replica (WaitNewMaster). Safe for
// concurrent use.
type RedisSentinel struct {
	opts   RedisSentinelOptions
	binary string
	dir    string

	mu        sync.Mutex
	closed    bool
	nodes     map[string]*redisProc // data nodes by address
	sentinels []*redisProc
	addrs     []string // Sentinel addresses, in start order
}

// ErrRedisServerMissing is returned when redis-server is not installed:
// Sentinel has no in-process stand-in.
var ErrRedisServerMissing = errors.New("embedded: redis-server is not installed (apt-get install -y redis-server); Redis Sentinel needs the real server")

// StartRedisSentinel starts the data nodes and the Sentinels and returns
// once every Sentinel knows the primary, every replica and the other
// Sentinels (so a failover can be agreed on), and every replica is in sync.
func StartRedisSentinel(ctx context.Context, opts RedisSentinelOptions) (_ *RedisSentinel, err error) {
	if opts.MasterName == "" {
		opts.MasterName = "mymaster"
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Sentinels <= 0 {
		opts.Sentinels = 3
	}
	if opts.DownAfter <= 0 {
		opts.DownAfter = 500 * time.Millisecond
	}
	if opts.FailoverTimeout <= 0 {
		opts.FailoverTimeout = 2 * time.Second
	}
	binary, lerr := lookRedisServer(opts.ServerPath, ErrRedisServerMissing)
	if lerr != nil {
		return nil, lerr
	}
	dir, err := os.MkdirTemp("", "embedded-sentinel-*")
	if err != nil {
		return nil, fmt.Errorf("embedded: sentinel temp dir: %w", err)
	}
	s := &RedisSentinel{opts: opts, binary: binary, dir: dir, nodes: map[string]*redisProc{}}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	primary, err := s.startNode("primary", "")
	if err != nil {
		return nil, err
	}
	for i := 0; i < opts.Replicas; i++ {
		if _, err = s.startNode("replica"+strconv.Itoa(i+1), primary); err != nil {
			return nil, err
		}
	}
	if err = s.waitInSync(ctx, primary); err != nil {
		return nil, err
	}
	for i := 0; i < opts.Sentinels; i++ {
		if err = s.startSentinel(i+1, primary); err != nil {
			return nil, err
		}
	}
	if err = s.waitSentinelsReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// MasterName is the name the Sentinels monitor (REDIS_SENTINEL_MASTER).
func (s *RedisSentinel) MasterName() string { return s.opts.MasterName }

// Password is the data nodes' password ("" for none).
func (s *RedisSentinel) Password() string { return s.opts.Password }

// SentinelAddrs are the Sentinels' "127.0.0.1:port" (REDIS_SENTINEL_ADDRS).
func (s *RedisSentinel) SentinelAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// DataAddrs are the addresses of the data nodes still running.
func (s *RedisSentinel) DataAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.nodes))
	for a := range s.nodes {
		out = append(out, a)
	}
	return out
}

// MasterAddr is the primary's address according to the first Sentinel that
// answers SENTINEL get-master-addr-by-name.
func (s *RedisSentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, a := range s.SentinelAddrs() {
		addr, err := s.askSentinel(ctx, a)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("embedded: no Sentinel named the primary: %w", errors.Join(errs...))
}

func (s *RedisSentinel) askSentinel(ctx context.Context, sentinel string) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: sentinel, DialTimeout: time.Second, ReadTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, s.opts.MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sentinel, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name answered %q", sentinel, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// Client is a plain client of one data node (for inspecting its keys).
func (s *RedisSentinel) Client(addr string, db int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: s.opts.Password, DB: db,
		DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1, PoolSize: 2, DisableIdentity: true})
}

// KillMaster SIGKILLs the current primary (no shutdown, no final
// replication) and returns its address.
func (s *RedisSentinel) KillMaster(ctx context.Context) (string, error) {
	addr, err := s.MasterAddr(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	p := s.nodes[addr]
	delete(s.nodes, addr)
	s.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("embedded: the Sentinels name %s as primary, which is not a running data node", addr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return "", fmt.Errorf("embedded: kill primary %s: %w", addr, err)
	}
	<-p.exited
	return addr, nil
}

// WaitNewMaster waits until every Sentinel names a primary other than old
// and that node answers as a primary (ROLE master), and returns it.
func (s *RedisSentinel) WaitNewMaster(ctx context.Context, old string) (string, error) {
	var last string
	for {
		addr, ok := s.agreedMaster(ctx)
		if ok && addr != old {
			c := s.Client(addr, 0)
			role, err := c.Do(ctx, "ROLE").Slice()
			c.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return addr, nil
			}
		}
		last = addr
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("embedded: no new primary after killing %s (Sentinels last said %q): %w", old, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// agreedMaster is the primary every Sentinel names, if they agree.
func (s *RedisSentinel) agreedMaster(ctx context.Context) (string, bool) {
	var agreed string
	for _, a := range s.SentinelAddrs() {
		addr, err := s.askSentinel(ctx, a)
		if err != nil || agreed != "" && addr != agreed {
			return addr, false
		}
		agreed = addr
	}
	return agreed, agreed != ""
}

// Close stops every process and removes the temporary directory. It is
// idempotent.
func (s *RedisSentinel) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	procs := append([]*redisProc(nil), s.sentinels...)
	for _, p := range s.nodes {
		procs = append(procs, p)
	}
	s.sentinels, s.nodes = nil, map[string]*redisProc{}
	s.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.stop(redisStopGrace))
	}
	errs = append(errs, os.RemoveAll(s.dir))
	return errors.Join(errs...)
}

// startNode starts a data node (a replica of primary when primary is set)
// and returns its address.
func (s *RedisSentinel) startNode(name, primary string) (string, error) {
	lines := []string{`save ""`, "appendonly no"}
	if s.opts.Password != "" {
		lines = append(lines, "requirepass "+redisQuote(s.opts.Password), "masterauth "+redisQuote(s.opts.Password))
	}
	if primary != "" {
		host, port, _ := net.SplitHostPort(primary)
		lines = append(lines, "replicaof "+host+" "+port)
	}
	p, addr, err := s.spawn(name, lines, false, s.opts.Password)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.nodes[addr] = p
	s.mu.Unlock()
	return addr, nil
}

func (s *RedisSentinel) startSentinel(n int, primary string) error {
	host, port, _ := net.SplitHostPort(primary)
	m := s.opts.MasterName
	quorum := s.opts.Sentinels/2 + 1
	lines := []string{
		"sentinel resolve-hostnames no",
		fmt.Sprintf("sentinel monitor %s %s %s %d", m, host, port, quorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", m, s.opts.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", m, s.opts.FailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", m),
	}
	if s.opts.Password != "" {
		lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", m, redisQuote(s.opts.Password)))
	}
	p, addr, err := s.spawn("sentinel"+strconv.Itoa(n), lines, true, "")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sentinels = append(s.sentinels, p)
	s.addrs = append(s.addrs, addr)
	s.mu.Unlock()
	return nil
}

// spawn starts name with its own config file (Sentinels rewrite theirs,
// so each needs its own) on a free port.
func (s *RedisSentinel) spawn(name string, lines []string, sentinel bool, password string) (*redisProc, string, error) {
	var args []string
	if sentinel {
		args = []string{"--sentinel"}
	} else {
		lines = append(lines, "dbfilename "+redisQuote(name+".rdb"))
	}
	return spawnRedis(s.binary, s.dir, name, args, password, func(int) ([]string, error) { return lines, nil })
}

// waitInSync waits until the primary reports every replica online with its
// whole replication stream.
func (s *RedisSentinel) waitInSync(ctx context.Context, primary string) error {
	c := s.Client(primary, 0)
	defer c.Close()
	var last string
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil {
			last = info
			if replicasInSync(info) == s.opts.Replicas {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded: replicas of %s not in sync: %w; INFO replication: %s", primary, ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// replicasInSync counts the replicas an INFO replication section shows
// online at the primary's offset.
func replicasInSync(info string) int {
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	n := 0
	for k, v := range fields {
		if !strings.HasPrefix(k, "slave") || strings.HasPrefix(k, "slave_") || !strings.Contains(v, "state=online") {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			if off, ok := strings.CutPrefix(part, "offset="); ok && off == fields["master_repl_offset"] {
				n++
			}
		}
	}
	return n
}

// waitSentinelsReady waits until every Sentinel has discovered the replicas
// and the other Sentinels: before that, a dead primary cannot reach the
// quorum or has no replica to promote.
func (s *RedisSentinel) waitSentinelsReady(ctx context.Context) error {
	var last string
	for {
		ready := true
		for _, a := range s.SentinelAddrs() {
			c := redis.NewSentinelClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: time.Second,
				MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
			m, err := c.Master(ctx, s.opts.MasterName).Result()
			c.Close()
			if err != nil {
				ready, last = false, fmt.Sprintf("sentinel %s: %v", a, err)
				break
			}
			if m["num-slaves"] != strconv.Itoa(s.opts.Replicas) || m["num-other-sentinels"] != strconv.Itoa(s.opts.Sentinels-1) {
				ready, last = false, fmt.Sprintf("sentinel %s knows %s replicas and %s other sentinels", a, m["num-slaves"], m["num-other-sentinels"])
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded: sentinels not ready: %w (%s)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
