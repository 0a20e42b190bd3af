// Package store keeps users, roles and email conflicts in Mongo. It is the
// only code that knows their collections, filters, updates and indexes; the
// user service states the rules and declares what it needs (user.Storer).
package store

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/mongox"
)

const (
	UsersCollection = "users"
	RolesCollection = "roles"
	// EmailConflictsCollection lists accounts whose emails differ only by
	// letter case (see user.Service.MigrateEmails).
	EmailConflictsCollection = "email_conflicts"
)

// Indexes of the collections. The unique email index is what makes
// concurrent sign-ups with one email safe; the unique code index does the
// same for concurrent bootstraps. Both also serve every lookup by email or
// code (a unique key bound by equality finds at most one document), and
// reads by id use the _id index, so the reference's {_id, status},
// {email, status} and {code, status} indexes are not declared (a database
// that has them keeps them).
func Indexes() []mongox.Index {
	// A builder per index: the driver writes the generated name into the
	// builder it is given, so a shared one would name the roles index after
	// the users index (email_1).
	unique := func() *options.IndexOptionsBuilder { return options.Index().SetUnique(true) }
	return []mongox.Index{
		{Collection: UsersCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: unique()}},
		{Collection: RolesCollection, Model: mongo.IndexModel{Keys: bson.D{{Key: "code", Value: 1}}, Options: unique()}},
	}
}

// Store implements user.Storer on Mongo.
type Store struct {
	db        *mongox.DB
	users     *mongo.Collection
	roles     *mongo.Collection
	conflicts *mongo.Collection
}

func New(db *mongox.DB) *Store {
	return &Store{
		db:        db,
		users:     db.Database.Collection(UsersCollection),
		roles:     db.Database.Collection(RolesCollection),
		conflicts: db.Database.Collection(EmailConflictsCollection),
	}
}

// ActiveByID returns the active user with id, without its password.
func (s *Store) ActiveByID(ctx context.Context, id bson.ObjectID) (*model.User, error) {
	return s.findUser(ctx, bson.M{"_id": id, "status": true}, options.FindOne().SetProjection(bson.M{"password": 0}))
}

// ActiveByEmail returns the active user with exactly that email, password
// included.
func (s *Store) ActiveByEmail(ctx context.Context, email string) (*model.User, error) {
	return s.findUser(ctx, bson.M{"email": email, "status": true})
}

// ByEmail returns the user with exactly that email, whatever its status.
func (s *Store) ByEmail(ctx context.Context, email string) (*model.User, error) {
	return s.findUser(ctx, bson.M{"email": email})
}

func (s *Store) findUser(ctx context.Context, filter bson.M, opts ...options.Lister[options.FindOneOptions]) (*model.User, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var u model.User
	if err := s.users.FindOne(qctx, filter, opts...).Decode(&u); err != nil {
		if mongox.IsNotFound(err) {
			return nil, model.ErrNotFound
		}
		return nil, fmt.Errorf("find user: %w", err)
	}
	return &u, nil
}

// ActiveByIDs returns the active users among ids, passwords included.
func (s *Store) ActiveByIDs(ctx context.Context, ids []bson.ObjectID) ([]model.User, error) {
	var out []model.User
	if err := s.findAll(ctx, s.users, bson.M{"_id": bson.M{"$in": ids}, "status": true}, &out); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

func (s *Store) findAll(ctx context.Context, coll *mongo.Collection, filter bson.M, out any, opts ...options.Lister[options.FindOptions]) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	cur, err := coll.Find(qctx, filter, opts...)
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	if err := cur.All(qctx, out); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// Insert stores a new user and sets its id; a taken email is
// model.ErrDuplicateEmail, whoever won the race.
func (s *Store) Insert(ctx context.Context, u *model.User) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.users.InsertOne(qctx, u)
	if err != nil {
		if mongox.IsDuplicateKey(err) {
			return model.ErrDuplicateEmail
		}
		return fmt.Errorf("insert user: %w", err)
	}
	if id, ok := res.InsertedID.(bson.ObjectID); ok {
		u.ID = id
	}
	return nil
}

// AddRolesIfHolding adds roleIDs to the account with email only if it holds
// required, and reports whether it did. The condition is part of the update,
// so nothing can change the account between a check and the write.
func (s *Store) AddRolesIfHolding(ctx context.Context, email string, roleIDs []bson.ObjectID, required bson.ObjectID) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.users.UpdateOne(qctx, bson.M{"email": email, "roles": required},
		bson.M{"$addToSet": bson.M{"roles": bson.M{"$each": roleIDs}}})
	if err != nil {
		return false, fmt.Errorf("add user roles: %w", err)
	}
	return res.MatchedCount > 0, nil
}

// ActiveRoles returns the active roles among ids, in no particular order.
func (s *Store) ActiveRoles(ctx context.Context, ids []bson.ObjectID) ([]model.Role, error) {
	var roles []model.Role
	if err := s.findAll(ctx, s.roles, bson.M{"_id": bson.M{"$in": ids}, "status": true}, &roles); err != nil {
		return nil, fmt.Errorf("roles: %w", err)
	}
	return roles, nil
}

