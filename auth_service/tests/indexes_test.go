package tests

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func indexNames(t *testing.T, db *mongo.Database, coll string) []string {
	t.Helper()
	cur, err := db.Collection(coll).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	return names
}

// TestIndexNames: each unique index is named after its own keys (the
// reference's names), not after another collection's index.
func TestIndexNames(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.replica(nil)
	db := s.db()
	if names := indexNames(t, db, "roles"); !slices.Contains(names, "code_1") || slices.Contains(names, "email_1") {
		t.Errorf("roles indexes %v, want code_1 and no email_1", names)
	}
	if names := indexNames(t, db, "users"); !slices.Contains(names, "email_1") {
		t.Errorf("users indexes %v, want email_1", names)
	}
}

// TestStartsOnIndexesNamedOtherwise: a database whose unique indexes exist
// under other names (the roles index an earlier version of this service
// named email_1) is used; sign-up and sign-in work on it.
func TestStartsOnIndexesNamedOtherwise(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	db := s.db()
	ctx := context.Background()
	for coll, keys := range map[string]bson.D{"roles": {{Key: "code", Value: 1}}, "users": {{Key: "email", Value: 1}}} {
		model := mongo.IndexModel{Keys: keys, Options: options.Index().SetUnique(true).SetName("email_1")}
		if coll == "users" {
			model.Options = options.Index().SetUnique(true).SetName("users_email_unique")
		}
		if _, err := db.Collection(coll).Indexes().CreateOne(ctx, model); err != nil {
			t.Fatal(err)
		}
	}
	r := s.replica(nil)
	u := r.signUp()
	if res := r.do("GET", "/profile/mine", "", "Authorization", u.bearer()); res.status != 200 {
		t.Fatalf("profile on a database with other index names: %d %s", res.status, res.message())
	}
	// The start-up migration renames the roles index of earlier versions
	// (email_1) to code_1; an operator's own name (users) is kept.
	if names := indexNames(t, db, "roles"); !slices.Contains(names, "code_1") || slices.Contains(names, "email_1") {
		t.Errorf("roles indexes %v, want code_1 (renamed from email_1) and no email_1", names)
	}
	if names := indexNames(t, db, "users"); !slices.Contains(names, "users_email_unique") || slices.Contains(names, "email_1") {
		t.Errorf("users indexes %v, want users_email_unique kept and no second unique index", names)
	}
}
