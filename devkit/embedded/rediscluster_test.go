package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A three-primary cluster of real servers: every node owns a third of the
// slots, a cluster client spreads keys over all three, a multi-key command
// across slots is refused (so tests on it can catch such commands), the
// ACL users work on every node (a cluster client also needs CLUSTER SLOTS
// and COMMAND), and Close stops every process.
func TestRedisCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := StartRedisCluster(ctx, RedisClusterOptions{
		Password: "cluster-test",
		Users:    []RedisUser{{Name: "app", Password: "app-pw", Rules: []string{"~app_*", "+get", "+set", "+ping", "+cluster|slots", "+command"}}},
	})
	if err != nil {
		t.Fatal(err) // a missing redis-server fails here, with the install line
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close()
		}
	})
	if len(c.Addrs()) != 3 {
		t.Fatalf("nodes %v, want 3", c.Addrs())
	}
	cl := c.Client()
	defer cl.Close()
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	covered, ranges := 0, 0
	for _, sh := range shards {
		for _, r := range sh.Slots {
			covered += int(r.End - r.Start + 1)
			ranges++
		}
	}
	if len(shards) != 3 || ranges != 3 || covered != clusterSlots {
		t.Fatalf("shards %v: %d slot ranges cover %d slots, want 3 shards of one range covering %d", shards, ranges, covered, clusterSlots)
	}

	nodes := map[string]int{}
	for i := 0; i < 60; i++ {
		key := fmt.Sprintf("k%d", i)
		if err := cl.Set(ctx, key, i, time.Minute).Err(); err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
		master, err := cl.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		nodes[master.Options().Addr]++
	}
	if len(nodes) != 3 {
		t.Fatalf("60 keys landed on %v, want all three nodes", nodes)
	}
	if err := cl.MGet(ctx, "k1", "k2", "k3").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET across slots: %v, want CROSSSLOT", err)
	}
	if err := cl.MGet(ctx, "{t}a", "{t}b").Err(); err != nil {
		t.Fatalf("MGET within one slot: %v", err)
	}

	app := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Username: "app", Password: "app-pw", DisableIdentity: true})
	defer app.Close()
	for i := 0; i < 10; i++ {
		if err := app.Set(ctx, fmt.Sprintf("app_%d", i), "v", time.Minute).Err(); err != nil {
			t.Fatalf("ACL user on the cluster: %v", err)
		}
	}
	if err := app.Set(ctx, "other", "v", time.Minute).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("ACL user outside its keys: %v", err)
	}

	dir := c.dir
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s left behind: %v", dir, err)
	}
	for _, p := range c.procs {
		t.Errorf("process %d still tracked", p.cmd.Process.Pid)
	}
	if err := cl.Ping(ctx).Err(); err == nil {
		t.Error("cluster still answers after Close")
	}
}

// Without redis-server the cluster fails with the install line, never a
// stand-in.
func TestRedisClusterNeedsTheServer(t *testing.T) {
	_, err := StartRedisCluster(context.Background(), RedisClusterOptions{ServerPath: filepath.Join(t.TempDir(), "redis-server")})
	if err == nil {
		t.Fatal("started without a server binary")
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := StartRedisCluster(context.Background(), RedisClusterOptions{}); !errors.Is(err, ErrRedisClusterServerMissing) ||
		!strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Fatalf("without redis-server on PATH: %v", err)
	}
}
