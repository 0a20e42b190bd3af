// Package admin is the operators' API (/admin/..., /auth/admin/... through
// the gateway): API keys, users' roles and status, users' sessions. Every
// route needs a signed-in user holding the ADMIN role, and every call is
// written to the log as one audit line.
//
// It changes nothing by itself that another package owns the rules of: a
// change is written through the stores, then announced through the owning
// service (apikey.Service.Disable, user.Service.Forget,
// keystore.Service.Revoke), so every replica of every service drops what it
// cached about the key, the user or the session before the operator is
// answered.
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/apikey"
	keymodel "blogplatform/auth_service/api/apikey/model"
	"blogplatform/auth_service/api/keystore"
	ksmodel "blogplatform/auth_service/api/keystore/model"
	"blogplatform/auth_service/api/user"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/apperr"
)

// KeyStore is what the admin API reads of API keys (apikey/store.Store).
type KeyStore interface {
	Page(ctx context.Context, after bson.ObjectID, limit int) ([]keymodel.ApiKey, error)
	ByID(ctx context.Context, id bson.ObjectID) (*keymodel.ApiKey, error)
}

// UserStore is what the admin API reads and writes of users
// (user/store.Store). Writes report whether the user exists.
type UserStore interface {
	ByID(ctx context.Context, id bson.ObjectID) (*model.User, error)
	ByEmail(ctx context.Context, email string) (*model.User, error)
	AddRole(ctx context.Context, id, roleID bson.ObjectID, now time.Time) (bool, error)
	RemoveRole(ctx context.Context, id, roleID bson.ObjectID, now time.Time) (bool, error)
	SetStatus(ctx context.Context, id bson.ObjectID, status bool, now time.Time) (bool, error)
}

// SessionStore is what the admin API reads of keystores
// (keystore/store.Store).
type SessionStore interface {
	OfClient(ctx context.Context, client bson.ObjectID, limit int) ([]ksmodel.Keystore, error)
	OfClientByID(ctx context.Context, client, id bson.ObjectID) (*ksmodel.Keystore, error)
}

// Failures the operator sees.
var (
	errUserMissing    = apperr.Missing("user does not exist")
	errKeyMissing     = apperr.Missing("api key does not exist")
	errSessionMissing = apperr.Missing("session does not exist")
	errUnknownRole    = apperr.BadRequest("role must be one of " + strings.Join(model.AllRoles, ", "))
	// An administrator locking themselves out would leave the platform
	// without one when they are the last: another administrator must do it.
	errOwnAdminRole = apperr.BadRequest("an administrator cannot remove their own ADMIN role")
	errOwnAccount   = apperr.BadRequest("an administrator cannot disable their own account")
	// The revocation marker could not be written (Redis down): the session
	// is unchanged and the operator may retry.
	errRevocationUnavailable = apperr.New(apperr.Unavailable, "session revocation unavailable, try again later")
	// The change is in the store but the user's cached snapshot could not
	// be dropped (Redis did not answer): replicas could keep the old roles
	// or status until the snapshot expires, so the operator repeats the
	// call (repeating it is harmless).
	errCacheUnavailable = apperr.New(apperr.Unavailable, "change saved but the user's cached copy could not be dropped, try again")
)

// MaxSessions bounds the sessions one listing returns and one "end all"
// call ends; a user with more (every sign-in opens one) is ended in several
// calls.
const MaxSessions = 1000

