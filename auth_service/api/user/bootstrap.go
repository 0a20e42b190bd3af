package user

import (
	"context"
	"errors"
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

// ErrNotAdmin: an account with the bootstrap admin's email exists but does
// not hold the admin role, so the bootstrap leaves it alone.
var ErrNotAdmin = errors.New("existing account does not hold the admin role")

// EnsureUser makes sure the bootstrap admin with email exists and holds
// roleIDs. A new user gets name and the hash from hashPassword (called only
// then, since hashing is slow). An existing user keeps its password, name and
// status and gains missing roles only when it already holds adminRoleID:
// anyone may sign up with the configured email before the first start, and
// handing every role to that account would make them an administrator. Such
// an account is reported as ErrNotAdmin and not changed.
func (s *Service) EnsureUser(ctx context.Context, email, name string, hashPassword func() (string, error), roleIDs []bson.ObjectID, adminRoleID bson.ObjectID) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var existing model.User
	err := s.users.FindOne(qctx, bson.M{"email": email}).Decode(&existing)
	switch {
	case err == nil:
		return s.repairAdminRoles(ctx, email, roleIDs, adminRoleID)
	case !mongox.IsNotFound(err):
		return fmt.Errorf("find user: %w", err)
	}
	hash, err := hashPassword()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	// An insert, never an upsert keyed on email: an upsert racing a sign-up
	// with this email would add the roles to the signed-up account.
	admin := model.User{Name: name, Email: email, Password: hash, Roles: roleIDs, Verified: false, Status: true, CreatedAt: now, UpdatedAt: now}
	if _, err := s.users.InsertOne(qctx, admin); err != nil {
		if !mongox.IsDuplicateKey(err) {
			return fmt.Errorf("insert user: %w", err)
		}
		// Another replica's bootstrap, or a sign-up, inserted it first.
		return s.repairAdminRoles(ctx, email, roleIDs, adminRoleID)
	}
	return nil
}

// repairAdminRoles adds the missing roles to the account with email only if
// it holds adminRoleID; the condition is part of the update, so no sign-up
// can slip in between a check and the write.
func (s *Service) repairAdminRoles(ctx context.Context, email string, roleIDs []bson.ObjectID, adminRoleID bson.ObjectID) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.users.UpdateOne(qctx, bson.M{"email": email, "roles": adminRoleID},
		bson.M{"$addToSet": bson.M{"roles": bson.M{"$each": roleIDs}}})
	if err != nil {
		return fmt.Errorf("ensure user roles: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotAdmin
	}
	var u model.User
	if err := s.users.FindOne(qctx, bson.M{"email": email}).Decode(&u); err == nil {
		s.Forget(ctx, u.ID.Hex())
	}
	return nil
}
