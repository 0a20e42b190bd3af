// Package auth signs users up and in, refreshes and revokes token pairs, and
// answers authentication and authorization for the HTTP middleware and for
// blog_service over NATS.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"blogplatform/auth_service/api/auth/dto"
	"blogplatform/auth_service/api/auth/throttle"
	"blogplatform/auth_service/api/auth/token"
	"blogplatform/auth_service/api/keystore"
	ksmodel "blogplatform/auth_service/api/keystore/model"
	"blogplatform/auth_service/api/user"
	userdto "blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/cache"
)

// Client-facing failures (reference texts, typos fixed).
var (
	errMissingAuthorization = apperr.Unauthorized("permission denied: missing Authorization")
	errInvalidAuthorization = apperr.Unauthorized("permission denied: invalid Authorization")
	errInvalidClaims        = apperr.Unauthorized("permission denied: invalid claims")
	errSubjectMissing       = apperr.Unauthorized("permission denied: claims subject does not exist")
	errInvalidAccessToken   = apperr.Unauthorized("permission denied: invalid access token")
	errInvalidAccessClaims  = apperr.Unauthorized("permission denied: invalid access claims")
	errInvalidRefreshClaims = apperr.Unauthorized("permission denied: invalid refresh claims")
	errClaimsMismatch       = apperr.Unauthorized("permission denied: access and refresh claims mismatch")
	errRefreshSubject       = apperr.Unauthorized("permission denied: invalid refresh claims subject")
	errClaimsIDs            = apperr.Unauthorized("permission denied: claims ids")
	// A user that vanished between authentication and authorization must
	// authenticate again: 401 rather than the reference's raw driver text.
	errAuthorizedUserMissing = apperr.Unauthorized("permission denied: user does not exist")
	errRoleMissing           = apperr.Denied("permission denied: role missing")
	errInsufficientRole      = apperr.Denied("permission denied: does not have sufficient role")
	errAlreadyRegistered     = apperr.BadRequest("user already registered")
	errPasswordTooLong       = apperr.BadRequest("password must be at most 72 bytes")
	errNotRegistered         = apperr.Missing("user not registered")
	errWrongPassword         = apperr.Unauthorized("wrong password")
	// errBadCredentials replaces both answers above with SIGNIN_UNIFORM_ERRORS.
	errBadCredentials = apperr.Unauthorized("invalid email or password")
	// Several stored accounts share the address up to letter case; the
	// password matched one of them, and picking it would be a guess.
	errAmbiguousEmail  = apperr.Denied("several accounts use this email in different letter case; ask an administrator")
	errTooManyAttempts = apperr.New(apperr.TooManyRequests, "too many failed sign-ins, try again later")
	// The revocation could not be made visible to every replica, so it was
	// not done: the client keeps a working session and may retry.
	errRevocationUnavailable = apperr.New(apperr.Unavailable, "session revocation unavailable, try again later")
)

const bearerPrefix = "Bearer "

// Options configure a Service.
type Options struct {
	BcryptCost int
	Log        *slog.Logger
	// UniformSignInErrors answers an unknown email like a wrong password
	// (401 `invalid email or password`) instead of the reference's 404.
	UniformSignInErrors bool
	// Attempts bounds sign-in attempts per account (nil: unbounded).
	Attempts *throttle.AccountLimiter
	// ReuseGrace is how long after a refresh token was consumed presenting
	// it again is taken for a duplicate of that same refresh (a client that
	// sent it twice at once, or retried after a lost answer) rather than for
	// a stolen copy: it is refused without ending the session. Later, reuse
	// ends the whole session.
	ReuseGrace time.Duration
}

// throttledError is a 429 that tells the client how long to wait.
type throttledError struct {
	err  *apperr.Error
	Wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }
func (e *throttledError) Unwrap() error { return e.err }

type Service struct {
	users     *user.Service
	keystores *keystore.Service
	signer    *token.Signer
	cache     *cache.Cache
	log       *slog.Logger
	cost      int
	uniform   bool
	attempts  *throttle.AccountLimiter
	grace     time.Duration
	// dummyHash is compared against for unknown emails and users without a
	// password, so a sign-in costs one bcrypt comparison whatever happens.
	dummyHash []byte
}

