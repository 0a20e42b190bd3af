package embedded

import (
	"blogplatform/chassis/mongox"

	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Backend names reported by [Store.Backend].
const (
	// BackendSQLiteTemp: StoreOptions.Dir was empty, so the SQLite files live
	// in a private temporary directory (on the /dev/shm tmpfs when available,
	// i.e. in RAM) that Close deletes. See "Why not SQLite's in-memory mode".
	BackendSQLiteTemp = "ferretdb-sqlite-temp"
	// BackendSQLiteDir: the SQLite files live in StoreOptions.Dir and survive
	// Close.
	BackendSQLiteDir = "ferretdb-sqlite-dir"
	// BackendPostgreSQL: StoreOptions.PostgreSQLURL was set, so FerretDB
	// keeps the data in that PostgreSQL database (which outlives Close).
	BackendPostgreSQL = "ferretdb-postgresql"
)

// Why not SQLite's in-memory mode (SQLiteURL "file:./?mode=memory")?
//
// FerretDB v1.24.2 opens each in-memory database with database/sql's
// MaxOpenConns(1), because every SQLite connection to ":memory:" would see a
// different database. Its update path (update, findAndModify, and everything
// after them on that database) holds a query iterator on that single
// connection while UpdateAll begins a transaction, which waits for a second
// connection forever: the first UpdateOne hangs and wedges the whole database
// until the store is closed. TestFerretDBMemoryModeDeadlocksOnUpdate keeps
// that finding honest (it fails, telling us to switch back, once a FerretDB
// upgrade fixes it). A private temporary directory on tmpfs gives the same
// "fast, isolated, gone on Close" behaviour through FerretDB's well-tested
// file path, where SQLite runs in WAL mode with a pool of connections.

// storeReadyTimeout bounds how long StartStore waits for the first ping when
// the caller's context has no deadline of its own.
const storeReadyTimeout = 15 * time.Second

// ferretNewMu serialises ferretdb.New. ferretdb.New writes the process-global
// version.Get().Package field on every call, so two stores started
// concurrently (e.g. parallel tests, or testinfra.NewEnv in t.Parallel tests)
// would be a data race under -race. Nothing else in FerretDB v1.24.2's
// embedded path is process-global: each New creates its own state provider
// and its own (unregistered) Prometheus collectors, so several instances run
// side by side in one process; see TestStoresAreIsolated.
var ferretNewMu sync.Mutex

// StoreOptions configures [StartStore]. The zero value is an ephemeral store
// (temporary directory, in RAM when /dev/shm is usable) on a random
// 127.0.0.1 port that logs nothing.
type StoreOptions struct {
	// Addr is the TCP listen address; "" means "127.0.0.1:0" (random port).
	Addr string

	// Dir is where the SQLite database files live (one file per database).
	// "" means a fresh private temporary directory, on tmpfs when /dev/shm
	// exists, deleted by Close: the data is private to this Store (two Stores
	// never see each other's databases, even with colliding names) and is
	// lost on Close; see TestStoresAreIsolated.
	// A non-empty Dir is created if missing and kept on Close, so a new Store
	// started on the same Dir sees the data of the previous one.
	Dir string

	// Logger receives FerretDB's logs; nil discards them.
	Logger *slog.Logger

	// LogLevel is the minimum level passed to Logger; nil means slog.LevelWarn
	// because FerretDB logs every connection at Info.
	LogLevel slog.Leveler

	// PostgreSQLURL, when set, runs FerretDB on its PostgreSQL backend
	// instead of SQLite (Dir must then be empty), e.g.
	// "postgres://user@/postgres?host=/run/pg&port=5432"; the caller owns
	// the PostgreSQL server and its data. For measurements on large
	// collections: FerretDB's SQLite backend scans the whole collection for
	// every update, and the PostgreSQL backend pushes a filter on _id down
	// as `_jsonb->'_id' @> $1`, which only a GIN (jsonb_path_ops) index on
	// _jsonb->'_id' answers, not the btree index FerretDB keeps on _id.
	PostgreSQLURL string
}

// Store is a running embedded FerretDB. It is safe for concurrent use.
type Store struct {
	uri       string
	host      string
	port      int
	backend   string
	dir       string
	removeDir bool // dir is our temporary directory: delete it on Close

	cancel context.CancelFunc
	done   chan struct{} // closed when ferretdb.Run returns
	runErr error         // set before done is closed

	closeOnce sync.Once
}

// StartStore starts an embedded FerretDB (SQLite backend) and returns once it
// answers a MongoDB ping, so callers can connect straight away.
//
// ctx bounds the start-up only (the ping wait); the store runs until Close,
// whatever happens to ctx afterwards. To "restart" a store for a fault
// injection test, Close it and call StartStore again with
// StoreOptions{Addr: old.Addr(), Dir: sameDir}; with Dir == "" the data is gone.
func StartStore(ctx context.Context, opts StoreOptions) (*Store, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}

	if opts.PostgreSQLURL != "" {
		if opts.Dir != "" {
			return nil, fmt.Errorf("embedded: StoreOptions.Dir and PostgreSQLURL are exclusive")
		}
		return startFerretDB(ctx, addr, opts, ferretdb.Config{Handler: "postgresql", PostgreSQLURL: opts.PostgreSQLURL},
			BackendPostgreSQL, "", false, func() {})
	}

	backend := BackendSQLiteDir
	dir := opts.Dir
	removeDir := false
	if dir == "" {
		tmp, err := os.MkdirTemp(tempBase(), "embedded-ferretdb-*")
		if err != nil {
			return nil, fmt.Errorf("embedded: store temp dir: %w", err)
		}
		dir, removeDir, backend = tmp, true, BackendSQLiteTemp
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: store dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: store dir: %w", err)
	}
	cleanup := func() {
		if removeDir {
			_ = os.RemoveAll(abs)
		}
	}
	// FerretDB wants "file:" + a directory ending in "/"; escape the path so
	// a directory name with spaces or '?' does not become a query string.
	sqliteURL := "file:" + (&url.URL{Path: abs}).EscapedPath() + "/"
	return startFerretDB(ctx, addr, opts, ferretdb.Config{Handler: "sqlite", SQLiteURL: sqliteURL}, backend, abs, removeDir, cleanup)
}

