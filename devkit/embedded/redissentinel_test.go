package embedded

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A Sentinel group of real servers: what is written to the primary reaches
// the replica; after the primary is SIGKILLed, the Sentinels agree on the
// replica as the new primary within a few seconds, and it holds the data
// and takes writes.
func TestRedisSentinelFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartRedisSentinel(ctx, RedisSentinelOptions{Password: "sentinel-test"})
	if err != nil {
		t.Fatal(err) // a missing redis-server fails here, with the install line
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if got := len(s.SentinelAddrs()); got != 3 {
		t.Fatalf("%d sentinels, want 3", got)
	}
	primary, err := s.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if data := s.DataAddrs(); len(data) != 2 || !slices.Contains(data, primary) {
		t.Fatalf("data nodes %v, primary %s", data, primary)
	}
	c := s.Client(primary, 0)
	defer c.Close()
	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Acknowledged by the replica, so the promotion cannot lose it.
	if n, err := c.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d %v", n, err)
	}

	begin := time.Now()
	killed, err := s.KillMaster(ctx)
	if err != nil || killed != primary {
		t.Fatalf("KillMaster = %s, %v; want %s", killed, err, primary)
	}
	next, err := s.WaitNewMaster(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	t.Logf("failover %s → %s in %s", primary, next, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("failover took %s with down-after 500ms", took)
	}
	n := s.Client(next, 0)
	defer n.Close()
	if v, err := n.Get(ctx, "k").Result(); err != nil || v != "v1" {
		t.Fatalf("new primary GET k = %q, %v", v, err)
	}
	if err := n.Set(ctx, "k", "v2", 0).Err(); err != nil {
		t.Fatalf("new primary refuses writes: %v", err)
	}
	if _, err := s.KillMaster(ctx); err != nil {
		t.Fatalf("killing the second primary: %v", err)
	}
}

// Without redis-server the harness fails with the install hint: a Sentinel
// test must never pass or skip without the real server.
func TestRedisSentinelMissingServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartRedisSentinel(context.Background(), RedisSentinelOptions{})
	if !errors.Is(err, ErrRedisServerMissing) {
		t.Fatalf("err = %v, want ErrRedisServerMissing", err)
	}
}
