// Package user serves profiles (HTTP /profile/..., NATS auth.profile.user)
// and states the rules about users and roles: who is active, what a user's
// snapshot holds, how the bootstrap admin is ensured, how stored emails are
// normalised. Other packages read users through its snapshots: an active
// user's public fields and role codes, cached in Redis so hot paths do not
// query the store per request. Storage is behind Storer (package store).
package user

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/changes"
	"blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/localcache"
)

// Storer is what the service needs from storage. Look-ups that find nothing
// answer model.ErrNotFound, writes that would give one email to two
// accounts model.ErrDuplicateEmail.
type Storer interface {
	ActiveByID(ctx context.Context, id bson.ObjectID) (*model.User, error) // without password
	ActiveByEmail(ctx context.Context, email string) (*model.User, error)
	ByEmail(ctx context.Context, email string) (*model.User, error) // any status
	ActiveByIDs(ctx context.Context, ids []bson.ObjectID) ([]model.User, error)
	Insert(ctx context.Context, u *model.User) error
	AddRolesIfHolding(ctx context.Context, email string, roleIDs []bson.ObjectID, required bson.ObjectID) (bool, error)

	ActiveRoles(ctx context.Context, ids []bson.ObjectID) ([]model.Role, error)
	ActiveRoleByCode(ctx context.Context, code string) (*model.Role, error)
	EnsureRole(ctx context.Context, code string, now time.Time) (*model.Role, error)

	EmailsToNormalize(ctx context.Context) ([]model.User, error)
	EmailsLike(ctx context.Context, norm string) ([]model.User, error)
	ReplaceEmail(ctx context.Context, id bson.ObjectID, from, to string, now time.Time) error
	SaveConflict(ctx context.Context, c *model.EmailConflict) error
	DropConflictsExcept(ctx context.Context, keep []string) error
	Conflict(ctx context.Context, email string) (*model.EmailConflict, error)
}

// SnapshotKey is the Redis key of a user's cached snapshot. The id is the
// key's hash tag, so on a Redis Cluster the snapshot and its generation
// (GenerationKey) live in one slot, as the scripts guarding its writes and
// its invalidation require, and snapshots spread over the slots by user.
func SnapshotKey(id string) string { return "auth_user_{" + id + "}" }

// GenerationKey is the generation of user id's snapshot: every Forget bumps
// it (in the script that deletes the snapshot), and a snapshot built from
// the store is written to Redis only while the generation is still the one
// noted before the store read (SnapshotGeneration, Remember). Without it, a
// replica that read the old roles just before a change could write them
// back just after the change's Forget, and every replica would serve them
// until the snapshot's TTL. It has no TTL: one small counter per user ever
// changed, so a reader's noted generation cannot come back after an expiry.
func GenerationKey(id string) string { return cache.SameSlot("auth_user_gen:", SnapshotKey(id)) }

type Service struct {
	store   Storer
	cache   *cache.Cache
	local   *localcache.Cache[*dto.InfoPrivateUser]
	changes *changes.Feed
	// ttl bounds how long a snapshot may lag behind an out-of-band edit of
	// the user that nobody announced (nothing in this service changes a
	// user after creation except the bootstrap and the email normalisation,
	// which Forget the snapshot).
	ttl time.Duration
}

// Options configure a Service.
type Options struct {
	// CacheTTL bounds a snapshot's life in Redis (see Service.ttl).
	CacheTTL time.Duration
	// Changes announces changed users to every replica (nil: to none).
	Changes *changes.Feed
	// Local is this replica's first-level copy of snapshots, in front of
	// Redis (nil: none). Its entries carry the user's tag
	// (authwire.UserTag), so it must be invalidated by Changes and follow
	// the change events of the other replicas.
	Local *localcache.Cache[*dto.InfoPrivateUser]
}

func NewService(store Storer, c *cache.Cache, o Options) *Service {
	return &Service{store: store, cache: c, local: o.Local, changes: o.Changes, ttl: o.CacheTTL}
}