// startFerretDB starts FerretDB with backend cfg (Handler and its URL set) on
// addr. cleanup undoes what the caller prepared, on failure.
func startFerretDB(ctx context.Context, addr string, opts StoreOptions, cfg ferretdb.Config, backend, abs string, removeDir bool, cleanup func()) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = discardLogger()
	} else {
		lvl := opts.LogLevel
		if lvl == nil {
			lvl = slog.LevelWarn
		}
		logger = slog.New(minLevelHandler{min: lvl, h: logger.Handler()})
	}

	// Probe the listen address ourselves first. When ferretdb.New fails to
	// listen it returns without closing the SQLite backend it already opened,
	// and FerretDB's leak detector (a finalizer on that backend) then panics
	// the whole process at the next garbage collection. A busy fixed port is
	// the realistic way to hit that (a second devstack), so refuse it here
	// with an ordinary error. Port 0 cannot be busy.
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("embedded: store address %s: %w", addr, err)
	}
	_ = probe.Close()

	ferretNewMu.Lock()
	cfg.Listener = ferretdb.ListenerConfig{TCP: addr}
	cfg.Logger = logger
	f, err := ferretdb.New(&cfg)
	ferretNewMu.Unlock()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("embedded: start FerretDB on %s (%s backend): %w", addr, cfg.Handler, err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Store{
		backend:   backend,
		dir:       abs,
		removeDir: removeDir,
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	// Run from here on, even if the checks below fail: Run is what closes
	// FerretDB's listener and SQLite pool, and an unclosed pool trips a
	// finalizer in FerretDB that panics when it is garbage-collected.
	go func() {
		defer close(s.done)
		s.runErr = f.Run(runCtx)
	}()

	// The listener is already bound by ferretdb.New, so MongoDBURI does not
	// block; it reports the real port when addr asked for port 0.
	s.uri = f.MongoDBURI()
	if err := s.parseURI(); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	logger.Debug("embedded store ready", slog.String("uri", s.uri), slog.String("backend", backend))
	return s, nil
}

func (s *Store) parseURI() error {
	u, err := url.Parse(s.uri)
	if err != nil {
		return fmt.Errorf("embedded: FerretDB returned an unparsable URI %q: %w", s.uri, err)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Errorf("embedded: FerretDB URI %q: %w", s.uri, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("embedded: FerretDB URI %q: %w", s.uri, err)
	}
	s.host, s.port = host, port
	return nil
}

// waitReady proves the store serves the MongoDB protocol: a plain TCP dial
// first (cheap, fails fast if nothing listens), then a mongo-driver ping,
// which exercises the handshake the services will perform.
func (s *Store) waitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, storeReadyTimeout)
		defer cancel()
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return fmt.Errorf("embedded: store not accepting connections on %s: %w", s.Addr(), err)
	}
	_ = conn.Close()

	client, err := mongo.Connect(options.Client().ApplyURI(s.uri).SetServerSelectionTimeout(storeReadyTimeout))
	if err != nil {
		return fmt.Errorf("embedded: store client: %w", err)
	}
	defer func() {
		// Disconnect promptly: FerretDB's Run waits for open connections on
		// shutdown, so a lingering pool would slow down Close.
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("embedded: store ping %s: %w", s.uri, err)
	}
	return nil
}

