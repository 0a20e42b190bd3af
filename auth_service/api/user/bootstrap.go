package user

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/user/model"
)

// EnsureRoles creates the roles that are missing (active) and returns every
// one of codes as stored. It is idempotent and safe on several replicas at
// once (see Storer.EnsureRole).
func (s *Service) EnsureRoles(ctx context.Context, codes []string) ([]model.Role, error) {
	now := time.Now().UTC()
	roles := make([]model.Role, 0, len(codes))
	for _, code := range codes {
		r, err := s.store.EnsureRole(ctx, code, now)
		if err != nil {
			return nil, err
		}
		roles = append(roles, *r)
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
	switch _, err := s.store.ByEmail(ctx, email); {
	case err == nil:
		return s.repairAdminRoles(ctx, email, roleIDs, adminRoleID)
	case !errors.Is(err, model.ErrNotFound):
		return err
	}
	hash, err := hashPassword()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	// An insert, never an upsert keyed on email: an upsert racing a sign-up
	// with this email would add the roles to the signed-up account.
	admin := model.User{Name: name, Email: email, Password: hash, Roles: roleIDs, Verified: false, Status: true, CreatedAt: now, UpdatedAt: now}
	if err := s.store.Insert(ctx, &admin); err != nil {
		if !errors.Is(err, model.ErrDuplicateEmail) {
			return err
		}
		// Another replica's bootstrap, or a sign-up, inserted it first.
		return s.repairAdminRoles(ctx, email, roleIDs, adminRoleID)
	}
	return nil
}

// repairAdminRoles adds the missing roles to the account with email only if
// it holds adminRoleID, in one conditional write, so no sign-up can slip in
// between a check and the write.
func (s *Service) repairAdminRoles(ctx context.Context, email string, roleIDs []bson.ObjectID, adminRoleID bson.ObjectID) error {
	added, err := s.store.AddRolesIfHolding(ctx, email, roleIDs, adminRoleID)
	if err != nil {
		return err
	}
	if !added {
		return ErrNotAdmin
	}
	if u, err := s.store.ByEmail(ctx, email); err == nil {
		_ = s.Forget(ctx, u.ID.Hex()) // a snapshot left behind expires within AUTH_CACHE_TTL
	}
	return nil
}