// ActiveRoleByCode returns the active role with that code.
func (s *Store) ActiveRoleByCode(ctx context.Context, code string) (*model.Role, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var r model.Role
	if err := s.roles.FindOne(qctx, bson.M{"code": code, "status": true}).Decode(&r); err != nil {
		if mongox.IsNotFound(err) {
			return nil, model.ErrNotFound
		}
		return nil, fmt.Errorf("find role %s: %w", code, err)
	}
	return &r, nil
}

// EnsureRole creates the role with code (active, stamped now) unless one
// exists, and returns it as stored. The upsert is keyed on code; when two
// callers insert at once the unique index refuses one, which counts as done.
func (s *Store) EnsureRole(ctx context.Context, code string, now time.Time) (*model.Role, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
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
	return &r, nil
}

// notNormalized finds emails with an upper-case letter (any script) or
// surrounding white space: a superset of the emails model.NormalizeEmail
// would change, which the caller narrows down.
var notNormalized = bson.M{"$regex": `\p{Lu}|^\s|\s$`}

// EmailsToNormalize returns the users (id and email only) whose email may
// not be in its normal form.
func (s *Store) EmailsToNormalize(ctx context.Context) ([]model.User, error) {
	var out []model.User
	if err := s.findAll(ctx, s.users, bson.M{"email": notNormalized}, &out, options.Find().SetProjection(bson.M{"email": 1})); err != nil {
		return nil, fmt.Errorf("emails to normalise: %w", err)
	}
	return out, nil
}

// EmailsLike returns the users (id and email only) whose email equals norm
// ignoring letter case and surrounding white space (a superset the caller
// narrows down with model.NormalizeEmail).
func (s *Store) EmailsLike(ctx context.Context, norm string) ([]model.User, error) {
	same := bson.M{"email": bson.M{"$regex": `^\s*` + regexp.QuoteMeta(norm) + `\s*$`, "$options": "i"}}
	var out []model.User
	if err := s.findAll(ctx, s.users, same, &out, options.Find().SetProjection(bson.M{"email": 1})); err != nil {
		return nil, fmt.Errorf("accounts of %s: %w", norm, err)
	}
	return out, nil
}

// ReplaceEmail changes the email of user id from `from` to `to`, provided
// it is still `from`. Another account holding `to` is
// model.ErrDuplicateEmail.
func (s *Store) ReplaceEmail(ctx context.Context, id bson.ObjectID, from, to string, now time.Time) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	_, err := s.users.UpdateOne(qctx, bson.M{"_id": id, "email": from}, bson.M{"$set": bson.M{"email": to, "updatedAt": now}})
	switch {
	case mongox.IsDuplicateKey(err):
		return model.ErrDuplicateEmail
	case err != nil:
		return fmt.Errorf("normalise email of %s: %w", id.Hex(), err)
	}
	return nil
}

// SaveConflict records (or refreshes) a conflict, keyed on its email.
func (s *Store) SaveConflict(ctx context.Context, c *model.EmailConflict) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	if _, err := s.conflicts.ReplaceOne(qctx, bson.M{"_id": c.Email}, c, options.Replace().SetUpsert(true)); err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("record email conflict %s: %w", c.Email, err)
	}
	return nil
}

// DropConflictsExcept deletes every recorded conflict whose email is not in
// keep.
func (s *Store) DropConflictsExcept(ctx context.Context, keep []string) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	if _, err := s.conflicts.DeleteMany(qctx, bson.M{"_id": bson.M{"$nin": keep}}); err != nil {
		return fmt.Errorf("drop resolved email conflicts: %w", err)
	}
	return nil
}

// Conflict returns the recorded conflict of a normalised email, or nil.
func (s *Store) Conflict(ctx context.Context, email string) (*model.EmailConflict, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var c model.EmailConflict
	if err := s.conflicts.FindOne(qctx, bson.M{"_id": email}).Decode(&c); err != nil {
		if mongox.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("find email conflict: %w", err)
	}
	return &c, nil
}

// ByID returns the user with id whatever its status, without its password.
func (s *Store) ByID(ctx context.Context, id bson.ObjectID) (*model.User, error) {
	return s.findUser(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"password": 0}))
}

// AddRole gives user id the role roleID (nothing changes when it holds it)
// and reports whether the user exists.
func (s *Store) AddRole(ctx context.Context, id, roleID bson.ObjectID, now time.Time) (bool, error) {
	return s.updateUser(ctx, id, bson.M{"$addToSet": bson.M{"roles": roleID}, "$set": bson.M{"updatedAt": now}})
}

// RemoveRole takes the role roleID from user id and reports whether the
// user exists.
func (s *Store) RemoveRole(ctx context.Context, id, roleID bson.ObjectID, now time.Time) (bool, error) {
	return s.updateUser(ctx, id, bson.M{"$pull": bson.M{"roles": roleID}, "$set": bson.M{"updatedAt": now}})
}

// SetStatus enables (true) or disables user id and reports whether the user
// exists. A disabled user is not found by the Active look-ups.
func (s *Store) SetStatus(ctx context.Context, id bson.ObjectID, status bool, now time.Time) (bool, error) {
	return s.updateUser(ctx, id, bson.M{"$set": bson.M{"status": status, "updatedAt": now}})
}

func (s *Store) updateUser(ctx context.Context, id bson.ObjectID, update bson.M) (bool, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.users.UpdateOne(qctx, bson.M{"_id": id}, update)
	if err != nil {
		return false, fmt.Errorf("update user %s: %w", id.Hex(), err)
	}
	return res.MatchedCount > 0, nil
}
