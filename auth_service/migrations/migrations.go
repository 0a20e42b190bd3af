// Package migrations lists auth_service's start-up migrations and runs them
// with the chassis runner (blogplatform/chassis/migrate) before the service
// ensures its indexes and serves.
package migrations

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/migrate"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/runtime"
)

// Step names, recorded in the migrations collection: never rename one.
const (
	StepIndexes = "auth-0001-indexes"
)

// legacyRolesIndex is the name earlier versions of this service gave the
// unique roles index on {code:1}: one options builder was shared with the
// users email index, and the driver names an index through its builder.
const legacyRolesIndex = "email_1"

// Steps are auth_service's migrations, in order. indexes are the service's
// indexes (the same list it ensures on every start).
func Steps(db *mongo.Database, indexes []mongox.Index) []migrate.Step {
	return []migrate.Step{{
		Name: StepIndexes,
		// Index reconciliation. A database from the reference already has
		// every index under the names ours use and is left as it is. One
		// from an earlier version of this service has the unique roles
		// index named email_1: it is renamed to code_1 (the reference's and
		// a fresh database's name), so that operators, the reference's own
		// index creation (if it still runs during the switch) and later
		// migrations all see one name. Then every index is ensured.
		Run: func(ctx context.Context, p *migrate.Progress) error {
			if err := renameLegacyRolesIndex(ctx, db, p); err != nil {
				return err
			}
			skipped, err := mongox.EnsureIndexes(ctx, db, p.Log(), indexes)
			if err != nil {
				return err
			}
			return p.Save(ctx, bson.D{{Key: "skippedOptionalIndexes", Value: skipped}}, len(indexes))
		},
	}}
}

// Run runs the migrations: this replica runs the pending ones, or waits for
// the replica that does. The runner stops with the service.
func Run(ctx context.Context, rt *runtime.Runtime, indexes []mongox.Index) error {
	r, err := migrate.New(rt.DB.Database, Steps(rt.DB.Database, indexes), migrate.Options{Logger: rt.Log})
	if err != nil {
		return err
	}
	if err := r.Run(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	rt.OnClose(r.Close)
	return nil
}

// renameLegacyRolesIndex replaces roles index email_1 on {code:1} unique by
// the same index named code_1. The unique constraint is missing between the
// drop and the create (one round trip): roles are only written by the
// start-up bootstrap, which inserts the four codes at most once each.
func renameLegacyRolesIndex(ctx context.Context, db *mongo.Database, p *migrate.Progress) error {
	roles := db.Collection("roles")
	cur, err := roles.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("list roles indexes: %w", err)
	}
	var specs []struct {
		Name   string `bson:"name"`
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return fmt.Errorf("list roles indexes: %w", err)
	}
	for _, s := range specs {
		if s.Name != legacyRolesIndex {
			continue
		}
		if len(s.Key) != 1 || s.Key[0].Key != "code" || !s.Unique {
			// Not ours: someone else's index under that name; leave it.
			p.Log().Warn("roles index email_1 is not the legacy unique code index; left as it is", "key", fmt.Sprint(s.Key), "unique", s.Unique)
			return nil
		}
		if err := roles.Indexes().DropOne(ctx, legacyRolesIndex); err != nil {
			return fmt.Errorf("drop roles index %s: %w", legacyRolesIndex, err)
		}
		if _, err := roles.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "code", Value: 1}}, Options: options.Index().SetUnique(true).SetName("code_1"),
		}); err != nil {
			return fmt.Errorf("create roles index code_1 (replacing %s): %w", legacyRolesIndex, err)
		}
		p.Log().Info("renamed the roles index email_1 on {code:1} to code_1")
		return nil
	}
	return nil
}
