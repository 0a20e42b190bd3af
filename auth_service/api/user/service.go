// Package user serves profiles (HTTP /profile/..., NATS auth.profile.user)
// and owns the users and roles collections. Other packages read users
// through its snapshots: an active user's public fields and role codes,
// cached in Redis so hot paths do not query the store per request.
package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/mongox"
)

var (
	// ErrNotFound: no active user (or role) matches.
	ErrNotFound = errors.New("not found")
	// ErrDuplicateEmail: the unique email index refused an insert.
	ErrDuplicateEmail = errors.New("email already registered")
)

// SnapshotKey is the Redis key of a user's cached snapshot.
func SnapshotKey(id string) string { return "auth_user_" + id }

type Service struct {
	db        *mongox.DB
	users     *mongo.Collection
	roles     *mongo.Collection
	conflicts *mongo.Collection
	cache     *cache.Cache
	// ttl bounds how long a snapshot may lag behind an out-of-band edit of
	// the user (nothing in this service changes a user after creation except
	// the bootstrap, which drops the snapshot).
	ttl time.Duration
}

func NewService(db *mongox.DB, c *cache.Cache, ttl time.Duration) *Service {
	return &Service{
		db:        db,
		users:     db.Database.Collection(model.UsersCollection),
		roles:     db.Database.Collection(model.RolesCollection),
		conflicts: db.Database.Collection(model.EmailConflictsCollection),
		cache:     c,
		ttl:       ttl,
	}
}

// Info returns the active user's snapshot, from the cache when possible.
func (s *Service) Info(ctx context.Context, id string) (*dto.InfoPrivateUser, error) {
	id = strings.ToLower(id) // one cache key per user, whatever the client's hex case
	cached, _ := s.cache.GetRaw(ctx, SnapshotKey(id))
	return s.InfoFrom(ctx, id, cached)
}

// InfoFrom is Info for a caller that already fetched the cached value (nil
// on a miss), e.g. together with other keys in one round trip.
func (s *Service) InfoFrom(ctx context.Context, id string, cached []byte) (*dto.InfoPrivateUser, error) {
	if cached != nil {
		var info dto.InfoPrivateUser
		if err := json.Unmarshal(cached, &info); err == nil && info.ID == id {
			return &info, nil
		}
	}
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, ErrNotFound
	}
	u, err := s.findActive(ctx, bson.M{"_id": oid, "status": true}, options.FindOne().SetProjection(bson.M{"password": 0}))
	if err != nil {
		return nil, err
	}
	info, err := s.InfoOf(ctx, u)
	if err != nil {
		return nil, err
	}
	s.Remember(ctx, info)
	return info, nil
}

// Remember caches a snapshot read from (or just written to) the store.
func (s *Service) Remember(ctx context.Context, info *dto.InfoPrivateUser) {
	s.cache.SetJSON(ctx, SnapshotKey(info.ID), info, s.ttl)
}

// Forget drops a snapshot after the user changed.
func (s *Service) Forget(ctx context.Context, id string) {
	_ = s.cache.Delete(ctx, SnapshotKey(id))
}

// InfoOf builds the snapshot of u with its role documents, in the user's
// order. Role ids that no longer exist are left out (the reference left null
// entries), and so are roles whose status is false: a disabled role grants
// nothing, neither in authorization checks nor in the lists clients see.
func (s *Service) InfoOf(ctx context.Context, u *model.User) (*dto.InfoPrivateUser, error) {
	roles, err := s.rolesByID(ctx, u.Roles)
	if err != nil {
		return nil, err
	}
	info := &dto.InfoPrivateUser{ID: u.ID.Hex(), Email: u.Email, Name: u.Name, ProfilePicURL: u.ProfilePicURL, Roles: make([]dto.InfoRole, 0, len(u.Roles))}
	for _, id := range u.Roles {
		if r, ok := roles[id]; ok {
			info.Roles = append(info.Roles, dto.InfoRole{ID: r.ID.Hex(), Code: r.Code})
		}
	}
	return info, nil
}

func (s *Service) rolesByID(ctx context.Context, ids []bson.ObjectID) (map[bson.ObjectID]model.Role, error) {
	out := make(map[bson.ObjectID]model.Role, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	cur, err := s.roles.Find(qctx, bson.M{"_id": bson.M{"$in": ids}, "status": true})
	if err != nil {
		return nil, fmt.Errorf("find roles: %w", err)
	}
	var roles []model.Role
	if err := cur.All(qctx, &roles); err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	for _, r := range roles {
		out[r.ID] = r
	}
	return out, nil
}

// FindByEmail returns the active user with that email, password included.
// Emails are stored normalised (model.NormalizeEmail), so the caller passes
// the normal form; accounts of a recorded conflict are not normalised and
// so not found here (see ConflictOf).
func (s *Service) FindByEmail(ctx context.Context, email string) (*model.User, error) {
	return s.findActive(ctx, bson.M{"email": email, "status": true})
}

func (s *Service) findActive(ctx context.Context, filter bson.M, opts ...options.Lister[options.FindOneOptions]) (*model.User, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var u model.User
	if err := s.users.FindOne(qctx, filter, opts...).Decode(&u); err != nil {
		if mongox.IsNotFound(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("find user: %w", err)
	}
	return &u, nil
}

// Insert stores a new user; a taken email is ErrDuplicateEmail, whoever won
// the race.
func (s *Service) Insert(ctx context.Context, u *model.User) error {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	res, err := s.users.InsertOne(qctx, u)
	if err != nil {
		if mongox.IsDuplicateKey(err) {
			return ErrDuplicateEmail
		}
		return fmt.Errorf("insert user: %w", err)
	}
	if id, ok := res.InsertedID.(bson.ObjectID); ok {
		u.ID = id
	}
	return nil
}

// RoleByCode returns the active role with that code.
func (s *Service) RoleByCode(ctx context.Context, code string) (*model.Role, error) {
	qctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var r model.Role
	if err := s.roles.FindOne(qctx, bson.M{"code": code, "status": true}).Decode(&r); err != nil {
		if mongox.IsNotFound(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("find role %s: %w", code, err)
	}
	return &r, nil
}