// URI is the MongoDB connection string, e.g. "mongodb://127.0.0.1:41235/",
// without credentials (the embedded store has authentication disabled).
func (s *Store) URI() string { return s.uri }

// Host is the listen host, e.g. "127.0.0.1".
func (s *Store) Host() string { return s.host }

// Port is the listen TCP port.
func (s *Store) Port() int { return s.port }

// Addr is "host:port".
func (s *Store) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Backend is BackendSQLiteTemp, BackendSQLiteDir or BackendPostgreSQL.
func (s *Store) Backend() string { return s.backend }

// Dir is the absolute data directory (the temporary one when
// StoreOptions.Dir was empty; "" on the PostgreSQL backend).
func (s *Store) Dir() string { return s.dir }

// Close stops the store and waits until its listener, connections and SQLite
// databases are closed. Clients that are still connected are given FerretDB's
// grace period (a few seconds) before being cut off, so disconnect clients
// first for a fast Close. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		if s.removeDir {
			if err := os.RemoveAll(s.dir); err != nil && s.runErr == nil {
				s.runErr = fmt.Errorf("embedded: remove store temp dir: %w", err)
			}
		}
	})
	<-s.done
	return s.runErr
}

// IsDuplicateKey reports whether err is a unique-index violation, both as
// MongoDB reports it and as FerretDB v1 does.
//
// Findings (FerretDB v1.24.2, SQLite backend, mongo-driver v2.10.0; see
// TestDuplicateKeyError):
//   - Inserts (InsertOne, InsertMany, and upserts that insert) fail like on
//     MongoDB: a write error with code 11000 (DuplicateKey) and a message
//     starting "E11000 duplicate key error collection: <db>.<coll>", so
//     mongo.IsDuplicateKeyError recognises them (mongo.WriteException for
//     InsertOne and upserts, mongo.BulkWriteException for InsertMany).
//   - Updates that would create a duplicate (UpdateOne/UpdateMany/ReplaceOne
//     with $set onto a taken value, FindOneAndUpdate) do NOT: FerretDB returns
//     a command error with code 1 (InternalError) whose message contains
//     SQLite's "UNIQUE constraint failed: index '<table>_<field>_1' (2067)".
//     mongo.IsDuplicateKeyError says false for these, so this helper also
//     accepts code 1 + "UNIQUE constraint failed".
//
// The checks live in mongox.IsDuplicateKey, which services use (importing
// this package would link FerretDB, SQLite and nats-server into them).
func IsDuplicateKey(err error) bool { return mongox.IsDuplicateKey(err) }

// Running reports whether the store is still serving.
func (s *Store) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// tempBase is where ephemeral stores keep their SQLite files: /dev/shm (a
// RAM-backed tmpfs on Linux) when it is writable and has room, so an
// ephemeral store costs no disk I/O; otherwise the OS temp directory.
// Containers often mount a 64 MiB /dev/shm, too small for a test suite's
// databases, hence the free-space check.
func tempBase() string {
	const shm = "/dev/shm"
	const minFree = 256 << 20
	if free, ok := freeBytes(shm); !ok || free < minFree {
		return os.TempDir()
	}
	f, err := os.CreateTemp(shm, "embedded-probe-*")
	if err != nil {
		return os.TempDir()
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return shm
}