func NewService(users *user.Service, keystores *keystore.Service, signer *token.Signer, c *cache.Cache, o Options) (*Service, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), o.BcryptCost)
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{users: users, keystores: keystores, signer: signer, cache: c, log: o.Log, cost: o.BcryptCost,
		uniform: o.UniformSignInErrors, attempts: o.Attempts, grace: max(o.ReuseGrace, 0), dummyHash: dummy}, nil
}

// Session is an authenticated request's user and token.
type Session struct {
	User       *userdto.InfoPrivateUser
	UserID     bson.ObjectID
	KeystoreID bson.ObjectID
	PKey       string
	ExpiresAt  time.Time
}

// Authenticate checks an Authorization header ("Bearer <access token>"):
// a valid signature and claims, an existing active user (the token's
// subject) and a live keystore for the token's jti. Nothing here queries
// the store in the common case: the signature check is remembered in
// process, and the session and user come from this replica's first-level
// caches or else from Redis, in one round trip.
func (s *Service) Authenticate(ctx context.Context, header string) (*Session, error) {
	raw, err := bearerToken(header)
	if err != nil {
		return nil, err
	}
	claims, err := s.signer.VerifyAccess(raw, time.Now())
	if err != nil {
		return nil, tokenError(err, errInvalidClaims)
	}
	client, err := bson.ObjectIDFromHex(claims.Subject)
	if err != nil {
		return nil, errInvalidClaims
	}
	u, userHeld := s.users.Peek(claims.Subject)
	sess, sessHeld, sessErr := s.keystores.Peek(claims.ID)
	if !userHeld || !sessHeld {
		// Generations before Redis: see localcache.
		userGen, sessGen := s.users.Generation(), s.keystores.Generation()
		cachedUser, cachedSess := s.fetch(ctx, claims, userHeld, sessHeld)
		if !userHeld {
			if u, err = s.users.InfoFrom(ctx, claims.Subject, cachedUser, userGen); err != nil {
				if errors.Is(err, model.ErrNotFound) {
					return nil, errSubjectMissing
				}
				return nil, apperr.InternalErr(err)
			}
		}
		if !sessHeld {
			sess, sessErr = s.keystores.Session(ctx, client, claims.ID, cachedSess, claims.ExpiresAt.Add(token.Leeway), sessGen)
		}
	}
	if sessErr != nil {
		if errors.Is(sessErr, ksmodel.ErrNotFound) {
			return nil, errInvalidAccessToken
		}
		return nil, apperr.InternalErr(sessErr)
	}
	ksID, err := bson.ObjectIDFromHex(sess.KeystoreID)
	if err != nil {
		return nil, apperr.InternalErr(err)
	}
	return &Session{User: u, UserID: client, KeystoreID: ksID, PKey: claims.ID, ExpiresAt: claims.ExpiresAt}, nil
}

// fetch reads from Redis, in one round trip, what this replica's caches
// did not hold: the user snapshot, the session, or both (nil: not cached).
func (s *Service) fetch(ctx context.Context, claims token.Claims, userHeld, sessHeld bool) (cachedUser, cachedSess []byte) {
	switch {
	case !userHeld && !sessHeld:
		cached := s.cache.GetManyRaw(ctx, keystore.SessionKey(claims.ID), user.SnapshotKey(claims.Subject))
		return cached[1], cached[0]
	case !userHeld:
		cachedUser, _ = s.cache.GetRaw(ctx, user.SnapshotKey(claims.Subject))
	default:
		cachedSess, _ = s.cache.GetRaw(ctx, keystore.SessionKey(claims.ID))
	}
	return cachedUser, cachedSess
}

// bearerToken applies the reference's rule: "Bearer " (case-sensitive, one
// space) followed by a non-empty token.
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", errMissingAuthorization
	}
	raw, ok := strings.CutPrefix(header, bearerPrefix)
	if !ok || raw == "" {
		return "", errInvalidAuthorization
	}
	return raw, nil
}

// tokenError turns a verification failure into a 401: missing or malformed
// claims get the caller's message, everything else the token package's.
func tokenError(err error, invalidClaims *apperr.Error) error {
	if errors.Is(err, token.ErrClaims) {
		return invalidClaims
	}
	return apperr.Unauthorized(err.Error())
}

// Authorize re-reads the user and checks it holds one of roles (any one of
// them suffices; an empty list grants nothing).
func (s *Service) Authorize(ctx context.Context, userID string, roles []string) (*userdto.InfoPrivateUser, error) {
	u, err := s.users.Info(ctx, userID)
	if err != nil {
		if errors.Is(err, model.ErrNotFound) {
			return nil, errAuthorizedUserMissing
		}
		return nil, apperr.InternalErr(err)
	}
	if err := requireRole(u, roles); err != nil {
		return nil, err
	}
	return u, nil
}

