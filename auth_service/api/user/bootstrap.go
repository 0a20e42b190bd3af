package user

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/mongox"
)

// EnsureRoles creates the roles that are missing (active) and returns every
// one of codes as stored. Upserts keyed on code make it idempotent; when two
// replicas insert at once the unique index refuses one, which counts as done.
func (s *Service) EnsureRoles(ctx context.Context, codes []string) ([]model.Role, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	now := time.Now().UTC()
	roles := make([]model.Role, 0, len(codes))
	for _, code := range codes {
		_, err := s.roles.UpdateOne(qctx, bson.M{"code": code},
			bson.M{"$setOnInsert": bson.M{"status": true, "createdAt": now, "updatedAt": now}},
			options.UpdateOne().SetUpsert(true))
		if err != nil && !mongox.IsDuplicateKey(err) {
			return nil, fmt.Errorf("ensure role %s: %w", code, err)
		}
		var r model.Role
		if err := s.roles.FindOne(qctx, bson.M{"code": code}).Decode(&r); err != nil {
			return nil, fmt.Errorf("read role %s: %w", code, err)
		}
		roles = append(roles, r)
	}
	return roles, nil
}

// EnsureUser makes sure a user with email exists and holds roleIDs. A new
// user gets name and the hash from hashPassword (called only then, since
// hashing is slow); an existing user keeps its password, name and status and
// only gains missing roles.
func (s *Service) EnsureUser(ctx context.Context, email, name string, hashPassword func() (string, error), roleIDs []bson.ObjectID) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	addRoles := bson.M{"$addToSet": bson.M{"roles": bson.M{"$each": roleIDs}}}
	var existing model.User
	err := s.users.FindOne(qctx, bson.M{"email": email}).Decode(&existing)
	switch {
	case err == nil:
		if _, err := s.users.UpdateOne(qctx, bson.M{"email": email}, addRoles); err != nil {
			return fmt.Errorf("ensure user roles: %w", err)
		}
		s.Forget(ctx, existing.ID.Hex())
		return nil
	case !mongox.IsNotFound(err):
		return fmt.Errorf("find user: %w", err)
	}
	hash, err := hashPassword()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	upsert := bson.M{
		"$setOnInsert": bson.M{"name": name, "password": hash, "verified": false, "status": true, "createdAt": now, "updatedAt": now},
		"$addToSet":    bson.M{"roles": bson.M{"$each": roleIDs}},
	}
	if _, err := s.users.UpdateOne(qctx, bson.M{"email": email}, upsert, options.UpdateOne().SetUpsert(true)); err != nil {
		if !mongox.IsDuplicateKey(err) {
			return fmt.Errorf("insert user: %w", err)
		}
		// Another replica inserted it first: just make sure of the roles.
		if _, err := s.users.UpdateOne(qctx, bson.M{"email": email}, addRoles); err != nil {
			return fmt.Errorf("ensure user roles: %w", err)
		}
	}
	return nil
}
