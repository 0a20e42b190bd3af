package migrations_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/blog_service/migrations"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/migrate"
	"blogplatform/devkit/testinfra"
)

var (
	env      *testinfra.Env
	redisDBs = testkit.NewRedisDBs()
)

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

// fakeProfiles stands in for auth_service: it knows some users, counts the
// look-ups, and can fail or block them.
type fakeProfiles struct {
	users map[string]string // id → name
	calls atomic.Int32
	// hook, when set, runs before each look-up (n counts from 1); a
	// non-nil error is returned as auth_service being unreachable.
	hook func(ctx context.Context, n int32) error
}

func (f *fakeProfiles) Lookup(ctx context.Context, id bson.ObjectID) (model.AuthorProfile, bool, error) {
	n := f.calls.Add(1)
	if f.hook != nil {
		if err := f.hook(ctx, n); err != nil {
			return model.AuthorProfile{}, false, err
		}
	}
	name, ok := f.users[id.Hex()]
	return model.AuthorProfile{Name: name}, ok, nil
}

// logTap counts log messages per step.
type logTap struct {
	mu     sync.Mutex
	counts map[string]int // step + "|" + message
}

func (l *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	step := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "step" {
			step = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.counts[step+"|"+r.Message]++
	l.mu.Unlock()
	return nil
}
func (l *logTap) WithAttrs(as []slog.Attr) slog.Handler { return &attrTap{l, as} }
func (l *logTap) WithGroup(string) slog.Handler         { return l }
func (l *logTap) count(step, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[step+"|"+msg]
}

// attrTap carries the attributes of With into Handle.
type attrTap struct {
	*logTap
	attrs []slog.Attr
}

func (a *attrTap) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(a.attrs...)
	return a.logTap.Handle(ctx, r)
}
func (a *attrTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrTap{a.logTap, append(slices.Clone(a.attrs), as...)}
}

