package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/wait"
)

// svcKeys is a service's key space in these tests; other_* keys belong to
// another service sharing the database.
var svcKeys = cache.KeySpace{Patterns: []string{"svc_*", "svcx:*"}, Marker: "svcx:failover:primary"}

func sentinelClient(t *testing.T, s *embedded.RedisSentinel, keys cache.KeySpace) redis.UniversalClient {
	t.Helper()
	rdb := cache.NewRedis(cache.RedisOptions{
		SentinelAddrs: s.SentinelAddrs(), SentinelMaster: s.MasterName(), Password: s.Password(), DB: 3,
		Timeout:  500 * time.Millisecond,
		Failover: cache.FailoverOptions{Keys: keys, Logger: slog.New(slog.DiscardHandler)},
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// runID is the node's INFO run_id.
func runID(t *testing.T, c *redis.Client) string {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	t.Fatal("no run_id")
	return ""
}

// The hazard and its fix, on real servers. Replication is asynchronous: the
// replica is held back (CLIENT PAUSE WRITE stops it applying the stream,
// as a slow or lagging replica would), an invalidation is acknowledged by
// the primary, and the primary is killed. The promoted replica really holds
// the value the invalidation removed (read with a plain client); a client
// of the service never sees it: its first connection to the new primary
// discards the service's keys (and only those) before any command runs,
// other clients' connections wait for that, and none purges again.
func TestSentinelFailoverDiscardsOldPrimarysKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := embedded.StartRedisSentinel(ctx, embedded.RedisSentinelOptions{Password: "failover-test"})
	if err != nil {
		t.Fatal(err) // redis-server missing fails here
	}
	t.Cleanup(func() { _ = s.Close() })
	primaryAddr, err := s.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	primary := s.Client(primaryAddr, 3)
	defer primary.Close()

	t.Run("first connection discards keys written before, in batches, and only the service's", func(t *testing.T) {
		pipe := primary.Pipeline()
		for i := 0; i < 1200; i++ {
			pipe.Set(ctx, fmt.Sprintf("svc_%d", i), "x", 0)
		}
		pipe.Set(ctx, "svcx:gen", "7", 0)
		pipe.Set(ctx, "other_k", "kept", 0)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		rdb := sentinelClient(t, s, svcKeys)
		if err := rdb.Set(ctx, "svc_new", "fresh", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, _ := primary.DBSize(ctx).Result(); n != 3 { // svc_new, other_k, the marker
			keys, _ := primary.Keys(ctx, "*").Result()
			t.Fatalf("%d keys left (%v), want svc_new, other_k and the marker", n, keys)
		}
		if v, _ := primary.Get(ctx, svcKeys.Marker).Result(); v != runID(t, primary) {
			t.Fatalf("marker %q, want the primary's run_id", v)
		}
		// Another replica of the service: the keys are verified, nothing
		// is purged again.
		other := sentinelClient(t, s, svcKeys)
		if v, err := other.Get(ctx, "svc_new").Result(); err != nil || v != "fresh" {
			t.Fatalf("second client: %q %v", v, err)
		}
	})

	t.Run("connections are refused while another connection purges", func(t *testing.T) {
		if err := primary.Set(ctx, svcKeys.Marker, "an-older-primary", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := primary.Set(ctx, svcKeys.Marker+":purge", "someone-else", 5*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
		rdb := sentinelClient(t, s, svcKeys)
		if err := rdb.Get(ctx, "svc_new").Err(); !errors.Is(err, cache.ErrPurging) {
			t.Fatalf("GET while another purges: %v, want ErrPurging", err)
		}
		if err := primary.Del(ctx, svcKeys.Marker+":purge").Err(); err != nil { // that purger died
			t.Fatal(err)
		}
		if err := rdb.Get(ctx, "svc_new").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET after the purge: %v, want a miss (the value predates the marker)", err)
		}
	})

	t.Run("a client without a key space trusts nothing", func(t *testing.T) {
		rdb := sentinelClient(t, s, cache.KeySpace{})
		if err := rdb.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "key space") {
			t.Fatalf("PING without a key space: %v", err)
		}
	})

	t.Run("an ACL user without INFO and SCAN gets a clear error", func(t *testing.T) {
		if err := primary.Do(ctx, "ACL", "SETUSER", "svc", "reset", "on", ">svc-pass", "~svc_*", "~svcx:*",
			"+ping", "+select", "+get", "+set", "+eval", "+evalsha").Err(); err != nil {
			t.Fatal(err)
		}
		rdb := cache.NewRedis(cache.RedisOptions{
			SentinelAddrs: s.SentinelAddrs(), SentinelMaster: s.MasterName(), Username: "svc", Password: "svc-pass", DB: 3,
			Failover: cache.FailoverOptions{Keys: svcKeys, Logger: slog.New(slog.DiscardHandler)},
		})
		defer rdb.Close()
		if err := rdb.Get(ctx, "svc_new").Err(); err == nil || !strings.Contains(err.Error(), "+info and +scan") {
			t.Fatalf("GET as a user without +info: %v, want the hint", err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		a, b := sentinelClient(t, s, svcKeys), sentinelClient(t, s, svcKeys)
		if err := a.Set(ctx, "svc_blog", "old", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Get(ctx, "svc_blog").Err(); err != nil { // b has a connection to the old primary too
			t.Fatal(err)
		}
		if n, err := primary.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
			t.Fatalf("WAIT: %d %v", n, err)
		}
		var replicaAddr string
		for _, d := range s.DataAddrs() {
			if d != primaryAddr {
				replicaAddr = d
			}
		}
		replica := s.Client(replicaAddr, 3)
		defer replica.Close()
		if err := replica.Do(ctx, "CLIENT", "PAUSE", "1500", "WRITE").Err(); err != nil {
			t.Fatal(err)
		}
		// The invalidation: acknowledged by the primary, never applied by
		// the replica.
		if err := a.Del(ctx, "svc_blog").Err(); err != nil {
			t.Fatal(err)
		}
		if v, _ := replica.Get(ctx, "svc_blog").Result(); v != "old" {
			t.Fatalf("the replica has %q, want the stale value (the hazard is not armed)", v)
		}
		if _, err := s.KillMaster(ctx); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		next, err := s.WaitNewMaster(ctx, primaryAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("failover to %s in %s", next, time.Since(begin).Round(time.Millisecond))
		np := s.Client(next, 3)
		defer np.Close()
		if v, _ := np.Get(ctx, "svc_blog").Result(); v != "old" {
			t.Fatalf("new primary holds %q; the acknowledged delete was expected to be lost", v)
		}
		for _, c := range []redis.UniversalClient{b, a} {
			wait.Eventually(t, 10*time.Second, "the service reads the new primary", func() bool {
				err := c.Get(ctx, "svc_blog").Err()
				if err == nil {
					t.Fatal("the service read the value an acknowledged invalidation removed")
				}
				return errors.Is(err, redis.Nil)
			})
		}
		if v, _ := np.Get(ctx, "other_k").Result(); v != "kept" {
			t.Errorf("another service's key: %q, want kept", v)
		}
		if v, _ := np.Get(ctx, svcKeys.Marker).Result(); v != runID(t, np) {
			t.Errorf("marker %q, want the new primary's run_id", v)
		}
	})
}
