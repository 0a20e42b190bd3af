package testkit

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/blog_service/model"
	"blogplatform/devkit/testinfra"
)

// RefBlog describes a blog as the reference's blog_service writes it.
type RefBlog struct {
	Title, Description, Slug string
	Author                   string // user id (hex)
	Published                bool
	Deleted                  bool
}

// InsertReferenceBlog stores b in the app's blogs collection in the
// reference's document shape: the reference's fields only (no
// authorProfile, no terms, titleTerms or descriptionTerms, nothing else this
// platform adds), and "text"/"publishedAt" only once published. It returns
// the blog's id (hex).
func (a *App) InsertReferenceBlog(t testing.TB, b RefBlog) string {
	t.Helper()
	return a.InsertReferenceBlogs(t, b)[0]
}

// InsertReferenceBlogs stores several reference-shaped blogs in one insert.
func (a *App) InsertReferenceBlogs(t testing.TB, blogs ...RefBlog) []string {
	t.Helper()
	return InsertReferenceBlogs(t, a.Store.Collection(), blogs...)
}

// InsertReferenceBlogs stores reference-shaped blogs into coll and returns
// their ids (hex).
func InsertReferenceBlogs(t testing.TB, coll *mongo.Collection, blogs ...RefBlog) []string {
	t.Helper()
	docs := make([]any, len(blogs))
	ids := make([]string, len(blogs))
	for i, b := range blogs {
		doc, id := referenceBlogDoc(t, b)
		docs[i], ids[i] = doc, id.Hex()
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatalf("insert reference blogs: %v", err)
	}
	return ids
}

// ReferenceDatabase creates a fresh blog database on env holding blogs in
// the reference's shape, as the reference leaves it, before any
// blog_service of this platform has started on it. It returns the database
// name (for Settings{"DB_NAME": ...}) and the blogs' ids.
func ReferenceDatabase(t testing.TB, env *testinfra.Env, blogs ...RefBlog) (string, []string) {
	t.Helper()
	name := env.UniqueDBName("blogref")
	client, err := mongo.Connect(options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	return name, InsertReferenceBlogs(t, client.Database(name).Collection(model.CollectionName), blogs...)
}

func referenceBlogDoc(t testing.TB, b RefBlog) (bson.D, bson.ObjectID) {
	author, err := bson.ObjectIDFromHex(b.Author)
	if err != nil {
		t.Fatalf("reference blog author %q: %v", b.Author, err)
	}
	id := bson.NewObjectID()
	now := time.Now().UTC().Truncate(time.Millisecond)
	doc := bson.D{
		{Key: "_id", Value: id},
		{Key: "title", Value: b.Title},
		{Key: "description", Value: b.Description},
	}
	if b.Published {
		doc = append(doc, bson.E{Key: "text", Value: "published text of " + b.Title})
	}
	doc = append(doc,
		bson.E{Key: "draftText", Value: "draft of " + b.Title},
		bson.E{Key: "tags", Value: bson.A{"SCIENCE"}},
		bson.E{Key: "author", Value: author},
		bson.E{Key: "imgUrl", Value: "https://x.io/ref.png"},
		bson.E{Key: "slug", Value: b.Slug},
		bson.E{Key: "score", Value: 0.01},
		bson.E{Key: "submitted", Value: false},
		bson.E{Key: "drafted", Value: !b.Published},
		bson.E{Key: "published", Value: b.Published},
		bson.E{Key: "status", Value: !b.Deleted},
	)
	if b.Published {
		doc = append(doc, bson.E{Key: "publishedAt", Value: now})
	}
	doc = append(doc,
		bson.E{Key: "createdBy", Value: author},
		bson.E{Key: "updatedBy", Value: author},
		bson.E{Key: "createdAt", Value: now},
		bson.E{Key: "updatedAt", Value: now},
	)
	return doc, id
}