// runner runs the blog steps on the app's database, recording them in
// collection (each test uses fresh names, so the steps run although the
// app's own runner found nothing to do at its start).
func runner(t *testing.T, app *testkit.App, collection string, profiles migrations.Profiles, batch int, log *logTap) *migrate.Runner {
	t.Helper()
	handler := slog.Handler(slog.DiscardHandler)
	if log != nil {
		handler = log
	}
	r, err := migrate.New(app.Store.Collection().Database(), migrations.Steps(migrations.Deps{
		Blogs: app.Store.Collection(), Cache: app.Cache, Profiles: profiles, BatchSize: batch,
	}), migrate.Options{Collection: collection, RetryDelay: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, Logger: slog.New(handler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func waitDone(t *testing.T, r *migrate.Runner) map[string]migrate.Record {
	t.Helper()
	select {
	case <-r.BackgroundDone():
	case <-time.After(20 * time.Second):
		t.Fatal("background migrations did not finish")
	}
	recs, err := r.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]migrate.Record{}
	for _, rec := range recs {
		out[rec.Name] = rec
	}
	for _, name := range []string{migrations.TermsStep, migrations.AuthorProfileStep} {
		if out[name].State != migrate.StateDone {
			t.Fatalf("step %s: %+v, want done", name, out[name])
		}
	}
	return out
}

func stored(t *testing.T, app *testkit.App, id string) *model.Blog {
	t.Helper()
	oid, _ := bson.ObjectIDFromHex(id)
	b, err := app.Store.FindByID(context.Background(), oid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	ada  = "66a0c6b2f1e4d3c2b1a0a001"
	bob  = "66a0c6b2f1e4d3c2b1a0a002"
	gone = "66a0c6b2f1e4d3c2b1a0dead"
)

// The author-profile backfill asks once per distinct author, in batches,
// stores an empty profile for an author auth_service does not know, drops
// the cached views of the blogs it changes, leaves blogs that have a
// profile alone, and has nothing to do the second time.
func TestAuthorProfileBackfill(t *testing.T) {
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(t, env, redisDBs, nil)
	ref := func(slug, author string) testkit.RefBlog {
		return testkit.RefBlog{Title: "Blog " + slug, Description: "Reference blog", Slug: slug, Author: author, Published: true}
	}
	ids := app.InsertReferenceBlogs(t, ref("ada-1", ada), ref("bob-1", bob), ref("gone-1", gone), ref("ada-2", ada),
		ref("bob-2", bob), ref("ada-3", ada), ref("gone-2", gone))
	// One blog of the known test author, read once so that its view (with
	// the name the service's own resolver found) is cached.
	withAuthor := app.InsertReferenceBlog(t, ref("known-1", testkit.Author.ID))
	app.Do(t, http.MethodGet, "/id/"+withAuthor, "", nil).Want(t, 200, "success")
	// And one that already has a profile: never asked about, never changed.
	had := app.InsertReferenceBlog(t, ref("had-1", bob))
	hadID, _ := bson.ObjectIDFromHex(had)
	if _, err := app.Store.Collection().UpdateOne(context.Background(), bson.D{{Key: "_id", Value: hadID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "authorProfile", Value: model.AuthorProfile{Name: "Bob Before"}}}}}); err != nil {
		t.Fatal(err)
	}

	fake := &fakeProfiles{users: map[string]string{ada: "Ada", bob: "Bob", testkit.Author.ID: "Ada Renamed"}}
	log := &logTap{counts: map[string]int{}}
	recs := waitDone(t, runner(t, app, "migrations_profiles", fake, 3, log))
	if got := fake.calls.Load(); got != 4 {
		t.Errorf("auth asked %d times, want 4 (once per distinct author)", got)
	}
	if got := recs[migrations.AuthorProfileStep].Processed; got != 8 {
		t.Errorf("processed %d blogs, want 8", got)
	}
	if got := log.count(migrations.AuthorProfileStep, "migration batch"); got != 3 {
		t.Errorf("%d batches logged, want 3 (8 blogs, 3 a batch)", got)
	}
	want := map[string]string{ids[0]: "Ada", ids[1]: "Bob", ids[2]: "", ids[3]: "Ada", ids[4]: "Bob", ids[5]: "Ada", ids[6]: "", withAuthor: "Ada Renamed", had: "Bob Before"}
	for id, name := range want {
		if p := stored(t, app, id).AuthorProfile; p == nil || p.Name != name {
			t.Errorf("blog %s: authorProfile %+v, want name %q", id, p, name)
		}
	}
	// The cached view was dropped: the stored profile shows now.
	var b testkit.Blog
	app.Do(t, http.MethodGet, "/id/"+withAuthor, "", nil).Want(t, 200, "success").Decode(t, &b)
	if b.Author == nil || b.Author.Name != "Ada Renamed" {
		t.Errorf("public read after the backfill: author %+v, want the backfilled name", b.Author)
	}
	// A deleted author's blog reads with an empty name, without asking.
	app.Do(t, http.MethodGet, "/id/"+ids[2], "", nil).Want(t, 200, "success").Decode(t, &b)
	if b.Author == nil || b.Author.ID != gone || b.Author.Name != "" {
		t.Errorf("deleted author: %+v", b.Author)
	}

	// Idempotent: run from scratch (fresh records), nothing is left to do.
	again := &fakeProfiles{users: fake.users}
	recs = waitDone(t, runner(t, app, "migrations_profiles_again", again, 3, nil))
	if n := again.calls.Load(); n != 0 || recs[migrations.AuthorProfileStep].Processed != 0 {
		t.Errorf("second run asked auth %d times and processed %d blogs, want 0 and 0", n, recs[migrations.AuthorProfileStep].Processed)
	}
}

// The terms backfill gives every blog without terms its terms, so reference
// blogs become similar candidates, and drops the cached similar lists that
// missed them; it has nothing to do the second time.
func TestTermsBackfill(t *testing.T) {
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(t, env, redisDBs, nil)
	ids := app.InsertReferenceBlogs(t,
		testkit.RefBlog{Title: "Quantum Gardening Basics", Description: "Start a garden", Slug: "t-basics", Author: ada, Published: true},
		testkit.RefBlog{Title: "Quantum Gardening Tools", Description: "Shovels", Slug: "t-tools", Author: ada, Published: true},
		testkit.RefBlog{Title: "Gardening drafts", Description: "Not published", Slug: "t-draft", Author: ada},
		testkit.RefBlog{Title: "Deleted quantum garden", Description: "Deleted", Slug: "t-deleted", Author: ada, Published: true, Deleted: true},
		testkit.RefBlog{Title: "Rocket science", Description: "Nothing shared", Slug: "t-rocket", Author: ada, Published: true},
	)
	similar := func() []string {
		return testkit.IDs(t, app.Do(t, http.MethodGet, "/list/similar/id/"+ids[0], "", nil).Want(t, 200, "success"))
	}
	if got := similar(); len(got) != 0 { // cached: no candidate has terms yet
		t.Fatalf("similar before the backfill = %v, want []", got)
	}
	log := &logTap{counts: map[string]int{}}
	recs := waitDone(t, runner(t, app, "migrations_terms", &fakeProfiles{}, 2, log))
	if got := recs[migrations.TermsStep].Processed; got != 5 {
		t.Errorf("processed %d blogs, want 5", got)
	}
	if got := log.count(migrations.TermsStep, "migration batch"); got != 3 {
		t.Errorf("%d batches logged, want 3 (5 blogs, 2 a batch)", got)
	}
	for _, id := range ids {
		b := stored(t, app, id)
		want := model.Blog{Title: b.Title, Description: b.Description}
		want.SetTerms()
		if !slices.Equal(b.Terms, want.Terms) || !slices.Equal(b.TitleTerms, want.TitleTerms) ||
			!slices.Equal(b.DescriptionTerms, want.DescriptionTerms) || b.Terms == nil {
			t.Errorf("blog %q: terms %v / %v / %v, want %v / %v / %v", b.Title, b.Terms, b.TitleTerms, b.DescriptionTerms,
				want.Terms, want.TitleTerms, want.DescriptionTerms)
		}
	}
	if got := similar(); !slices.Equal(got, []string{ids[1]}) {
		t.Errorf("similar after the backfill = %v, want [%s]", got, ids[1])
	}
	recs = waitDone(t, runner(t, app, "migrations_terms_again", &fakeProfiles{}, 2, nil))
	if got := recs[migrations.TermsStep].Processed; got != 0 {
		t.Errorf("second run processed %d blogs, want 0", got)
	}
}

// An interrupted backfill (shutdown mid-way) resumes after the last batch
// it finished; one that auth_service fails is tried again and also resumes.
func TestAuthorProfileBackfillResumes(t *testing.T) {
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(t, env, redisDBs, nil)
	authors := []string{
		"66a0c6b2f1e4d3c2b1a0b001", "66a0c6b2f1e4d3c2b1a0b002", "66a0c6b2f1e4d3c2b1a0b003",
		"66a0c6b2f1e4d3c2b1a0b004", "66a0c6b2f1e4d3c2b1a0b005", "66a0c6b2f1e4d3c2b1a0b006",
	}
	users := map[string]string{}
	var blogs []testkit.RefBlog
	for i, a := range authors {
		users[a] = "Author " + a[20:]
		blogs = append(blogs, testkit.RefBlog{Title: "Resume " + a, Description: "d", Slug: "resume-" + a, Author: a, Published: i%2 == 0})
	}
	ids := app.InsertReferenceBlogs(t, blogs...)

	// First run: the third look-up (first of the second batch) blocks until
	// the runner is closed, as at a shutdown.
	blocked := make(chan struct{})
	first := &fakeProfiles{users: users, hook: func(ctx context.Context, n int32) error {
		if n == 3 {
			close(blocked)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	r := runner(t, app, "migrations_resume", first, 2, nil)
	select {
	case <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the backfill never reached its second batch")
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	filled := 0
	for _, id := range ids {
		if stored(t, app, id).AuthorProfile != nil {
			filled++
		}
	}
	if filled != 2 {
		t.Fatalf("%d blogs filled before the interruption, want 2 (the first batch)", filled)
	}

	// Second run on the same records: auth fails twice (it is tried again
	// after the retry delay), then it finishes the remaining four authors
	// without asking about the first batch again.
	second := &fakeProfiles{users: users}
	second.hook = func(_ context.Context, n int32) error {
		if n <= 2 {
			return errors.New("auth unreachable")
		}
		return nil
	}
	recs := waitDone(t, runner(t, app, "migrations_resume", second, 2, nil))
	if got := second.calls.Load(); got != 6 { // 2 failed + 4 authors
		t.Errorf("second run asked auth %d times, want 6 (two failures, then the four authors left)", got)
	}
	if rec := recs[migrations.AuthorProfileStep]; rec.Processed != 6 || rec.Attempts != 4 {
		t.Errorf("record %+v: want 6 processed over 4 attempts (interrupted, failed twice, done)", rec)
	}
	for i, id := range ids {
		if p := stored(t, app, id).AuthorProfile; p == nil || p.Name != users[authors[i]] {
			t.Errorf("blog %d: authorProfile %+v, want %q", i, p, users[authors[i]])
		}
	}
}
