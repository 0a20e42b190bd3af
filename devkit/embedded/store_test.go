package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// startStore starts an ephemeral store and closes it when the test ends.
func startStore(t testing.TB, opts StoreOptions) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartStore(ctx, opts)
	if err != nil {
		t.Fatalf("StartStore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return s
}

// connect returns a mongo-driver client disconnected before the store closes
// (cleanups run last-in first-out), so Close does not wait out FerretDB's
// grace period for open connections.
func connect(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("mongo.Connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStoreBasics(t *testing.T) {
	s := startStore(t, StoreOptions{})
	if s.Backend() != BackendSQLiteTemp {
		t.Errorf("Backend = %q, want %q", s.Backend(), BackendSQLiteTemp)
	}
	if s.Host() != "127.0.0.1" || s.Port() == 0 {
		t.Errorf("Host/Port = %q/%d", s.Host(), s.Port())
	}
	if want := fmt.Sprintf("mongodb://127.0.0.1:%d/", s.Port()); s.URI() != want {
		t.Errorf("URI = %q, want %q", s.URI(), want)
	}
	if !strings.HasPrefix(s.Dir(), tempBase()) {
		t.Errorf("Dir = %q, want it under %q", s.Dir(), tempBase())
	}

	ctx := testCtx(t)
	coll := connect(t, s.URI()).Database("blog").Collection("posts")
	res, err := coll.InsertOne(ctx, bson.M{"title": "hello", "tags": bson.A{"a", "b"}, "views": 3})
	if err != nil {
		t.Fatalf("InsertOne: %v", err)
	}
	var got struct {
		ID    bson.ObjectID `bson:"_id"`
		Title string        `bson:"title"`
		Views int           `bson:"views"`
	}
	if err := coll.FindOne(ctx, bson.M{"_id": res.InsertedID}).Decode(&got); err != nil {
		t.Fatalf("FindOne: %v", err)
	}
	if got.Title != "hello" || got.Views != 3 || got.ID != res.InsertedID {
		t.Errorf("FindOne = %+v", got)
	}
	// Updates matter because FerretDB's in-memory SQLite mode deadlocks on
	// them (see TestFerretDBMemoryModeDeadlocksOnUpdate): the store must not.
	up, err := coll.UpdateOne(ctx, bson.M{"title": "hello"}, bson.M{"$inc": bson.M{"views": 1}})
	if err != nil || up.ModifiedCount != 1 {
		t.Fatalf("UpdateOne = %+v, %v", up, err)
	}
	var after bson.M
	if err := coll.FindOneAndUpdate(ctx, bson.M{"_id": res.InsertedID}, bson.M{"$set": bson.M{"title": "hi"}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&after); err != nil {
		t.Fatalf("FindOneAndUpdate: %v", err)
	}
	if after["title"] != "hi" || after["views"] != int32(4) {
		t.Errorf("after update: %v", after)
	}
	if n, err := coll.CountDocuments(ctx, bson.M{"tags": "b"}); err != nil || n != 1 {
		t.Errorf("CountDocuments = %d, %v", n, err)
	}
	if d, err := coll.DeleteOne(ctx, bson.M{"_id": res.InsertedID}); err != nil || d.DeletedCount != 1 {
		t.Errorf("DeleteOne = %+v, %v", d, err)
	}
	if err := coll.FindOne(ctx, bson.M{"_id": res.InsertedID}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("FindOne after delete: %v, want ErrNoDocuments", err)
	}
}

func TestDuplicateKeyError(t *testing.T) {
	s := startStore(t, StoreOptions{})
	ctx := testCtx(t)
	coll := connect(t, s.URI()).Database("auth").Collection("users")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "email", Value: 1}},
		Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatalf("CreateOne index: %v", err)
	}
	if _, err := coll.InsertMany(ctx, []any{
		bson.M{"_id": "u1", "email": "a@example.com"},
		bson.M{"_id": "u2", "email": "b@example.com"},
	}); err != nil {
		t.Fatalf("seed: %v", err)
	}

	tests := []struct {
		name string
		op   func() error
	}{
		{"InsertOne same unique field", func() error {
			_, err := coll.InsertOne(ctx, bson.M{"email": "a@example.com"})
			return err
		}},
		{"InsertOne same _id", func() error {
			_, err := coll.InsertOne(ctx, bson.M{"_id": "u1", "email": "new@example.com"})
			return err
		}},
		{"InsertMany second doc duplicate", func() error {
			_, err := coll.InsertMany(ctx, []any{bson.M{"email": "c@example.com"}, bson.M{"email": "b@example.com"}})
			return err
		}},
		{"UpdateOne onto existing value", func() error {
			_, err := coll.UpdateOne(ctx, bson.M{"_id": "u2"}, bson.M{"$set": bson.M{"email": "a@example.com"}})
			return err
		}},
		{"UpdateMany onto existing value", func() error {
			_, err := coll.UpdateMany(ctx, bson.M{"_id": "u2"}, bson.M{"$set": bson.M{"email": "a@example.com"}})
			return err
		}},
		{"ReplaceOne onto existing value", func() error {
			_, err := coll.ReplaceOne(ctx, bson.M{"_id": "u2"}, bson.M{"email": "a@example.com"})
			return err
		}},
		{"FindOneAndUpdate onto existing value", func() error {
			return coll.FindOneAndUpdate(ctx, bson.M{"_id": "u2"}, bson.M{"$set": bson.M{"email": "a@example.com"}}).Err()
		}},
		{"upsert onto existing value", func() error {
			_, err := coll.UpdateOne(ctx, bson.M{"_id": "u9"}, bson.M{"$set": bson.M{"email": "a@example.com"}},
				options.UpdateOne().SetUpsert(true))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if !IsDuplicateKey(err) {
				t.Fatalf("IsDuplicateKey(%T %v) = false", err, err)
			}
			// Pin the two shapes documented on IsDuplicateKey, so a FerretDB
			// upgrade that changes them is noticed.
			if mongo.IsDuplicateKeyError(err) {
				if !strings.Contains(err.Error(), "E11000 duplicate key error collection: auth.users") {
					t.Errorf("code 11000 error with unexpected text: %v", err)
				}
			} else {
				var ce mongo.CommandError
				if !errors.As(err, &ce) || ce.Code != 1 || !strings.Contains(ce.Message, "UNIQUE constraint failed") {
					t.Errorf("unexpected duplicate shape %T: %v", err, err)
				}
				t.Logf("FerretDB quirk: %s reports code %d %q", tt.name, ce.Code, ce.Name)
			}
		})
	}

	// The failed operations changed nothing.
	if n, err := coll.CountDocuments(ctx, bson.M{"email": "a@example.com"}); err != nil || n != 1 {
		t.Errorf("documents with the duplicated email = %d, %v; want 1", n, err)
	}

	for _, err := range []error{
		nil, errors.New("E11000 lookalike text"), mongo.ErrNoDocuments, context.Canceled,
		mongo.CommandError{Code: 1, Message: "some other internal error"},
		mongo.CommandError{Code: 2, Message: "UNIQUE constraint failed but wrong code"},
	} {
		if IsDuplicateKey(err) {
			t.Errorf("IsDuplicateKey(%v) = true", err)
		}
	}
}