// Info returns the active user's snapshot, from the caches when possible.
// The snapshot may be shared with other callers: it must not be modified.
func (s *Service) Info(ctx context.Context, id string) (*dto.InfoPrivateUser, error) {
	id = strings.ToLower(id) // one cache key per user, whatever the client's hex case
	if info, ok := s.Peek(id); ok {
		return info, nil
	}
	if _, err := bson.ObjectIDFromHex(id); err != nil {
		return nil, model.ErrNotFound // no such user, and no Redis key to read
	}
	gen := s.Generation()
	cached, _ := s.cache.GetRaw(ctx, SnapshotKey(id))
	return s.InfoFrom(ctx, id, cached, gen)
}

// Peek returns the snapshot of user id (lower-case hex) held by this
// replica, without any round trip. It must not be modified.
func (s *Service) Peek(id string) (*dto.InfoPrivateUser, bool) {
	return s.local.Get(id)
}

// Generation is to be read before asking Redis for a snapshot that is then
// passed to InfoFrom: a user change announced in between keeps what was
// read out of this replica's copy.
func (s *Service) Generation() uint64 { return s.local.Generation() }

// InfoFrom is Info for a caller that found no snapshot with Peek and
// fetched the Redis value itself (nil on a miss), e.g. together with other
// keys in one round trip, after reading generation (Generation).
//
// A hit costs nothing more. A miss notes the snapshot's Redis generation
// (one GET, in the user's slot) before reading the store, so the snapshot
// built from that read lands in Redis only if the user was not forgotten
// meanwhile: the common path keeps its single round trip, and only the
// misses, which query the store anyway, pay for the guard.
func (s *Service) InfoFrom(ctx context.Context, id string, cached []byte, generation uint64) (*dto.InfoPrivateUser, error) {
	if cached != nil {
		var info dto.InfoPrivateUser
		if err := json.Unmarshal(cached, &info); err == nil && info.ID == id {
			s.keep(&info, generation)
			return &info, nil
		}
	}
	info, err := s.Refresh(ctx, id)
	if err != nil {
		return nil, err
	}
	s.keep(info, generation)
	return info, nil
}

// Refresh builds user id's (lower-case hex) snapshot from the store,
// whatever the caches hold, and caches it in Redis. The generation is noted
// before the store read, so the write lands only if the user was not
// forgotten meanwhile. A sign-in uses it: the user sees, and every replica
// then serves, the stored state, even after an edit nobody announced.
func (s *Service) Refresh(ctx context.Context, id string) (*dto.InfoPrivateUser, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, model.ErrNotFound
	}
	gen := s.SnapshotGeneration(ctx, id)
	u, err := s.store.ActiveByID(ctx, oid)
	if err != nil {
		return nil, err
	}
	info, err := s.InfoOf(ctx, u)
	if err != nil {
		return nil, err
	}
	s.Remember(ctx, info, gen)
	return info, nil
}

// keep stores info in this replica's copy, unless a change was announced
// since generation was read. The copy is shared by concurrent requests, so
// it is encoded once here (Freeze) instead of once per answer.
func (s *Service) keep(info *dto.InfoPrivateUser, generation uint64) {
	if s.local == nil || s.local.Suspended() {
		return
	}
	s.local.Set(info.ID, info.Freeze(), generation, authwire.UserTag(info.ID))
}

// SnapshotGeneration notes the Redis generation of user id's snapshot (id
// in lower-case hex). It must be read BEFORE the store read whose snapshot
// is then passed to Remember. "" means Redis did not answer: Remember then
// writes nothing.
func (s *Service) SnapshotGeneration(ctx context.Context, id string) string {
	gen, ok := s.cache.Generation(ctx, GenerationKey(id))
	if !ok {
		return ""
	}
	return gen
}

