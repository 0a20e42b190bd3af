package blogrepo_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/blogrepo"
	"blogplatform/blog_service/internal/testkit"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/devkit/testinfra"
)

var (
	env      *testinfra.Env
	redisDBs = testkit.NewRedisDBs()
)

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

func newRepo(t *testing.T) (*blogrepo.Repository, *testkit.App) {
	t.Helper()
	app := testkit.NewApp(t, env, redisDBs, nil)
	return blogrepo.New(app.Store, app.Cache), app
}

func create(t *testing.T, repo *blogrepo.Repository, slug string) *model.Blog {
	t.Helper()
	b := model.NewBlog(bson.NewObjectID(), &model.AuthorProfile{Name: "Ada"}, model.Draft{
		Title: "Versioned writes", Description: "optimistic concurrency", DraftText: "body", Slug: slug,
		ImgURL: "https://x.io/a.png", Tags: []string{"GO"},
	})
	if err := repo.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func stored(t *testing.T, app *testkit.App, id bson.ObjectID) *model.Blog {
	t.Helper()
	b, err := app.Store.FindByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// competingWrite changes the stored blog behind the repository's back, as
// another replica's write would.
func competingWrite(t *testing.T, app *testkit.App, id bson.ObjectID, title string) {
	t.Helper()
	cur := stored(t, app, id)
	next := cur.Clone()
	next.Title = title
	if ok, err := app.Store.Save(context.Background(), cur, next); err != nil || !ok {
		t.Fatalf("competing write: saved %v, %v", ok, err)
	}
}

// TestUpdateRetriesOnVersionConflict: a write that lands between the read
// and the write of an update makes the update read again and apply its
// change to the new state; neither write is lost.
func TestUpdateRetriesOnVersionConflict(t *testing.T) {
	repo, app := newRepo(t)
	b := create(t, repo, "retry-on-conflict")
	calls := 0
	after, err := repo.Update(context.Background(), b.ID, func(b *model.Blog) error {
		calls++
		if calls == 1 {
			competingWrite(t, app, b.ID, "Title from another replica")
		}
		return b.Submit(b.Author)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := stored(t, app, b.ID)
	if calls != 2 || !got.Submitted || got.Title != "Title from another replica" || got.Version != 3 || after.Version != 3 {
		t.Errorf("calls %d; stored submitted %v title %q version %d; returned version %d", calls, got.Submitted, got.Title, got.Version, after.Version)
	}
}

// TestUpdateGivesUpWithConflict: a blog that changes under every attempt is
// a 409 after MaxAttempts, and the update's own change is not written.
func TestUpdateGivesUpWithConflict(t *testing.T) {
	repo, app := newRepo(t)
	b := create(t, repo, "always-conflicting")
	calls := 0
	_, err := repo.Update(context.Background(), b.ID, func(b *model.Blog) error {
		calls++
		competingWrite(t, app, b.ID, "Moving target")
		return b.Submit(b.Author)
	})
	var e *apperr.Error
	if !errors.As(err, &e) || e.Status() != http.StatusConflict ||
		e.Message != "blog for _id "+b.ID.Hex()+" kept changing during the update; try again" {
		t.Fatalf("err = %v, want the 409", err)
	}
	if got := stored(t, app, b.ID); calls != blogrepo.MaxAttempts || got.Submitted {
		t.Errorf("calls %d, submitted %v", calls, got.Submitted)
	}
}

// TestUpdateOfReferenceBlogs: a blog the reference wrote has no version
// field (and may carry fields this service does not know); it updates as
// version 0, gets version 1, and keeps the unknown fields. A blog stored
// with an explicit version 0 updates the same way.
func TestUpdateOfReferenceBlogs(t *testing.T) {
	repo, app := newRepo(t)
	ctx := context.Background()
	author := bson.NewObjectID()
	now := model.Now()
	reference := bson.NewObjectID()
	_, err := app.Store.Collection().InsertOne(ctx, bson.D{
		{Key: "_id", Value: reference}, {Key: "title", Value: "Written by the reference"},
		{Key: "description", Value: "no version"}, {Key: "draftText", Value: "draft"}, {Key: "tags", Value: bson.A{"OLD"}},
		{Key: "author", Value: author}, {Key: "slug", Value: "reference-blog"}, {Key: "score", Value: 0.01},
		{Key: "submitted", Value: true}, {Key: "drafted", Value: true}, {Key: "published", Value: false}, {Key: "status", Value: true},
		{Key: "createdBy", Value: author}, {Key: "updatedBy", Value: author}, {Key: "createdAt", Value: now}, {Key: "updatedAt", Value: now},
		{Key: "__v", Value: int32(0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	explicit := model.NewBlog(author, nil, model.Draft{Title: "Explicit zero", Description: "seeded", Slug: "explicit-zero"})
	explicit.Version = 0
	explicit.Submitted = true
	if _, err := app.Store.Collection().InsertOne(ctx, explicit); err != nil {
		t.Fatal(err)
	}
	for _, id := range []bson.ObjectID{reference, explicit.ID} {
		if _, err := repo.Update(ctx, id, func(b *model.Blog) error { return b.Publish(bson.NewObjectID(), nil) }); err != nil {
			t.Fatalf("publish %s: %v", id.Hex(), err)
		}
		got := stored(t, app, id)
		if !got.Published || got.Text == nil || got.Version != 1 {
			t.Errorf("%s: published %v text %v version %d", id.Hex(), got.Published, got.Text, got.Version)
		}
	}
	var raw bson.M
	if err := app.Store.Collection().FindOne(ctx, bson.D{{Key: "_id", Value: reference}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if _, kept := raw["__v"]; !kept || raw["title"] != "Written by the reference" {
		t.Errorf("the update dropped or changed fields it does not own: %v", raw)
	}
}

// TestUpdateRefusedWritesNothing: an error from the change is returned as
// is, and neither the blog nor its version moves; a missing blog is
// model.ErrNotFound.
func TestUpdateRefusedWritesNothing(t *testing.T) {
	repo, app := newRepo(t)
	b := create(t, repo, "refused-change")
	_, err := repo.Update(context.Background(), b.ID, func(b *model.Blog) error { return b.Unpublish(bson.NewObjectID()) })
	if want := "blog for _id " + b.ID.Hex() + " is not published"; apperr.From(err).Message != want || apperr.From(err).Status() != 400 {
		t.Errorf("err = %v, want 400 %q", err, want)
	}
	if got := stored(t, app, b.ID); got.Version != b.Version || !got.UpdatedAt.Equal(b.UpdatedAt) || !got.Drafted {
		t.Errorf("a refused change wrote: %+v", got)
	}
	if _, err := repo.Update(context.Background(), bson.NewObjectID(), func(*model.Blog) error { return nil }); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("missing blog: %v", err)
	}
}

// TestUpdateInvalidatesTheCache: the blog's keys under its id and under
// both the slug it had and the slug it has are gone when Update returns.
func TestUpdateInvalidatesTheCache(t *testing.T) {
	repo, app := newRepo(t)
	ctx := context.Background()
	b := create(t, repo, "cached-old-slug")
	keys := []string{blogcache.BlogKey(b.ID.Hex()), blogcache.SlugKey("cached-old-slug"), blogcache.SlugKey("cached-new-slug")}
	for _, k := range keys {
		if err := app.Redis.Set(ctx, k, `{"_id":"`+b.ID.Hex()+`"}`, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	slug := "cached-new-slug"
	if _, err := repo.Update(ctx, b.ID, func(b *model.Blog) error {
		return b.Edit(b.Author, model.Changes{Slug: &slug}, false)
	}); err != nil {
		t.Fatal(err)
	}
	if n := app.Redis.Exists(ctx, keys...).Val(); n != 0 {
		t.Errorf("%d of the blog's cache keys survived the update", n)
	}
}
