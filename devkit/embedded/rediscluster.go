package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// RedisClusterOptions configures [StartRedisCluster]. The zero value gives
// three primaries without replicas and without a password.
type RedisClusterOptions struct {
	// Primaries is the number of primaries (default 3, the smallest
	// cluster redis-cli agrees to create); the slots are split evenly.
	Primaries int
	// Password, when set, is required by every node (requirepass) and
	// used between them (masterauth).
	Password string
	// Users are ACL users created on every node, as [RedisOptions.Users].
	Users []RedisUser
	// NodeTimeout is cluster-node-timeout (default 2 s).
	NodeTimeout time.Duration
	// ServerPath is the redis-server binary; "" means exec.LookPath. There
	// is no stand-in: the cluster needs the real server.
	ServerPath string
}

// RedisCluster is a Redis Cluster of real redis-server processes
// (cluster-enabled) on 127.0.0.1, each with its own config file in a
// private temporary directory, formed from Go (CLUSTER ADDSLOTSRANGE and
// CLUSTER MEET, what redis-cli --cluster create does). Safe for concurrent
// use.
type RedisCluster struct {
	opts   RedisClusterOptions
	binary string
	dir    string
	addrs  []string
	buses  []int // the nodes' cluster bus ports

	mu     sync.Mutex
	closed bool
	procs  []*redisProc
}

// ErrRedisClusterServerMissing is returned when redis-server is not
// installed: Redis Cluster has no in-process stand-in.
var ErrRedisClusterServerMissing = errors.New("embedded: redis-server is not installed (apt-get install -y redis-server); Redis Cluster needs the real server")

// StartRedisCluster starts the primaries, assigns each its share of the
// slots, joins them and returns once every node reports cluster_state:ok
// and knows every other primary. On error everything started is stopped.
func StartRedisCluster(ctx context.Context, opts RedisClusterOptions) (_ *RedisCluster, err error) {
	if opts.Primaries <= 0 {
		opts.Primaries = 3
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 2 * time.Second
	}
	for _, u := range opts.Users {
		if u.Name == "" || u.Name == "default" || u.Password == "" {
			return nil, fmt.Errorf("embedded: redis user %q needs a name other than default and a password", u.Name)
		}
	}
	binary, lerr := lookRedisServer(opts.ServerPath, ErrRedisClusterServerMissing)
	if lerr != nil {
		return nil, lerr
	}
	dir, err := os.MkdirTemp("", "embedded-rediscluster-*")
	if err != nil {
		return nil, fmt.Errorf("embedded: redis cluster temp dir: %w", err)
	}
	c := &RedisCluster{opts: opts, binary: binary, dir: dir}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	for i := 0; i < opts.Primaries; i++ {
		if err = c.startNode(i); err != nil {
			return nil, err
		}
	}
	if err = c.form(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Addrs are the nodes' host:port, a seed list for cluster clients
// (REDIS_CLUSTER_ADDRS).
func (c *RedisCluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Password is the nodes' requirepass ("" for none).
func (c *RedisCluster) Password() string { return c.opts.Password }

// Client is a cluster client with the default user's rights (for test
// assertions); the caller closes it.
func (c *RedisCluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: c.opts.Password, DisableIdentity: true})
}

// node is a plain client of one node.
func (c *RedisCluster) node(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: c.opts.Password, MaxRetries: -1, DisableIdentity: true})
}

// Close stops every node and removes the temporary directory. It is
// idempotent.
func (c *RedisCluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.stop(redisStopGrace))
	}
	errs = append(errs, os.RemoveAll(c.dir))
	return errors.Join(errs...)
}

// startNode starts node i on a free port with a free cluster bus port.
func (c *RedisCluster) startNode(i int) error {
	name := "node" + strconv.Itoa(i+1)
	var busPort int
	p, addr, err := spawnRedis(c.binary, c.dir, name, nil, c.opts.Password, func(int) ([]string, error) {
		var err error
		if busPort, err = freePort(); err != nil {
			return nil, err
		}
		// The node rewrites its nodes.conf; one left by a failed attempt
		// would carry the old port.
		_ = os.Remove(filepath.Join(c.dir, name+"-nodes.conf"))
		conf := []string{
			`save ""`,
			"appendonly no",
			"dbfilename " + redisQuote(name+".rdb"),
			"cluster-enabled yes",
			"cluster-port " + strconv.Itoa(busPort),
			"cluster-config-file " + redisQuote(name+"-nodes.conf"),
			"cluster-node-timeout " + strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10),
		}
		if c.opts.Password != "" {
			conf = append(conf, "requirepass "+redisQuote(c.opts.Password), "masterauth "+redisQuote(c.opts.Password))
		}
		for _, u := range c.opts.Users {
			conf = append(conf, u.aclLine())
		}
		return conf, nil
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.addrs = append(c.addrs, addr)
	c.buses = append(c.buses, busPort)
	c.mu.Unlock()
	return nil
}

// form gives each node a distinct config epoch and an even share of the
// slots, introduces every node to the first, and waits until the cluster
// is whole.
func (c *RedisCluster) form(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n := len(c.addrs)
	first, _, _ := net.SplitHostPort(c.addrs[0])
	for i, addr := range c.addrs {
		cl := c.node(addr)
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		err := cl.Do(ctx, "cluster", "set-config-epoch", i+1).Err()
		if err == nil {
			err = cl.Do(ctx, "cluster", "addslotsrange", lo, hi).Err()
		}
		if err == nil && i > 0 {
			// The bus port is not port+10000 here, so MEET names it.
			_, port, _ := net.SplitHostPort(c.addrs[0])
			err = cl.Do(ctx, "cluster", "meet", first, port, c.buses[0]).Err()
		}
		_ = cl.Close()
		if err != nil {
			return fmt.Errorf("embedded: form the redis cluster at %s: %w", addr, err)
		}
	}
	var last string
	for {
		ok := true
		for _, addr := range c.addrs {
			if whole, state := c.whole(ctx, addr, n); !whole {
				ok, last = false, addr+": "+state
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded: redis cluster not formed: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// whole reports whether the node at addr sees the cluster ok with n
// connected primaries, and otherwise what it sees.
func (c *RedisCluster) whole(ctx context.Context, addr string, n int) (bool, string) {
	cl := c.node(addr)
	defer cl.Close()
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return false, err.Error()
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return false, "cluster_state not ok"
	}
	nodes, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return false, err.Error()
	}
	connected := 0
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		if f := strings.Fields(line); len(f) >= 8 && strings.Contains(f[2], "master") && f[7] == "connected" {
			connected++
		}
	}
	if connected != n {
		return false, fmt.Sprintf("%d of %d primaries connected", connected, n)
	}
	return true, ""
}
