// Package testinfra gives tests real infrastructure — the embedded FerretDB
// store, NATS server and Redis from blogplatform/devkit/embedded — reached
// over the network exactly as services reach production infrastructure.
//
// Shared per test package (one line in TestMain):
//
//	var env *testinfra.Env
//
//	func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }
//
// Tests then isolate themselves with env.UniqueDBName (their own Mongo
// database) and env.NextRedisDB plus FLUSHDB (their own Redis logical DB).
//
// Private (for fault injection, e.g. stopping NATS or Redis, or for special
// options such as NATS users or a Redis password):
//
//	env := testinfra.NewEnv(t) // or NewEnvWith(t, testinfra.Options{...})
//
// Everything is torn down with t.Cleanup.
package testinfra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"blogplatform/devkit/embedded"
	"blogplatform/devkit/indexcheck"
)

// startTimeout bounds how long starting the whole environment may take.
const startTimeout = 30 * time.Second

// redisDBCount is the number of logical databases of a default redis-server
// (databases 16); miniredis accepts the same SELECT range.
const redisDBCount = 16

// maxDBNameLen: FerretDB v1 accepts database names matching
// ^[a-zA-Z0-9_-]{1,63}$ (internal/backends/validation.go), stricter than
// MongoDB (64 bytes, most characters allowed).
const maxDBNameLen = 63

// Options configures an environment; the zero value is what Run uses: an
// ephemeral store, NATS without authentication, Redis without a password.
type Options struct {
	Store embedded.StoreOptions
	NATS  embedded.NATSOptions
	Redis embedded.RedisOptions
	// AfterTests, when set, runs in RunWith after the package's tests and
	// before teardown, with their exit code; what it returns is the
	// package's exit code (a whole-run check such as index coverage).
	AfterTests func(e *Env, code int) int
}

// Env is a running set of infrastructure. Fields are exported so fault
// injection tests can call Redis.Stop/Start, NATS.Restart, etc.
type Env struct {
	Store *embedded.Store
	NATS  *embedded.NATS
	Redis *embedded.Redis
	// Queries records the queries of every client whose options carry its
	// Monitor (the service replicas the test helpers start).
	Queries *indexcheck.Recorder

	redisDB atomic.Uint32
}

// Start starts the store, NATS and Redis. On error, whatever was started is
// stopped again. Prefer Run or NewEnv in tests; Start is for harnesses that
// manage the lifetime themselves.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	e := &Env{Queries: indexcheck.NewRecorder()}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()

	if e.Store, err = embedded.StartStore(ctx, opts.Store); err != nil {
		return nil, fmt.Errorf("testinfra: store: %w", err)
	}
	if e.NATS, err = embedded.StartNATS(opts.NATS); err != nil {
		return nil, fmt.Errorf("testinfra: nats: %w", err)
	}
	if e.Redis, err = embedded.StartRedis(opts.Redis); err != nil {
		return nil, fmt.Errorf("testinfra: redis: %w", err)
	}
	return e, nil
}

// Close stops everything that was started. It is idempotent.
func (e *Env) Close() error {
	var errs []error
	if e.Redis != nil {
		errs = append(errs, e.Redis.Close())
	}
	if e.NATS != nil {
		e.NATS.Shutdown()
	}
	if e.Store != nil {
		errs = append(errs, e.Store.Close())
	}
	return errors.Join(errs...)
}

// Run is the whole body of a package's TestMain: it starts the shared
// environment, stores it in *env, runs the tests, tears everything down and
// returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }
//
// It prints which Redis is used (the real redis-server or the miniredis
// stand-in) to stderr, so every test log says what the tests ran against. If
// the environment cannot start, no test runs and the code is 1: a missing
// dependency must fail the package, not silently skip it.
func Run(m *testing.M, env **Env) int {
	return RunWith(m, env, Options{})
}

// RunWith is Run with options (e.g. a Redis password or NATS users shared by
// the whole package).
func RunWith(m *testing.M, env **Env, opts Options) int {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	begin := time.Now()
	e, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testinfra: cannot start test infrastructure: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "testinfra: redis: %s at %s\n", e.Redis.Kind(), e.Redis.Addr())
	fmt.Fprintf(os.Stderr, "testinfra: store: %s at %s; nats: %s (all started in %s)\n",
		e.Store.Backend(), e.Store.URI(), e.NATS.ClientURL(), time.Since(begin).Round(time.Millisecond))

	*env = e
	code := m.Run()
	*env = nil
	if opts.AfterTests != nil {
		code = opts.AfterTests(e, code)
	}

	if err := e.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "testinfra: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// NewEnv starts a private environment for one test (default options) and
// stops it in t.Cleanup. Use it when a test disturbs the infrastructure
// (stops Redis, restarts NATS) and must not affect other tests.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	return NewEnvWith(t, Options{})
}

// NewEnvWith is NewEnv with options, e.g. NATS users for a permissions test.
func NewEnvWith(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	e, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	t.Logf("testinfra: private env: redis: %s", e.Redis.Kind())
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("testinfra: teardown: %v", err)
		}
	})
	return e
}

// MongoURI is the store's MongoDB connection string (no credentials).
func (e *Env) MongoURI() string { return e.Store.URI() }

// NATSURL is the NATS client URL.
func (e *Env) NATSURL() string { return e.NATS.ClientURL() }

// RedisAddr is the Redis "host:port".
func (e *Env) RedisAddr() string { return e.Redis.Addr() }

// RedisPassword is the Redis password ("" when none).
func (e *Env) RedisPassword() string { return e.Redis.Password() }

// UniqueDBName returns a fresh database name, prefix + "-" + 12 random hex
// digits, so every test gets its own database in the shared store and needs
// no cleanup. Characters FerretDB does not accept in database names
// (anything but letters, digits, '_' and '-', e.g. the '/' of subtest names)
// become '_', and a long prefix is shortened to keep the name within
// FerretDB's 63-byte limit. Passing t.Name() as prefix is fine.
func (e *Env) UniqueDBName(prefix string) string {
	return UniqueDBName(prefix)
}

// UniqueDBName is the function behind Env.UniqueDBName, usable without an Env.
func UniqueDBName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	suffix := "-" + hex.EncodeToString(b[:])

	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		default:
			return '_'
		}
	}, prefix)
	if clean == "" {
		clean = "test"
	}
	if max := maxDBNameLen - len(suffix); len(clean) > max {
		clean = clean[:max]
	}
	return clean + suffix
}

// NextRedisDB hands out Redis logical database numbers 0..15 round robin.
// Numbers repeat after 16 calls, so a test that needs a clean database must
// FLUSHDB the one it got before using it (and tests that share a number must
// not run in parallel with each other). Selecting a database works the same
// on redis-server and the miniredis stand-in (go-redis Options.DB).
func (e *Env) NextRedisDB() int {
	return int((e.redisDB.Add(1) - 1) % redisDBCount)
}
