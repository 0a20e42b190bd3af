package migrations_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	apikeystore "blogplatform/auth_service/api/apikey/store"
	keystorestore "blogplatform/auth_service/api/keystore/store"
	userstore "blogplatform/auth_service/api/user/store"
	"blogplatform/auth_service/migrations"
	"blogplatform/chassis/migrate"
	"blogplatform/chassis/mongox"
	"blogplatform/devkit/refdata"
	"blogplatform/devkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

func indexes() []mongox.Index {
	ix := append(userstore.Indexes(), keystorestore.Indexes(time.Hour)...)
	return append(ix, apikeystore.Indexes()...)
}

type spec struct {
	Key    bson.D `bson:"key"`
	Unique bool   `bson:"unique"`
}

func listIndexes(t *testing.T, db *mongo.Database, coll string) map[string]spec {
	t.Helper()
	cur, err := db.Collection(coll).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name   string `bson:"name"`
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	out := map[string]spec{}
	for _, s := range specs {
		out[s.Name] = spec{Key: s.Key, Unique: s.Unique}
	}
	return out
}

// startOnce does what auth_service's start-up does with indexes: the
// migrations, then ensuring every index.
func startOnce(t *testing.T, db *mongo.Database) *migrate.Runner {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	r, err := migrate.New(db, migrations.Steps(db, indexes()), migrate.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mongox.EnsureIndexes(ctx, db, log, indexes()); err != nil {
		t.Fatal(err)
	}
	return r
}

// The unique roles index ends up as code_1 on {code:1} whatever the
// database held: nothing (fresh), the reference's indexes, or the email_1
// name this service's earlier versions gave it. Its uniqueness holds after,
// and a second start changes nothing.
func TestIndexReconciliation(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, db *mongo.Database)
	}{
		{"fresh database", func(*testing.T, *mongo.Database) {}},
		{"reference database", func(t *testing.T, db *mongo.Database) {
			if _, err := refdata.SeedAuth(context.Background(), db, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"earlier version's database", func(t *testing.T, db *mongo.Database) {
			ctx := context.Background()
			legacy := []refdata.Index{
				{Collection: "users", Name: "email_1", Keys: bson.D{{Key: "email", Value: 1}}, Unique: true},
				{Collection: "roles", Name: "email_1", Keys: bson.D{{Key: "code", Value: 1}}, Unique: true},
				{Collection: "roles", Name: "code_1_status_1", Keys: bson.D{{Key: "code", Value: 1}, {Key: "status", Value: 1}}},
			}
			if _, err := refdata.CreateIndexes(ctx, db, legacy); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Collection("roles").InsertOne(ctx, bson.D{{Key: "code", Value: "LEARNER"}, {Key: "status", Value: true}}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := client(t).Database(env.UniqueDBName("auth-mig"))
			tt.prepare(t, db)
			first := startOnce(t, db)

			roles := listIndexes(t, db, "roles")
			if _, ok := roles["email_1"]; ok {
				t.Errorf("roles still has email_1: %v", roles)
			}
			if s, ok := roles["code_1"]; !ok || !s.Unique || len(s.Key) != 1 || s.Key[0].Key != "code" {
				t.Errorf("roles code_1 = %+v (present %v), want unique on {code:1}", s, ok)
			}
			if s, ok := listIndexes(t, db, "users")["email_1"]; !ok || !s.Unique {
				t.Errorf("users email_1 = %+v (present %v), want unique", s, ok)
			}
			for i := 0; i < 2; i++ {
				_, err := db.Collection("roles").InsertOne(ctx, bson.D{{Key: "code", Value: "EDITOR"}, {Key: "status", Value: true}})
				if i == 1 && !mongox.IsDuplicateKey(err) {
					t.Fatalf("second EDITOR role: %v, want a duplicate key error", err)
				}
			}
			recs, err := first.Records(ctx)
			if err != nil || len(recs) != 1 || recs[0].Name != migrations.StepIndexes || recs[0].State != migrate.StateDone {
				t.Fatalf("records %+v (%v), want %s done", recs, err, migrations.StepIndexes)
			}

			startOnce(t, db)
			again, _ := first.Records(ctx)
			if len(again) != 1 || !again[0].UpdatedAt.Equal(recs[0].UpdatedAt) || again[0].Attempts != 1 {
				t.Fatalf("second start changed the record: %+v -> %+v", recs[0], again)
			}
		})
	}
}

func client(t *testing.T) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}
