package testinfra

import (
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/devkit/embedded"
	"blogplatform/devkit/wait"
)

// env is this package's shared environment, started by the one-line TestMain
// that every service package is meant to copy.
var env *Env

func TestMain(m *testing.M) { os.Exit(Run(m, &env)) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func TestSharedEnvServesAllThree(t *testing.T) {
	if env == nil {
		t.Fatal("Run did not set env")
	}
	ctx := ctxFor(t)

	t.Run("mongo", func(t *testing.T) {
		db := mongoClient(t, env.MongoURI()).Database(env.UniqueDBName(t.Name()))
		if _, err := db.Collection("posts").InsertOne(ctx, bson.M{"_id": "p1"}); err != nil {
			t.Fatalf("insert into %s: %v", db.Name(), err)
		}
		if n, err := db.Collection("posts").CountDocuments(ctx, bson.M{}); err != nil || n != 1 {
			t.Errorf("count = %d, %v", n, err)
		}
	})

	t.Run("nats", func(t *testing.T) {
		nc, err := nats.Connect(env.NATSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		sub, err := nc.Subscribe("testinfra.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		reply, err := nc.Request("testinfra.echo", []byte("x"), 5*time.Second)
		if err != nil || string(reply.Data) != "x" {
			t.Fatalf("request = %v, %v", reply, err)
		}
	})

	t.Run("redis", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: env.RedisAddr(), Password: env.RedisPassword(), DB: env.NextRedisDB()})
		defer c.Close()
		if err := c.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Errorf("get = %q, %v", v, err)
		}
		if env.Redis.Kind() == "" {
			t.Error("Redis kind not reported")
		}
	})
}

var validFerretDBName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

func TestUniqueDBName(t *testing.T) {
	tests := []struct {
		prefix     string
		wantPrefix string
	}{
		{"users", "users-"},
		{"TestX/sub test.case", "TestX_sub_test_case-"},
		{"", "test-"},
		{strings.Repeat("p", 100), strings.Repeat("p", 50) + "-"},
		{"ünïcode", "_n_code-"}, // one '_' per non-ASCII rune
	}
	ctx := ctxFor(t)
	client := mongoClient(t, env.MongoURI())
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			a, b := env.UniqueDBName(tt.prefix), env.UniqueDBName(tt.prefix)
			if a == b {
				t.Fatalf("not unique: %s", a)
			}
			if !validFerretDBName.MatchString(a) {
				t.Fatalf("%q is not a valid FerretDB database name", a)
			}
			if !strings.HasPrefix(a, tt.wantPrefix) {
				t.Errorf("%q does not start with %q", a, tt.wantPrefix)
			}
			// The store really accepts it.
			if _, err := client.Database(a).Collection("c").InsertOne(ctx, bson.M{"ok": true}); err != nil {
				t.Errorf("FerretDB rejects %q: %v", a, err)
			}
		})
	}
}

func TestNextRedisDBRoundRobin(t *testing.T) {
	e := &Env{}
	for round := 0; round < 2; round++ {
		for want := 0; want < 16; want++ {
			if got := e.NextRedisDB(); got != want {
				t.Fatalf("round %d: NextRedisDB = %d, want %d", round, got, want)
			}
		}
	}
}

// TestPrivateEnvFaultInjection is the pattern for tests that break the
// infrastructure: a private Env, so the shared one stays healthy.
func TestPrivateEnvFaultInjection(t *testing.T) {
	e := NewEnv(t)
	if e.MongoURI() == env.MongoURI() || e.NATSURL() == env.NATSURL() || e.RedisAddr() == env.RedisAddr() {
		t.Fatal("private env shares servers with the shared env")
	}
	ctx := ctxFor(t)

	rc := redis.NewClient(&redis.Options{Addr: e.RedisAddr(), MaxRetries: -1})
	defer rc.Close()
	if err := e.Redis.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Ping(ctx).Err(); err == nil {
		t.Fatal("redis answered while stopped")
	}
	if err := e.Redis.Start(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis after Start: %v", err)
	}

	nc, err := nats.Connect(e.NATSURL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := e.NATS.Restart(); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, "NATS client reconnected after Restart", func() bool {
		return nc.IsConnected() && nc.Stats().Reconnects > 0
	})
}

func TestPrivateEnvWithOptions(t *testing.T) {
	e := NewEnvWith(t, Options{
		Redis: embedded.RedisOptions{Password: "s3cret"},
		NATS: embedded.NATSOptions{Users: []embedded.NATSUser{
			{Name: "auth", Password: "a", Subscribe: []string{"auth.>"}},
			{Name: "blog", Password: "b", Subscribe: []string{"blog.>"}},
		}},
	})
	if e.RedisPassword() != "s3cret" {
		t.Errorf("RedisPassword = %q", e.RedisPassword())
	}
	ctx := ctxFor(t)
	rc := redis.NewClient(&redis.Options{Addr: e.RedisAddr(), Password: e.RedisPassword()})
	defer rc.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Errorf("redis with password: %v", err)
	}

	errs := make(chan error, 1)
	nc, err := nats.Connect(e.NATSURL(), nats.UserInfo("blog", "b"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("auth.>"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("got %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blog user could subscribe to auth.>")
	}
}

// TestStartCleansUpOnFailure: when one server cannot start, the ones already
// started are stopped again instead of leaking.
func TestStartCleansUpOnFailure(t *testing.T) {
	t.Setenv(embedded.EnvRedisStandIn, "") // forcing the stand-in would bypass ServerPath
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	storeAddr := ln.Addr().String()
	_ = ln.Close()

	e, err := Start(ctxFor(t), Options{
		Store: embedded.StoreOptions{Addr: storeAddr},
		Redis: embedded.RedisOptions{ServerPath: "/nonexistent/redis-server"},
	})
	if err == nil {
		_ = e.Close()
		t.Fatal("Start succeeded with a missing redis-server")
	}
	if !strings.Contains(err.Error(), "redis") {
		t.Errorf("error does not name redis: %v", err)
	}
	if c, err := net.DialTimeout("tcp", storeAddr, time.Second); err == nil {
		_ = c.Close()
		t.Error("store still listening after a failed Start")
	}
}