// AuthenticateAuthorize is Authenticate then Authorize in one call, failing
// as the two would in sequence. The role check runs on the user Authenticate
// just read: Authorize would re-read the same snapshot (cache, then store),
// so a second read could only cost a round trip, not change the answer.
func (s *Service) AuthenticateAuthorize(ctx context.Context, header string, roles []string) (*userdto.InfoPrivateUser, error) {
	sess, err := s.Authenticate(ctx, header)
	if err != nil {
		return nil, err
	}
	if err := requireRole(sess.User, roles); err != nil {
		return nil, err
	}
	return sess.User, nil
}

// requireRole is the one role rule: any one of roles suffices, an empty
// list grants nothing.
func requireRole(u *userdto.InfoPrivateUser, roles []string) error {
	if len(roles) == 0 {
		return errRoleMissing
	}
	if !u.HasAnyRole(roles) {
		return errInsufficientRole
	}
	return nil
}

// SignUp registers a new user with the LEARNER role and opens a session. A taken email is a 400 whether the
// check below or the unique index finds it, so concurrent sign-ups with one
// email give one success and the normal message for the others. The email
// arrives normalised (dto.Email); an address of a recorded case conflict is
// taken too.
func (s *Service) SignUp(ctx context.Context, req dto.SignUpBasic) (*dto.UserAuth, error) {
	if len(req.Password) > 72 {
		return nil, errPasswordTooLong // bcrypt would silently ignore the rest
	}
	email := string(req.Email)
	switch _, err := s.users.FindByEmail(ctx, email); {
	case err == nil:
		return nil, errAlreadyRegistered
	case !errors.Is(err, model.ErrNotFound):
		return nil, apperr.InternalErr(err)
	}
	switch conflict, err := s.users.ConflictOf(ctx, email); {
	case err != nil:
		return nil, apperr.InternalErr(err)
	case conflict != nil:
		return nil, errAlreadyRegistered
	}
	learner, err := s.users.RoleByCode(ctx, model.RoleLearner)
	if err != nil {
		return nil, apperr.InternalErr(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), s.cost)
	if err != nil {
		return nil, apperr.InternalErr(err)
	}
	now := time.Now().UTC()
	u := &model.User{
		Name: req.Name, Email: email, Password: string(hash), ProfilePicURL: req.ProfilePicURL,
		Roles: []bson.ObjectID{learner.ID}, Verified: false, Status: true, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.users.Insert(ctx, u); err != nil {
		if errors.Is(err, model.ErrDuplicateEmail) {
			return nil, errAlreadyRegistered
		}
		return nil, apperr.InternalErr(err)
	}
	info := &userdto.InfoPrivateUser{ID: u.ID.Hex(), Email: u.Email, Name: u.Name, ProfilePicURL: u.ProfilePicURL,
		Roles: []userdto.InfoRole{{ID: learner.ID.Hex(), Code: learner.Code}}}
	s.users.RememberNew(ctx, info)
	return s.issue(ctx, u.ID, info)
}

// SignIn checks email and password and opens a new session. Every
// attempt counts against the account's budget first (unknown emails too, so
// the limit tells nothing about which emails exist); a successful one is
// given back.
func (s *Service) SignIn(ctx context.Context, req dto.SignInBasic) (*dto.UserAuth, error) {
	email := string(req.Email)
	if s.attempts != nil {
		if ok, wait := s.attempts.Begin(ctx, email); !ok {
			return nil, &throttledError{err: errTooManyAttempts, Wait: wait}
		}
	}
	u, err := s.checkPassword(ctx, email, req.Password)
	if err != nil {
		return nil, err
	}
	if s.attempts != nil {
		s.attempts.Succeeded(ctx, email)
	}
	// The snapshot is read again by id (Refresh): writing one built from u
	// to Redis could put back roles that a change made since u was read has
	// already forgotten.
	info, err := s.users.Refresh(ctx, u.ID.Hex())
	if err != nil {
		if errors.Is(err, model.ErrNotFound) {
			return nil, s.failure(errNotRegistered) // disabled since the check
		}
		return nil, apperr.InternalErr(err)
	}
	return s.issue(ctx, u.ID, info)
}

// checkPassword returns the active account of email if password is its
// password. Whatever happens it costs one bcrypt comparison per candidate
// account (a dummy one when there is none), so timing does not tell whether
// an email is registered.
func (s *Service) checkPassword(ctx context.Context, email, password string) (*model.User, error) {
	conflict, err := s.users.ConflictOf(ctx, email)
	if err != nil {
		return nil, apperr.InternalErr(err)
	}
	if conflict != nil {
		return nil, s.checkConflicting(ctx, conflict, password)
	}
	u, err := s.users.FindByEmail(ctx, email)
	if err != nil {
		if errors.Is(err, model.ErrNotFound) {
			_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
			return nil, s.failure(errNotRegistered)
		}
		return nil, apperr.InternalErr(err)
	}
	if !s.passwordMatches(u, password) {
		return nil, s.failure(errWrongPassword)
	}
	return u, nil
}

// checkConflicting answers a sign-in for an address that several stored
// accounts share up to letter case. A password that matches none is an
// ordinary failure; one that matches is refused too, with a message that
// says why, because choosing an account would be a guess.
func (s *Service) checkConflicting(ctx context.Context, conflict *model.EmailConflict, password string) error {
	users, err := s.users.ActiveByIDs(ctx, conflict.UserIDs)
	if err != nil {
		return apperr.InternalErr(err)
	}
	if len(users) == 0 {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return s.failure(errNotRegistered)
	}
	var matched []string
	for i := range users {
		if s.passwordMatches(&users[i], password) {
			matched = append(matched, users[i].ID.Hex())
		}
	}
	if len(matched) == 0 {
		return s.failure(errWrongPassword)
	}
	s.log.Warn("sign-in refused: several accounts use this email in different letter case",
		"email", conflict.Email, "users", conflict.UserIDs, "password_matches", matched)
	return errAmbiguousEmail
}

func (s *Service) passwordMatches(u *model.User, password string) bool {
	hash := []byte(u.Password)
	if u.Password == "" {
		hash = s.dummyHash // never matches; keeps the timing of a real check
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && u.Password != ""
}

// failure is the answer to bad credentials: the reference's specific one,
// or the same 401 for both cases when uniform errors are configured.
func (s *Service) failure(specific *apperr.Error) error {
	if s.uniform {
		return errBadCredentials
	}
	return specific
}

func (s *Service) issue(ctx context.Context, userID bson.ObjectID, info *userdto.InfoPrivateUser) (*dto.UserAuth, error) {
	pair, _, err := s.newPair(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	return &dto.UserAuth{User: info, Tokens: pair}, nil
}

// newPair opens a keystore in family ("" for a new session) and signs its pair.
func (s *Service) newPair(ctx context.Context, userID bson.ObjectID, family string) (token.Pair, *ksmodel.Keystore, error) {
	ks, err := s.keystores.Create(ctx, userID, family)
	if err != nil {
		return token.Pair{}, nil, apperr.InternalErr(err)
	}
	pair, err := s.signer.Sign(userID.Hex(), ks.PKey, ks.SKey, time.Now())
	if err != nil {
		return token.Pair{}, nil, apperr.InternalErr(err)
	}
	return pair, ks, nil
}

// revocationError turns a failed revocation into the client's answer.
func revocationError(err error) error {
	if errors.Is(err, keystore.ErrRevocationUnavailable) {
		return errRevocationUnavailable
	}
	return apperr.InternalErr(err)
}

// Refresh exchanges a token pair for a new one, once. The access
// token must carry our signature but may have expired; the refresh token is
// checked fully. Of concurrent refreshes of one pair exactly one succeeds:
// the keystore delete decides (see keystore.Service.Revoke).
//
// A refresh token that was already consumed, presented again (or by several
// refreshes at once), means someone else may hold a copy: the whole session
// (every keystore of its family, so the new pair too) is revoked, as the
// OAuth 2.0 security best current practice asks for rotated refresh tokens.
func (s *Service) Refresh(ctx context.Context, header, refreshToken string) (token.Pair, error) {
	raw, err := bearerToken(header)
	if err != nil {
		return token.Pair{}, err
	}
	access, err := s.signer.VerifySignature(raw)
	if err != nil {
		return token.Pair{}, tokenError(err, errInvalidAccessClaims)
	}
	refresh, err := s.signer.VerifyRefresh(refreshToken, time.Now())
	if err != nil {
		return token.Pair{}, tokenError(err, errInvalidRefreshClaims)
	}
	if access.Subject != refresh.Subject {
		return token.Pair{}, errClaimsMismatch
	}
	if _, err := s.users.Info(ctx, access.Subject); err != nil {
		if errors.Is(err, model.ErrNotFound) {
			return token.Pair{}, errRefreshSubject
		}
		return token.Pair{}, apperr.InternalErr(err)
	}
	client, err := bson.ObjectIDFromHex(access.Subject)
	if err != nil {
		return token.Pair{}, errInvalidAccessClaims
	}
	ks, err := s.keystores.FindPair(ctx, client, access.ID, refresh.ID)
	if err != nil {
		if errors.Is(err, ksmodel.ErrNotFound) {
			return token.Pair{}, s.refusedPair(ctx, client, refresh.ID)
		}
		return token.Pair{}, apperr.InternalErr(err)
	}
	// Recorded before the keystore goes, so whoever finds no keystore for
	// this refresh token from now on also finds it consumed. A record left
	// by a refresh that then fails is harmless: it is consulted only once
	// the keystore is gone, and then the token may no longer be used anyway.
	if err := s.keystores.RecordRotation(ctx, ks); err != nil {
		return token.Pair{}, apperr.InternalErr(err)
	}
	won, err := s.keystores.Revoke(ctx, client, ks.ID, ks.PKey, access.ExpiresAt.Add(token.Leeway))
	if err != nil {
		return token.Pair{}, revocationError(err)
	}
	family := ks.FamilyOf()
	if !won {
		// A concurrent refresh of this pair won this instant: the same
		// client's duplicate within the grace period (exactly one refresh
		// succeeds, and its pair stays valid), reuse without one.
		if s.grace > 0 {
			return token.Pair{}, errClaimsIDs
		}
		return token.Pair{}, s.reused(ctx, client, family)
	}
	pair, next, err := s.newPair(ctx, client, family)
	if err != nil {
		return token.Pair{}, err
	}
	// A reuse detected while the new keystore was being created revoked the
	// family; the new pair must not outlive it (see keystore.RevokeFamily).
	switch revoked, err := s.keystores.FamilyRevoked(ctx, family); {
	case err != nil:
		return token.Pair{}, apperr.InternalErr(err)
	case revoked:
		if _, err := s.keystores.Revoke(ctx, client, next.ID, next.PKey, time.Now().Add(s.signer.AccessValidity()+token.Leeway)); err != nil {
			return token.Pair{}, revocationError(err)
		}
		return token.Pair{}, errClaimsIDs
	}
	return pair, nil
}

// refusedPair answers a refresh whose pair has no keystore: unknown, signed
// out, or already refreshed. In the last case the refresh token is being
// reused and its session ends.
func (s *Service) refusedPair(ctx context.Context, client bson.ObjectID, refreshID string) error {
	family, consumedAt, consumed, err := s.keystores.ConsumedFamily(ctx, client, refreshID)
	switch {
	case err != nil:
		return apperr.InternalErr(err)
	case !consumed:
		return errClaimsIDs
	case time.Since(consumedAt) < s.grace:
		// A duplicate of the refresh that just consumed it (see ReuseGrace).
		s.log.Info("refresh token presented again within the reuse grace period; refused, session kept",
			"user", client.Hex(), "family", family)
		return errClaimsIDs
	}
	return s.reused(ctx, client, family)
}

// reused revokes the session of a reused refresh token. The client gets the
// same 401 as for any refused pair; the log says what happened.
func (s *Service) reused(ctx context.Context, client bson.ObjectID, family string) error {
	s.log.Warn("refresh token reused; revoking its whole session", "user", client.Hex(), "family", family)
	if err := s.keystores.RevokeFamily(ctx, client, family); err != nil {
		return revocationError(err)
	}
	return errClaimsIDs
}

// SignOut ends the session: the token is refused on every replica from now
// on and the keystore is deleted. If that cannot be guaranteed (the shared
// revocation marker cannot be written) the session stays valid and the
// answer is a 503, never a success that some replicas would not honour.
func (s *Service) SignOut(ctx context.Context, sess *Session) error {
	if _, err := s.keystores.Revoke(ctx, sess.UserID, sess.KeystoreID, sess.PKey, sess.ExpiresAt.Add(token.Leeway)); err != nil {
		return revocationError(err)
	}
	return nil
}
