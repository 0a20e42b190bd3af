package mongox_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
	"blogplatform/devkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

func connect(t *testing.T, e *testinfra.Env, db string) *mongox.DB {
	t.Helper()
	d, err := mongox.Connect(mongox.Options{
		Host: e.Store.Host(), Port: e.Store.Port(), Name: db, MinPool: 1, MaxPool: 4,
		QueryTimeout: 5 * time.Second, ServerSelectionTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func TestURI(t *testing.T) {
	tests := []struct {
		o    mongox.Options
		want string
	}{
		{mongox.Options{Host: "mongo", Port: 27017, Name: "auth-dev-db"}, "mongodb://mongo:27017/auth-dev-db"},
		{mongox.Options{Host: "mongo", Port: 27017, Name: "auth-dev-db", User: "auth-dev-db-user", Password: "p@ss:word"},
			"mongodb://auth-dev-db-user:p%40ss%3Aword@mongo:27017/auth-dev-db"},
	}
	for _, tt := range tests {
		if got := tt.o.HostURI(); got != tt.want {
			t.Errorf("HostURI = %s, want %s", got, tt.want)
		}
	}
}

func TestIndexesAndDuplicates(t *testing.T) {
	d := connect(t, env, env.UniqueDBName("mongox"))
	ctx := context.Background()
	if err := d.WaitReady(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	skipped, err := mongox.EnsureIndexes(ctx, d.Database, slog.New(slog.DiscardHandler), []mongox.Index{
		{Collection: "blogs", Model: mongo.IndexModel{Keys: bson.D{{Key: "slug", Value: 1}}, Options: options.Index().SetUnique(true)}},
		{Collection: "blogs", Optional: true, Model: mongo.IndexModel{Keys: bson.D{{Key: "title", Value: "text"}}}},
	})
	if err != nil {
		t.Fatalf("required index: %v", err)
	}
	// The embedded store has no text indexes; the optional one is reported.
	if len(skipped) != 1 {
		t.Fatalf("skipped %v, want the text index only", skipped)
	}
	blogs := d.Database.Collection("blogs")
	if _, err := blogs.InsertOne(ctx, bson.M{"slug": "a-slug"}); err != nil {
		t.Fatal(err)
	}
	_, err = blogs.InsertOne(ctx, bson.M{"slug": "a-slug"})
	if !mongox.IsDuplicateKey(err) {
		t.Fatalf("insert duplicate not recognised: %v", err)
	}
	res, err := blogs.InsertOne(ctx, bson.M{"slug": "b-slug"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = blogs.UpdateOne(ctx, bson.M{"_id": res.InsertedID}, bson.M{"$set": bson.M{"slug": "a-slug"}})
	if !mongox.IsDuplicateKey(err) {
		t.Fatalf("update duplicate not recognised: %v", err)
	}
	if mongox.IsUnavailable(err) {
		t.Fatal("a duplicate is not an outage")
	}
}

func TestUnreachableStoreIsUnavailableQuickly(t *testing.T) {
	private := testinfra.NewEnv(t)
	d := connect(t, private, "outage")
	ctx := context.Background()
	if err := d.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := private.Store.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := d.Database.Collection("x").FindOne(ctx, bson.M{"a": 1}).Err()
	if !mongox.IsUnavailable(err) {
		t.Fatalf("store down: %v not classified as unavailable", err)
	}
	if mongox.IsNotFound(err) {
		t.Fatal("an outage must not look like not-found")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("took %s: server selection timeout not applied", elapsed)
	}
}

// An index on the same keys under another name (another version's, or the
// reference's own names) is kept when its options are equivalent; with other
// options the start fails with an error that names the index to drop.
func TestEnsureIndexesAcceptsAnEquivalentIndexUnderAnotherName(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	code := bson.D{{Key: "code", Value: 1}}
	tests := []struct {
		name     string
		existing mongo.IndexModel
		wantErr  []string // fragments of the error; nil: accepted
	}{
		{"SameOptions", mongo.IndexModel{Keys: code, Options: options.Index().SetUnique(true).SetName("email_1")}, nil},
		{"SameOptionsDoubleDirection", mongo.IndexModel{Keys: bson.D{{Key: "code", Value: 1.0}}, Options: options.Index().SetUnique(true).SetName("legacy")}, nil},
		{"NotUnique", mongo.IndexModel{Keys: code, Options: options.Index().SetName("code_legacy")},
			[]string{`"code_legacy"`, "unique: false, want true", `dropIndex("code_legacy")`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := connect(t, env, env.UniqueDBName("mongox"))
			if err := d.WaitReady(ctx, log); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Database.Collection("roles").Indexes().CreateOne(ctx, tc.existing); err != nil {
				t.Fatal(err)
			}
			_, err := mongox.EnsureIndexes(ctx, d.Database, log, []mongox.Index{
				{Collection: "roles", Model: mongo.IndexModel{Keys: code, Options: options.Index().SetUnique(true)}},
			})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted an index with other options")
			}
			for _, f := range tc.wantErr {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q lacks %q", err, f)
				}
			}
		})
	}
}