// Remember caches a snapshot built from a store read made after gen was
// noted (SnapshotGeneration). The write lands only while the generation is
// still gen, i.e. if no Forget of the user happened since: a reader that
// raced a change of roles or status cannot put the old snapshot back.
func (s *Service) Remember(ctx context.Context, info *dto.InfoPrivateUser, gen string) {
	if gen == "" {
		return
	}
	s.cache.SetIfGeneration(ctx, GenerationKey(info.ID), gen, SnapshotKey(info.ID), info, s.ttl)
}

// newUserGeneration is the generation of a user that did not exist: the
// key is absent, which the guard reads as "0".
const newUserGeneration = "0"

// RememberNew caches the snapshot of a user this caller has just inserted.
// No Forget can precede the insert that created the id, so the generation
// before it was "0" without asking Redis; a change made since the insert
// (an administrator acting at once) has bumped it, and the write is refused.
func (s *Service) RememberNew(ctx context.Context, info *dto.InfoPrivateUser) {
	s.Remember(ctx, info, newUserGeneration)
}

// Forget drops a snapshot after the user changed (roles, status, anything
// the snapshot holds) and tells every replica, whose in-process copies of
// the user and of its sessions' answers go at once. The snapshot's deletion
// and the bump of its generation are one script, so from then on no reader
// that read the store before the change can write its snapshot back.
//
// The error is Redis's: the snapshot may then still be in Redis with the
// old fields (replicas that drop their copy on the event would refill it
// from there until AUTH_CACHE_TTL), so a caller that answers a person
// (the admin API) reports it and the change is repeated; the store write
// itself is done and repeating it is harmless.
func (s *Service) Forget(ctx context.Context, id string) error {
	id = strings.ToLower(id)
	err := s.cache.Invalidate(ctx, GenerationKey(id), []string{SnapshotKey(id)})
	s.changes.User(ctx, id)
	return err
}

// InfoOf builds the snapshot of u with its role documents, in the user's
// order. Role ids that no longer exist are left out (the reference left null
// entries), and so are roles whose status is false: a disabled role grants
// nothing, neither in authorization checks nor in the lists clients see.
func (s *Service) InfoOf(ctx context.Context, u *model.User) (*dto.InfoPrivateUser, error) {
	byID := make(map[bson.ObjectID]model.Role, len(u.Roles))
	if len(u.Roles) > 0 {
		roles, err := s.store.ActiveRoles(ctx, u.Roles)
		if err != nil {
			return nil, err
		}
		for _, r := range roles {
			byID[r.ID] = r
		}
	}
	info := &dto.InfoPrivateUser{ID: u.ID.Hex(), Email: u.Email, Name: u.Name, ProfilePicURL: u.ProfilePicURL, Roles: make([]dto.InfoRole, 0, len(u.Roles))}
	for _, id := range u.Roles {
		if r, ok := byID[id]; ok {
			info.Roles = append(info.Roles, dto.InfoRole{ID: r.ID.Hex(), Code: r.Code})
		}
	}
	return info, nil
}

// FindByEmail returns the active user with that email, password included.
// Emails are stored normalised (model.NormalizeEmail), so the caller passes
// the normal form; accounts of a recorded conflict are not normalised and
// so not found here (see ConflictOf).
func (s *Service) FindByEmail(ctx context.Context, email string) (*model.User, error) {
	return s.store.ActiveByEmail(ctx, email)
}

// ActiveByIDs returns the active users among ids, passwords included.
func (s *Service) ActiveByIDs(ctx context.Context, ids []bson.ObjectID) ([]model.User, error) {
	return s.store.ActiveByIDs(ctx, ids)
}

// Insert stores a new user; a taken email is model.ErrDuplicateEmail,
// whoever won the race.
func (s *Service) Insert(ctx context.Context, u *model.User) error {
	return s.store.Insert(ctx, u)
}

// RoleByCode returns the active role with that code.
func (s *Service) RoleByCode(ctx context.Context, code string) (*model.Role, error) {
	return s.store.ActiveRoleByCode(ctx, code)
}
