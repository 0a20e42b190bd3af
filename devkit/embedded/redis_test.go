package embedded

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServerOnPath says whether this machine can exercise the real path.
// The project's CI installs redis-server; without it the "auto" cases below
// check the automatic fallback instead, and say so in the log.
func redisServerOnPath() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

func startRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r, err := StartRedis(opts)
	if err != nil {
		t.Fatalf("StartRedis: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("redis Close: %v", err)
		}
	})
	return r
}

func redisClient(t testing.TB, r *Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password(), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisModes are the two implementations every Redis test runs against.
var redisModes = []struct {
	name         string
	forceStandIn bool
}{
	{"auto", false}, // redis-server when on PATH
	{"stand-in", true},
}

func checkKind(t *testing.T, r *Redis, forced bool) {
	t.Helper()
	switch {
	case forced || envTrue(os.Getenv(EnvRedisStandIn)) || !redisServerOnPath():
		if r.Kind() != KindStandIn || !r.IsStandIn() {
			t.Errorf("Kind = %q, IsStandIn = %v; want the stand-in", r.Kind(), r.IsStandIn())
		}
		if !forced {
			t.Logf("redis-server not on PATH or %s set: checked the fallback, not the real server", EnvRedisStandIn)
		}
	default:
		if !strings.HasPrefix(r.Kind(), "redis-server ") || r.IsStandIn() {
			t.Errorf("Kind = %q, want redis-server <version>", r.Kind())
		}
	}
	t.Logf("Kind() = %q", r.Kind())
}

func TestRedisBasicsAndPassword(t *testing.T) {
	for _, mode := range redisModes {
		t.Run(mode.name, func(t *testing.T) {
			r := startRedis(t, RedisOptions{Password: `p@ss "word"\x`, ForceStandIn: mode.forceStandIn})
			checkKind(t, r, mode.forceStandIn)
			if r.Host() != "127.0.0.1" || r.Port() == 0 || r.Addr() != "127.0.0.1:"+strconv.Itoa(r.Port()) {
				t.Errorf("Host/Port/Addr = %s/%d/%s", r.Host(), r.Port(), r.Addr())
			}
			ctx := testCtx(t)
			c := redisClient(t, r)
			if err := c.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
			// Logical databases work on both (testinfra.NextRedisDB relies on it).
			c5 := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password(), DB: 15})
			defer c5.Close()
			if n, err := c5.Exists(ctx, "k").Result(); err != nil || n != 0 {
				t.Errorf("DB 15 sees DB 0's key: %d, %v", n, err)
			}

			for name, pw := range map[string]string{"wrong password": "nope", "no password": ""} {
				bad := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: pw, MaxRetries: -1})
				err := bad.Ping(ctx).Err()
				_ = bad.Close()
				if err == nil {
					t.Errorf("%s: PING succeeded", name)
				}
			}
		})
	}
}

func TestRedisStopStartSamePort(t *testing.T) {
	for _, mode := range redisModes {
		t.Run(mode.name, func(t *testing.T) {
			r := startRedis(t, RedisOptions{ForceStandIn: mode.forceStandIn})
			addr := r.Addr()
			ctx := testCtx(t)
			c := redisClient(t, r)
			if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
				t.Fatal(err)
			}

			if err := r.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := r.Stop(); err != nil { // idempotent
				t.Fatal(err)
			}
			if err := c.Ping(ctx).Err(); err == nil {
				t.Fatal("PING succeeded while stopped")
			}

			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			if r.Addr() != addr {
				t.Fatalf("address changed: %s -> %s", addr, r.Addr())
			}
			// The same client recovers on its own (go-redis redials).
			if err := c.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING after Start: %v", err)
			}
			// No persistence in either mode: a restart starts empty.
			if n, err := c.Exists(ctx, "before").Result(); err != nil || n != 0 {
				t.Errorf("key survived restart: %d, %v", n, err)
			}
			if err := c.Set(ctx, "after", "2", 0).Err(); err != nil {
				t.Fatal(err)
			}
			checkKind(t, r, mode.forceStandIn)
		})
	}
}

func TestRedisEnvForcesStandIn(t *testing.T) {
	t.Setenv(EnvRedisStandIn, "true")
	r := startRedis(t, RedisOptions{})
	if !r.IsStandIn() || r.Kind() != KindStandIn {
		t.Errorf("Kind = %q with %s=true", r.Kind(), EnvRedisStandIn)
	}
}

func TestRedisExplicitMissingBinaryIsAnError(t *testing.T) {
	t.Setenv(EnvRedisStandIn, "") // forcing the stand-in would bypass ServerPath
	if r, err := StartRedis(RedisOptions{ServerPath: "/nonexistent/redis-server"}); err == nil {
		_ = r.Close()
		t.Fatal("StartRedis with a missing ServerPath succeeded")
	}
}

func TestTwoRedisAtOnce(t *testing.T) {
	a := startRedis(t, RedisOptions{})
	b := startRedis(t, RedisOptions{})
	if a.Port() == b.Port() {
		t.Fatalf("same port %d", a.Port())
	}
	ctx := testCtx(t)
	if err := redisClient(t, a).Set(ctx, "x", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := redisClient(t, b).Exists(ctx, "x").Result(); err != nil || n != 0 {
		t.Errorf("second redis sees the first one's key: %d, %v", n, err)
	}
}

// TestRedisCloseLeavesNothingBehind: the child process is reaped and the
// temporary directory is removed; Start after Close is refused.
func TestRedisCloseLeavesNothingBehind(t *testing.T) {
	ensureRedisServerBinary(t)
	t.Setenv(EnvRedisStandIn, "") // this test is about the real child process
	r, err := StartRedis(RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	proc := r.proc
	r.mu.Unlock()
	dir := r.workDir
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.exited:
	default:
		t.Fatal("redis-server process not reaped after Close")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there (%v)", dir, err)
	}
	if err := r.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestRedisQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     `"plain"`,
		`a"b\c`:     `"a\"b\\c"`,
		"new\nline": `"new\x0aline"`,
		"é":         `"\xc3\xa9"`,
	} {
		if got := redisQuote(in); got != want {
			t.Errorf("redisQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