// Options configure a Service.
type Options struct {
	// AccessValidity is the access tokens' lifetime with its leeway: a revoked session's
	// marker must outlive every access token it may have issued.
	AccessValidity time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Service carries out the operators' changes.
type Service struct {
	keys      KeyStore
	users     UserStore
	sessions  SessionStore
	apiKeys   *apikey.Service
	userSvc   *user.Service
	keystores *keystore.Service
	opts      Options
}

// NewService wires the stores (reads and the users' writes) and the owning
// services (announcements).
func NewService(keys KeyStore, users UserStore, sessions SessionStore, apiKeys *apikey.Service, userSvc *user.Service, keystores *keystore.Service, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{keys: keys, users: users, sessions: sessions, apiKeys: apiKeys, userSvc: userSvc, keystores: keystores, opts: o}
}

// newKey is 32 random bytes in lowercase hex: as hard to guess as a key can
// usefully be, and safe in a header without escaping.
func newKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random api key: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// CreateKey creates an active key with a fresh random value and returns it
// with the value: the only time the value leaves the service. (Two equal
// values of 256 random bits would mean a broken generator: the unique index
// refuses the second, a 500.)
func (s *Service) CreateKey(ctx context.Context, comments []string) (CreatedAPIKey, error) {
	value, err := newKey()
	if err != nil {
		return CreatedAPIKey{}, apperr.InternalErr(err)
	}
	k, err := s.apiKeys.Create(ctx, value, comments)
	if err != nil {
		return CreatedAPIKey{}, apperr.InternalErr(err)
	}
	return CreatedAPIKey{APIKeyInfo: keyInfo(k), Key: value}, nil
}

// ListKeys returns up to limit keys after the id `after`, without values.
func (s *Service) ListKeys(ctx context.Context, after bson.ObjectID, limit int) ([]APIKeyInfo, error) {
	keys, err := s.keys.Page(ctx, after, limit)
	if err != nil {
		return nil, apperr.InternalErr(err)
	}
	out := make([]APIKeyInfo, 0, len(keys))
	for i := range keys {
		out = append(out, keyInfo(&keys[i]))
	}
	return out, nil
}

// RevokeKey disables key id. The owning service publishes the refusal to
// the shared cache and announces it, so every auth replica refuses the key
// before this returns; the gateway's own cache forgets it within its TTL.
// Revoking a revoked key changes nothing and succeeds.
func (s *Service) RevokeKey(ctx context.Context, id bson.ObjectID) (APIKeyInfo, error) {
	k, err := s.keys.ByID(ctx, id)
	if err != nil {
		return APIKeyInfo{}, notFoundOr(err, keymodel.ErrNotFound, errKeyMissing)
	}
	if _, err := s.apiKeys.Disable(ctx, k.Key); err != nil {
		return APIKeyInfo{}, apperr.InternalErr(err)
	}
	k.Status = false
	k.UpdatedAt = s.opts.Now().UTC()
	return keyInfo(k), nil
}

// User returns user id, whatever its status.
func (s *Service) User(ctx context.Context, id bson.ObjectID) (AdminUser, error) {
	u, err := s.users.ByID(ctx, id)
	if err != nil {
		return AdminUser{}, notFoundOr(err, model.ErrNotFound, errUserMissing)
	}
	return s.view(ctx, u)
}

// UserByEmail returns the user with that email (normalised), whatever its
// status.
func (s *Service) UserByEmail(ctx context.Context, email string) (AdminUser, error) {
	u, err := s.users.ByEmail(ctx, model.NormalizeEmail(email))
	if err != nil {
		return AdminUser{}, notFoundOr(err, model.ErrNotFound, errUserMissing)
	}
	return s.view(ctx, u)
}

// RoleCode is the stored code of a role named in any letter case, or
// errUnknownRole.
func RoleCode(name string) (string, error) {
	code := strings.ToUpper(strings.TrimSpace(name))
	if !slices.Contains(model.AllRoles, code) {
		return "", errUnknownRole
	}
	return code, nil
}

// GrantRole gives user id the role code (idempotent).
func (s *Service) GrantRole(ctx context.Context, id bson.ObjectID, code string) (AdminUser, error) {
	return s.changeRole(ctx, id, code, s.users.AddRole)
}

// RevokeRole takes the role code from user id (idempotent). An
// administrator cannot take ADMIN from themselves (self is their id).
func (s *Service) RevokeRole(ctx context.Context, self string, id bson.ObjectID, code string) (AdminUser, error) {
	if code == model.RoleAdmin && id.Hex() == self {
		return AdminUser{}, errOwnAdminRole
	}
	return s.changeRole(ctx, id, code, s.users.RemoveRole)
}

func (s *Service) changeRole(ctx context.Context, id bson.ObjectID, code string,
	write func(context.Context, bson.ObjectID, bson.ObjectID, time.Time) (bool, error)) (AdminUser, error) {
	role, err := s.userSvc.RoleByCode(ctx, code)
	if err != nil {
		// The bootstrap creates every role: a missing one was disabled by hand.
		return AdminUser{}, notFoundOr(err, model.ErrNotFound, errUnknownRole)
	}
	found, err := write(ctx, id, role.ID, s.opts.Now().UTC())
	if err != nil {
		return AdminUser{}, apperr.InternalErr(err)
	}
	if !found {
		return AdminUser{}, errUserMissing
	}
	// Every replica drops the user's snapshot and the answers about its
	// sessions, so the new roles count on the next request anywhere.
	if err := s.userSvc.Forget(ctx, id.Hex()); err != nil {
		return AdminUser{}, errCacheUnavailable
	}
	return s.User(ctx, id)
}

// Disable disables user id and ends every session of theirs: from the
// answer on, their tokens are refused by every replica of every service
// (the user change event drops every cached answer about them, and a
// disabled user is not found by authentication), and cannot be refreshed.
// An administrator cannot disable themselves.
func (s *Service) Disable(ctx context.Context, self string, id bson.ObjectID) (DisabledUser, error) {
	if id.Hex() == self {
		return DisabledUser{}, errOwnAccount
	}
	if err := s.setStatus(ctx, id, false); err != nil {
		return DisabledUser{}, err
	}
	// The status already refuses the tokens; ending the sessions as well
	// makes the refusal independent of any cached snapshot and of a later
	// Enable.
	ended, err := s.EndSessions(ctx, id)
	if err != nil {
		return DisabledUser{}, err
	}
	u, err := s.User(ctx, id)
	if err != nil {
		return DisabledUser{}, err
	}
	return DisabledUser{User: u, SessionsEnded: ended.Ended}, nil
}

// Enable lets a disabled user sign in again (their old sessions stay ended).
func (s *Service) Enable(ctx context.Context, id bson.ObjectID) (AdminUser, error) {
	if err := s.setStatus(ctx, id, true); err != nil {
		return AdminUser{}, err
	}
	return s.User(ctx, id)
}

func (s *Service) setStatus(ctx context.Context, id bson.ObjectID, status bool) error {
	found, err := s.users.SetStatus(ctx, id, status, s.opts.Now().UTC())
	if err != nil {
		return apperr.InternalErr(err)
	}
	if !found {
		return errUserMissing
	}
	if err := s.userSvc.Forget(ctx, id.Hex()); err != nil {
		return errCacheUnavailable
	}
	return nil
}

// Sessions lists up to MaxSessions sessions of user id, newest first.
func (s *Service) Sessions(ctx context.Context, id bson.ObjectID) ([]SessionInfo, error) {
	if _, err := s.users.ByID(ctx, id); err != nil {
		return nil, notFoundOr(err, model.ErrNotFound, errUserMissing)
	}
	list, err := s.sessions.OfClient(ctx, id, MaxSessions)
	if err != nil {
		return nil, apperr.InternalErr(err)
	}
	slices.SortFunc(list, func(a, b ksmodel.Keystore) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:]) // the store keeps milliseconds: ties happen
	})
	out := make([]SessionInfo, 0, len(list))
	for i := range list {
		out = append(out, SessionInfo{ID: list[i].ID.Hex(), Family: list[i].FamilyOf(), CreatedAt: list[i].CreatedAt})
	}
	return out, nil
}

