package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/migrate"
	"blogplatform/devkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

// connect gives a test its own client on a fresh database (a client per
// replica, so one replica's connection can be cut).
func connect(t testing.TB, name string) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(env.MongoURI()).SetServerSelectionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(name)
}

// logTap is a slog handler that hands every message to fn (and drops it).
type logTap struct {
	fn    func(msg string, attrs map[string]string)
	attrs []slog.Attr
}

func (h *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (h *logTap) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	for _, a := range h.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.fn(r.Message, m)
	return nil
}
func (h *logTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &logTap{fn: h.fn, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *logTap) WithGroup(string) slog.Handler { return h }

// messages collects log messages; waitFor blocks until one contains s.
type messages struct {
	mu   sync.Mutex
	all  []string
	cond chan struct{}
}

func newMessages() *messages { return &messages{cond: make(chan struct{}, 1)} }

func (m *messages) logger() *slog.Logger {
	return slog.New(&logTap{fn: func(msg string, attrs map[string]string) {
		m.mu.Lock()
		m.all = append(m.all, msg+" "+fmt.Sprint(attrs))
		m.mu.Unlock()
		select {
		case m.cond <- struct{}{}:
		default:
		}
	}})
}

func (m *messages) has(s string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.all {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (m *messages) waitFor(ctx context.Context, s string) error {
	for !m.has(s) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no log line with %q: %w", s, ctx.Err())
		case <-m.cond:
		}
	}
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func fastOptions(owner string, log *slog.Logger) migrate.Options {
	return migrate.Options{Owner: owner, LeaseTTL: 3 * time.Second, PollInterval: 20 * time.Millisecond,
		RetryDelay: 50 * time.Millisecond, Logger: log}
}

func counting(name string, bg bool, n *atomic.Int32) migrate.Step {
	return migrate.Step{Name: name, Background: bg, Run: func(context.Context, *migrate.Progress) error { n.Add(1); return nil }}
}

func records(t *testing.T, r *migrate.Runner) map[string]migrate.Record {
	t.Helper()
	recs, err := r.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]migrate.Record, len(recs))
	for _, rec := range recs {
		m[rec.Name] = rec
	}
	return m
}

func waitBackground(t *testing.T, r *migrate.Runner) {
	t.Helper()
	select {
	case <-r.BackgroundDone():
	case <-time.After(20 * time.Second):
		t.Fatal("background steps did not finish")
	}
}

// seed inserts n documents {_id: ObjectID, i} into coll.
func seed(t testing.TB, coll *mongo.Collection, n int) {
	t.Helper()
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		docs := make([]any, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "i", Value: i}})
		}
		if _, err := coll.InsertMany(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
	}
}

// markBatch is an idempotent batch function: it sets done on the batch's
// documents and counts how often each was handed over. It writes per
// document, as a backfill whose values differ per document must, in bulk
// writes of at most 50 (FerretDB v1.24.2 keeps one SQLite query open per
// statement of an update command until the command ends: about 100
// statements exhaust its connection pool and wedge the database).
func markBatch(coll *mongo.Collection) func(context.Context, []bson.Raw) error {
	return func(ctx context.Context, docs []bson.Raw) error {
		for start := 0; start < len(docs); start += 50 {
			models := make([]mongo.WriteModel, 0, 50)
			for _, d := range docs[start:min(len(docs), start+50)] {
				models = append(models, mongo.NewUpdateOneModel().
					SetFilter(bson.D{{Key: "_id", Value: d.Lookup("_id")}}).
					SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}, {Key: "$inc", Value: bson.D{{Key: "hits", Value: 1}}}}))
			}
			if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
				return err
			}
		}
		return nil
	}
}

// hits returns how many documents have each hits count, and how many lack done.
func hits(t *testing.T, coll *mongo.Collection) (byHits map[int32]int, notDone int) {
	t.Helper()
	cur, err := coll.Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		Done bool  `bson:"done"`
		Hits int32 `bson:"hits"`
	}
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	byHits = map[int32]int{}
	for _, d := range docs {
		byHits[d.Hits]++
		if !d.Done {
			notDone++
		}
	}
	return byHits, notDone
}