// TestStoresAreIsolated answers "can two FerretDB instances run in one
// process, and do ephemeral stores share data?": yes they can (started
// concurrently here, which also checks the ferretNewMu race fix under
// -race), and no, each has its own data even with identical database and
// collection names, because each has its own SQLite directory.
func TestStoresAreIsolated(t *testing.T) {
	stores := make([]*Store, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			s, err := StartStore(context.Background(), StoreOptions{})
			if err != nil {
				t.Errorf("StartStore %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	a, b := stores[0], stores[1]
	if a.URI() == b.URI() || a.Dir() == b.Dir() {
		t.Fatalf("stores share an address or directory: %s %s / %s %s", a.URI(), a.Dir(), b.URI(), b.Dir())
	}

	ctx := testCtx(t)
	ca := connect(t, a.URI()).Database("same").Collection("same")
	cb := connect(t, b.URI()).Database("same").Collection("same")
	if _, err := ca.InsertOne(ctx, bson.M{"_id": 1, "in": "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.InsertOne(ctx, bson.M{"_id": 1, "in": "b"}); err != nil {
		t.Fatalf("same _id in the other store must not conflict: %v", err)
	}
	for name, c := range map[string]*mongo.Collection{"a": ca, "b": cb} {
		var doc bson.M
		if err := c.FindOne(ctx, bson.M{"_id": 1}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc["in"] != name {
			t.Errorf("store %s sees %v", name, doc)
		}
	}
}

func TestDirStoreKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir() + "/nested dir" // created by StartStore; a space must be fine
	ctx := testCtx(t)

	first, err := StartStore(ctx, StoreOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if first.Backend() != BackendSQLiteDir {
		t.Errorf("Backend = %q", first.Backend())
	}
	c1, err := mongo.Connect(options.Client().ApplyURI(first.URI()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Database("blog").Collection("posts").InsertOne(ctx, bson.M{"_id": "p1", "title": "kept"}); err != nil {
		t.Fatal(err)
	}
	_ = c1.Disconnect(ctx)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/blog.sqlite"); err != nil {
		t.Fatalf("database file missing after Close: %v", err)
	}

	// Same address too: this is how a fault-injection test restarts a store.
	second := startStore(t, StoreOptions{Dir: dir, Addr: first.Addr()})
	if second.URI() != first.URI() {
		t.Errorf("URI changed: %s -> %s", first.URI(), second.URI())
	}
	var doc bson.M
	if err := connect(t, second.URI()).Database("blog").Collection("posts").
		FindOne(ctx, bson.M{"_id": "p1"}).Decode(&doc); err != nil {
		t.Fatalf("data lost across restart: %v", err)
	}
	if doc["title"] != "kept" {
		t.Errorf("doc = %v", doc)
	}
}

func TestStoreCloseRemovesTempDir(t *testing.T) {
	s, err := StartStore(context.Background(), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close without clients took %s", time.Since(begin))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there (%v)", dir, err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Errorf("store still listening after Close")
	}
}

// TestStoreBusyAddress checks that a taken port is an ordinary error, and that
// no leaked FerretDB backend panics the process at the next GC (see the probe
// in StartStore).
func TestStoreBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := StartStore(context.Background(), StoreOptions{Addr: ln.Addr().String()})
	if err == nil {
		_ = s.Close()
		t.Fatal("StartStore on a busy address succeeded")
	}
	runtime.GC()
	runtime.GC()
}

func TestStoreLoggerDefaultsToWarn(t *testing.T) {
	var buf syncBuffer
	logger := slogTextLogger(&buf)
	s := startStore(t, StoreOptions{Logger: logger})
	ctx := testCtx(t)
	if err := connect(t, s.URI()).Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// FerretDB logs "Connection started" for every client at Info.
	if strings.Contains(buf.String(), "level=INFO") {
		t.Errorf("Info lines reached the logger:\n%s", buf.String())
	}
}

// TestFerretDBMemoryModeDeadlocksOnUpdate documents why StartStore does not
// use FerretDB's in-memory SQLite mode ("file:./?mode=memory"). In that mode:
//   - each FerretDB instance does get private databases (no shared cache:
//     FerretDB rejects cache=shared, and every SQLite in-memory database is
//     private to its connection), so two instances are isolated; but
//   - FerretDB v1.24.2 limits each in-memory database to one connection,
//     and an update holds it with a query iterator while asking for a second
//     one to run the UPDATE, so it hangs forever and wedges that database.
//
// If this test starts failing because the update succeeds, a FerretDB
// upgrade has fixed the deadlock and StartStore could use memory mode again.
func TestFerretDBMemoryModeDeadlocksOnUpdate(t *testing.T) {
	startMemory := func() string {
		ferretNewMu.Lock()
		f, err := ferretdb.New(&ferretdb.Config{
			Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
			Handler:   "sqlite",
			SQLiteURL: "file:./?mode=memory",
			Logger:    discardLogger(),
		})
		ferretNewMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = f.Run(ctx) }()
		// A cleanup, not a defer: cleanups run after the test function and
		// in reverse order, so the clients registered later by connect are
		// disconnected before the server stops, sparing FerretDB's grace
		// period for open connections.
		t.Cleanup(func() { cancel(); <-done })
		return f.MongoDBURI()
	}
	uriA := startMemory()
	uriB := startMemory()

	ctx := testCtx(t)
	ca := connect(t, uriA).Database("d").Collection("c")
	cb := connect(t, uriB).Database("d").Collection("c")
	if _, err := ca.InsertOne(ctx, bson.M{"_id": 1, "n": 1}); err != nil {
		t.Fatal(err)
	}
	if n, err := cb.CountDocuments(ctx, bson.M{}); err != nil || n != 0 {
		t.Fatalf("memory instance B sees %d docs of A (%v): memory mode is shared", n, err)
	}
	if err := ca.FindOne(ctx, bson.M{"_id": 1}).Err(); err != nil {
		t.Fatalf("find in memory mode: %v", err)
	}

	uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := ca.UpdateOne(uctx, bson.M{"_id": 1}, bson.M{"$set": bson.M{"n": 2}})
	if err == nil {
		t.Fatal("UpdateOne in FerretDB memory mode succeeded: the deadlock is fixed, reconsider memory mode in StartStore")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !mongo.IsTimeout(err) {
		t.Fatalf("UpdateOne failed differently than by hanging: %v", err)
	}
}