// EndSession ends session sessionID of user id on every replica.
func (s *Service) EndSession(ctx context.Context, id, sessionID bson.ObjectID) error {
	ks, err := s.sessions.OfClientByID(ctx, id, sessionID)
	if err != nil {
		return notFoundOr(err, ksmodel.ErrNotFound, errSessionMissing)
	}
	return s.end(ctx, ks)
}

// EndSessions ends up to MaxSessions sessions of user id (all of them but
// for a user with more) and says how many it ended.
func (s *Service) EndSessions(ctx context.Context, id bson.ObjectID) (EndedSessions, error) {
	if _, err := s.users.ByID(ctx, id); err != nil {
		return EndedSessions{}, notFoundOr(err, model.ErrNotFound, errUserMissing)
	}
	list, err := s.sessions.OfClient(ctx, id, MaxSessions)
	if err != nil {
		return EndedSessions{}, apperr.InternalErr(err)
	}
	var res EndedSessions
	for i := range list {
		if err := s.end(ctx, &list[i]); err != nil {
			return res, err
		}
		res.Ended++
	}
	return res, nil
}

// end revokes one keystore as a sign-out does. The access tokens it issued
// expire at the latest AccessValidity after it was created; the marker is
// kept that long from now, which is never shorter.
func (s *Service) end(ctx context.Context, ks *ksmodel.Keystore) error {
	expiry := s.opts.Now().Add(s.opts.AccessValidity)
	if _, err := s.keystores.Revoke(ctx, ks.Client, ks.ID, ks.PKey, expiry); err != nil {
		if errors.Is(err, keystore.ErrRevocationUnavailable) {
			return errRevocationUnavailable
		}
		return apperr.InternalErr(err)
	}
	return nil
}

// view is the operators' view of u: its active roles and its status.
func (s *Service) view(ctx context.Context, u *model.User) (AdminUser, error) {
	info, err := s.userSvc.InfoOf(ctx, u)
	if err != nil {
		return AdminUser{}, apperr.InternalErr(err)
	}
	return AdminUser{ID: info.ID, Email: info.Email, Name: info.Name, Roles: info.Roles, Status: u.Status}, nil
}

func notFoundOr(err, notFound error, missing *apperr.Error) error {
	if errors.Is(err, notFound) {
		return missing
	}
	return apperr.InternalErr(err)
}