// A second start on a migrated database runs nothing and writes nothing.
func TestSecondRunIsNoOp(t *testing.T) {
	ctx := context.Background()
	db := connect(t, env.UniqueDBName("migrate-idem"))
	var a, b, c atomic.Int32
	steps := []migrate.Step{counting("a", false, &a), counting("b", false, &b), counting("c", true, &c)}

	first, err := migrate.New(db, steps, fastOptions("r1", quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitBackground(t, first)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	before := records(t, first)
	for _, name := range []string{"a", "b", "c"} {
		if rec := before[name]; rec.State != migrate.StateDone || rec.Attempts != 1 || rec.FinishedAt == nil || rec.Owner != "r1" {
			t.Fatalf("record %s = %+v, want done once by r1", name, rec)
		}
	}
	if !before["c"].Background || before["a"].Background {
		t.Fatalf("background flags wrong: %+v", before)
	}
	locksBefore, _ := db.Collection("migrations").CountDocuments(ctx, bson.D{{Key: "lock", Value: bson.D{{Key: "$exists", Value: true}}}})

	log := newMessages()
	second, err := migrate.New(db, steps, fastOptions("r2", log.logger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitBackground(t, second)
	if a.Load() != 1 || b.Load() != 1 || c.Load() != 1 {
		t.Fatalf("runs a=%d b=%d c=%d, want 1 each", a.Load(), b.Load(), c.Load())
	}
	after := records(t, second)
	for name, rec := range before {
		if !after[name].UpdatedAt.Equal(rec.UpdatedAt) || after[name].Owner != "r1" {
			t.Fatalf("record %s changed on a no-op start: %+v -> %+v", name, rec, after[name])
		}
	}
	locksAfter, _ := db.Collection("migrations").CountDocuments(ctx, bson.D{{Key: "lock", Value: bson.D{{Key: "$exists", Value: true}}}})
	if locksAfter != locksBefore {
		t.Fatalf("lock documents %d -> %d on a no-op start", locksBefore, locksAfter)
	}
	if !log.has("migrations up to date") {
		t.Fatalf("no 'up to date' line: %v", log.all)
	}
	// A step added by a later version runs alone.
	var d atomic.Int32
	third, err := migrate.New(db, append(steps[:2:2], counting("d", false, &d), steps[2]), fastOptions("r3", quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitBackground(t, third)
	if a.Load() != 1 || b.Load() != 1 || c.Load() != 1 || d.Load() != 1 {
		t.Fatalf("runs a=%d b=%d c=%d d=%d, want 1 each", a.Load(), b.Load(), c.Load(), d.Load())
	}
}

// Two replicas starting together on one database run every step once; the
// one without the lease waits and returns only when the steps are done.
func TestTwoReplicasRunEachStepOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := env.UniqueDBName("migrate-two")
	logs := newMessages()
	var fg1, fg2, bg atomic.Int32
	var fg2Done atomic.Bool
	steps := []migrate.Step{
		{Name: "first", Run: func(ctx context.Context, p *migrate.Progress) error {
			fg1.Add(1)
			// Hold the lease until the other replica is seen waiting, so
			// the two really overlap.
			return logs.waitFor(ctx, "waiting for another replica's migrations")
		}},
		{Name: "second", Run: func(context.Context, *migrate.Progress) error { fg2.Add(1); fg2Done.Store(true); return nil }},
		counting("backfill", true, &bg),
	}
	runners := make([]*migrate.Runner, 2)
	for i := range runners {
		r, err := migrate.New(connect(t, name), steps, fastOptions(fmt.Sprintf("replica-%d", i), logs.logger()))
		if err != nil {
			t.Fatal(err)
		}
		runners[i] = r
	}
	errs := make(chan error, 2)
	start := make(chan struct{})
	for _, r := range runners {
		go func() {
			<-start
			err := r.Run(ctx)
			if err == nil && !fg2Done.Load() {
				err = errors.New("Run returned before the foreground steps were done")
			}
			errs <- err
		}()
	}
	close(start)
	for range runners {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runners {
		waitBackground(t, r)
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if fg1.Load() != 1 || fg2.Load() != 1 || bg.Load() != 1 {
		t.Fatalf("runs first=%d second=%d backfill=%d, want 1 each", fg1.Load(), fg2.Load(), bg.Load())
	}
	for n, rec := range records(t, runners[0]) {
		if rec.State != migrate.StateDone || rec.Attempts != 1 {
			t.Fatalf("record %s = %+v, want done after one attempt", n, rec)
		}
	}
}

// A replica that loses its connection in the middle of a step keeps the
// lease until it expires; the next replica then takes over and finishes from
// the recorded progress without redoing finished batches.
func TestCrashMidwayIsTakenOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	name := env.UniqueDBName("migrate-crash")
	setup := connect(t, name)
	seed(t, setup.Collection("items"), 60)

	// Replica A: its own client, cut off (as a crash or partition would)
	// while it handles the fourth batch.
	clientA, err := mongo.Connect(options.Client().ApplyURI(env.MongoURI()).SetServerSelectionTimeout(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	dbA := clientA.Database(name)
	batchesA := 0
	stepA := migrate.Step{Name: "backfill-items", Run: func(ctx context.Context, p *migrate.Progress) error {
		return p.EachBatch(ctx, migrate.Batch{Collection: dbA.Collection("items"), Size: 6}, func(ctx context.Context, docs []bson.Raw) error {
			if batchesA++; batchesA == 4 {
				_ = clientA.Disconnect(context.Background())
				<-ctx.Done()
				return context.Cause(ctx)
			}
			return markBatch(dbA.Collection("items"))(ctx, docs)
		})
	}}
	ra, err := migrate.New(dbA, []migrate.Step{stepA}, fastOptions("replica-a", quiet()))
	if err != nil {
		t.Fatal(err)
	}
	errA := ra.Run(ctx)
	if !errors.Is(errA, migrate.ErrLeaseLost) {
		t.Fatalf("replica A: Run = %v, want migrate.ErrLeaseLost", errA)
	}

	logs := newMessages()
	seenB := 0
	stepB := migrate.Step{Name: "backfill-items", Run: func(ctx context.Context, p *migrate.Progress) error {
		return p.EachBatch(ctx, migrate.Batch{Collection: setup.Collection("items"), Size: 6}, func(ctx context.Context, docs []bson.Raw) error {
			seenB += len(docs)
			return markBatch(setup.Collection("items"))(ctx, docs)
		})
	}}
	rb, err := migrate.New(setup, []migrate.Step{stepB}, fastOptions("replica-b", logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := rb.Run(ctx); err != nil {
		t.Fatalf("replica B: %v", err)
	}
	if !logs.has("taking over an expired migration lease") {
		t.Fatalf("B did not take over A's lease: %v", logs.all)
	}
	t.Logf("replica B finished %s after starting (A's lease had to expire)", time.Since(begin).Round(time.Millisecond))
	if seenB != 42 {
		t.Fatalf("replica B handled %d documents, want the 42 A had not done", seenB)
	}
	byHits, notDone := hits(t, setup.Collection("items"))
	if notDone != 0 || byHits[1] != 60 {
		t.Fatalf("documents by times handled %v, %d not done; want every one once", byHits, notDone)
	}
	rec := records(t, rb)["backfill-items"]
	if rec.State != migrate.StateDone || rec.Attempts != 2 || rec.Processed != 60 || rec.Owner != "replica-b" {
		t.Fatalf("record %+v, want done by replica-b on attempt 2 with 60 processed", rec)
	}
}

// A step that fails half way is recorded as failed with its progress, the
// start fails, and the next start finishes it from there.
func TestFailedStepResumesOnNextStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db := connect(t, env.UniqueDBName("migrate-fail"))
	items := db.Collection("items")
	seed(t, items, 50)
	failAt := 3
	batches := 0
	step := migrate.Step{Name: "mark", Run: func(ctx context.Context, p *migrate.Progress) error {
		return p.EachBatch(ctx, migrate.Batch{Collection: items, Size: 10, Filter: bson.D{{Key: "done", Value: bson.D{{Key: "$ne", Value: true}}}}},
			func(ctx context.Context, docs []bson.Raw) error {
				if batches++; batches == failAt {
					return errors.New("auth unreachable")
				}
				return markBatch(items)(ctx, docs)
			})
	}}
	r1, _ := migrate.New(db, []migrate.Step{step}, fastOptions("r1", quiet()))
	if err := r1.Run(ctx); err == nil || !strings.Contains(err.Error(), "auth unreachable") {
		t.Fatalf("Run = %v, want the step's error", err)
	}
	rec := records(t, r1)["mark"]
	if rec.State != migrate.StateFailed || rec.Processed != 20 || !strings.Contains(rec.Error, "auth unreachable") {
		t.Fatalf("record after failure %+v", rec)
	}
	r2, _ := migrate.New(db, []migrate.Step{step}, fastOptions("r2", quiet()))
	if err := r2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rec = records(t, r2)["mark"]
	if rec.State != migrate.StateDone || rec.Processed != 50 || rec.Error != "" || rec.Attempts != 2 {
		t.Fatalf("record after resume %+v", rec)
	}
	if byHits, notDone := hits(t, items); notDone != 0 || byHits[1] != 50 {
		t.Fatalf("documents by times handled %v, %d not done", byHits, notDone)
	}
}

// A background step lets Run return at once; Close stops it between batches
// (recorded as interrupted) and the next start resumes it.
func TestBackgroundStepStopsAndResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db := connect(t, env.UniqueDBName("migrate-bg"))
	items := db.Collection("items")
	seed(t, items, 50)
	gate := make(chan struct{}) // each receive lets one batch through
	gated := func(ctx context.Context, docs []bson.Raw) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		return markBatch(items)(ctx, docs)
	}
	steps := func(fn func(context.Context, []bson.Raw) error) []migrate.Step {
		return []migrate.Step{{Name: "backfill", Background: true, Run: func(ctx context.Context, p *migrate.Progress) error {
			return p.EachBatch(ctx, migrate.Batch{Collection: items, Size: 10}, fn)
		}}}
	}
	r1, _ := migrate.New(db, steps(gated), fastOptions("r1", quiet()))
	if err := r1.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Run has returned with the backfill not started: the service is ready.
	gate <- struct{}{}
	gate <- struct{}{}
	gate <- struct{}{} // the third batch is being written when the fourth waits
	for {
		if records(t, r1)["backfill"].Processed == 30 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("three batches not recorded")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec := records(t, r1)["backfill"]
	if rec.State != migrate.StateInterrupted || rec.Processed != 30 {
		t.Fatalf("record after Close %+v, want interrupted at 30", rec)
	}

	r2, _ := migrate.New(db, steps(markBatch(items)), fastOptions("r2", quiet()))
	if err := r2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitBackground(t, r2)
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec = records(t, r2)["backfill"]
	if rec.State != migrate.StateDone || rec.Processed != 50 || rec.Attempts != 2 {
		t.Fatalf("record after resume %+v", rec)
	}
	if byHits, notDone := hits(t, items); notDone != 0 || byHits[1] != 50 {
		t.Fatalf("documents by times handled %v, %d not done", byHits, notDone)
	}
}

// A replica that starts while another runs a backfill is ready at once and
// sees the backfill done when the other finishes it.
func TestBackgroundWaitsForOtherReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := env.UniqueDBName("migrate-bgwait")
	release := make(chan struct{})
	var runs atomic.Int32
	started := make(chan struct{})
	steps := []migrate.Step{{Name: "slow", Background: true, Run: func(ctx context.Context, p *migrate.Progress) error {
		if runs.Add(1) == 1 {
			close(started)
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}}
	r1, _ := migrate.New(connect(t, name), steps, fastOptions("r1", quiet()))
	if err := r1.Run(ctx); err != nil {
		t.Fatal(err)
	}
	<-started
	r2, _ := migrate.New(connect(t, name), steps, fastOptions("r2", quiet()))
	if err := r2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r2.BackgroundDone():
		t.Fatal("r2 reports the backfill done while r1 still runs it")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	waitBackground(t, r1)
	waitBackground(t, r2)
	if runs.Load() != 1 {
		t.Fatalf("backfill ran %d times, want 1", runs.Load())
	}
	_ = r1.Close(ctx)
	_ = r2.Close(ctx)
}

// A large collection walked in batches of 500, as a backfill of the blogs
// collection would walk it. Each batch writes its derived documents with one
// insert, so the figure is the runner's cost (a sorted query, a checkpoint
// and a log line per batch) plus the store's reads. In-place updates are
// not used here: on the embedded FerretDB every modified document costs a
// scan of the whole collection (its SQLite UPDATE does not use the _id
// index), which would measure the store, not the runner.
func backfillLarge(tb testing.TB, n int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := connect(tb, env.UniqueDBName("migrate-large"))
	blogs, derived := db.Collection("blogs"), db.Collection("derived")
	seed(tb, blogs, n)
	logs := newMessages()
	o := fastOptions("r1", logs.logger())
	o.LeaseTTL = 10 * time.Second // a loaded machine must not lose the lease mid-run
	r, _ := migrate.New(db, []migrate.Step{{Name: "backfill", Run: func(ctx context.Context, p *migrate.Progress) error {
		return p.EachBatch(ctx, migrate.Batch{Collection: blogs, Size: 500}, func(ctx context.Context, docs []bson.Raw) error {
			out := make([]any, 0, len(docs))
			for _, d := range docs {
				out = append(out, bson.D{{Key: "_id", Value: d.Lookup("_id")}, {Key: "i2", Value: d.Lookup("i").Int32() * 2}})
			}
			_, err := derived.InsertMany(ctx, out)
			return err
		})
	}}}, o)
	begin := time.Now()
	if err := r.Run(ctx); err != nil {
		tb.Fatal(err)
	}
	took := time.Since(begin)
	recs, err := r.Records(ctx)
	if err != nil || len(recs) != 1 || recs[0].State != migrate.StateDone || recs[0].Processed != int64(n) {
		tb.Fatalf("records %+v (%v)", recs, err)
	}
	if got, err := derived.CountDocuments(ctx, bson.D{}); err != nil || got != int64(n) {
		tb.Fatalf("derived documents %d (%v), want %d", got, err, n)
	}
	batches := (n + 499) / 500
	if !logs.has(fmt.Sprintf("migration batch map[batch:%d ", batches)) || logs.has(fmt.Sprintf("migration batch map[batch:%d ", batches+1)) {
		tb.Fatalf("want %d batch log lines: %d lines", batches, len(logs.all))
	}
	return took
}

func TestLargeCollectionBatched(t *testing.T) {
	const n = 2000
	took := backfillLarge(t, n)
	t.Logf("migrated %d documents in batches of 500 in %s (%.0f docs/s)", n, took.Round(time.Millisecond), n/took.Seconds())
}

// BenchmarkBackfill10k: go test -run '^$' -bench Backfill10k -benchtime 1x
func BenchmarkBackfill10k(b *testing.B) {
	const n = 10000
	for range b.N {
		took := backfillLarge(b, n)
		b.ReportMetric(float64(n)/took.Seconds(), "docs/s")
		b.ReportMetric(took.Seconds(), "s/10k")
	}
}

// A step that runs for several lease periods keeps its lease (renewed while
// it runs): a replica starting meanwhile waits instead of taking over, and
// the step runs once.
func TestLeaseRenewedWhileStepRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := env.UniqueDBName("migrate-renew")
	var runs atomic.Int32
	started := make(chan struct{})
	steps := []migrate.Step{{Name: "long", Run: func(ctx context.Context, p *migrate.Progress) error {
		if runs.Add(1) == 1 {
			close(started)
		}
		select { // three lease periods
		case <-time.After(3 * time.Second):
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}}}
	o := func(owner string, log *slog.Logger) migrate.Options {
		o := fastOptions(owner, log)
		o.LeaseTTL = time.Second
		return o
	}
	r1, _ := migrate.New(connect(t, name), steps, o("r1", quiet()))
	logs := newMessages()
	r2, _ := migrate.New(connect(t, name), steps, o("r2", logs.logger()))
	errs := make(chan error, 1)
	go func() { errs <- r1.Run(ctx) }()
	<-started
	if err := r2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("r1: %v", err)
	}
	if runs.Load() != 1 || logs.has("taking over") || !logs.has("migrations done by another replica") {
		t.Fatalf("runs %d; r2 logs %v", runs.Load(), logs.all)
	}
}
