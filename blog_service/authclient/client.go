// Package authclient is blog_service's only way to authenticate and authorize
// users: NATS requests to auth_service (auth.authenticate.authorize, or
// auth.authentication then auth.authorization against an auth that does not
// serve the combined subject) and profile look-ups (auth.profile.user), with
// the chassis client's deadline and circuit breaker. client.go asks auth,
// middleware.go guards routes with it, context.go carries the user it found
// through a request.
package authclient

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/mongox"
	"blogplatform/chassis/natsx"
)

// Roles the blog routes require.
const (
	RoleAuthor = "AUTHOR"
	RoleEditor = "EDITOR"
)

// UnavailableMessage is the 503 answer when auth_service cannot be reached
// (no responders, timeout, broken reply, open circuit).
const UnavailableMessage = "authentication service unavailable"

// Requester is the request side of natsx.Client.
type Requester interface {
	Request(ctx context.Context, subject string, req, resp any) error
}

// SeparateWindow is how long Check keeps using the two reference subjects
// after auth.authenticate.authorize got no responders. Against the
// reference's auth (which never serves it) that costs one wasted round trip
// per window instead of one per request; against an auth that was only
// down, the combined subject is back in use within the window.
const SeparateWindow = 30 * time.Second

// Client asks auth_service.
type Client struct {
	rpc Requester
	now func() time.Time
	// separateUntil (Unix nanoseconds) is when Check may try the combined
	// subject again; zero until it first got no responders.
	separateUntil atomic.Int64
	// sessions, when not nil, holds Check's recent successes (sessions.go).
	sessions *Sessions
}

func New(rpc Requester) *Client { return &Client{rpc: rpc, now: time.Now} }

// Check authenticates the raw Authorization header (possibly "") and
// authorizes one of roles in one request to auth.authenticate.authorize.
// When nothing serves that subject (a reference auth_service), it uses
// Authenticate then Authorize, and keeps doing so for SeparateWindow. The
// errors are the same either way: the authentication failure, else the
// authorization failure.
//
// With a session cache (WithSessions), a success is remembered for the
// same header and roles until an event, the token's exp or the cache's TTL
// ends it; failures are always asked again. Only the combined subject's
// answers are remembered: an auth that does not serve it (the reference's)
// publishes no change events either, so nothing would drop them.
func (c *Client) Check(ctx context.Context, header string, roles ...string) (authwire.User, error) {
	var key string
	if c.sessions != nil && header != "" {
		key = sessionKey(header, roles)
		if user, ok := c.cached(key); ok {
			return user, nil
		}
	}
	if c.now().UnixNano() >= c.separateUntil.Load() {
		var user authwire.User
		// Read before asking: an event that lands while auth answers
		// refuses the fill, since the answer may predate the change.
		generation := c.sessions.Generation()
		// Without the no-responders retries: nothing serving the subject
		// most likely means a reference auth, and the two subjects below
		// retry on their own when auth is merely restarting.
		err := c.rpc.Request(natsx.WithoutNoResponderRetry(ctx), authwire.SubjectAuthenticateAuthorize,
			authwire.AuthenticateAuthorizeRequest{Value: header, Roles: roles}, &user)
		if !errors.Is(err, nats.ErrNoResponders) {
			if err != nil {
				return user, mapError(err)
			}
			if err := checkUserID(authwire.SubjectAuthenticateAuthorize, user); err != nil {
				return user, err
			}
			if key != "" {
				c.remember(key, header, user, generation)
			}
			return user, nil
		}
		c.separateUntil.Store(c.now().Add(SeparateWindow).UnixNano())
	}
	user, err := c.Authenticate(ctx, header)
	if err != nil {
		return user, err
	}
	return user, c.Authorize(ctx, user, roles...)
}

// Authenticate resolves the raw Authorization header (possibly "") to a user.
func (c *Client) Authenticate(ctx context.Context, header string) (authwire.User, error) {
	var user authwire.User
	if err := c.rpc.Request(ctx, authwire.SubjectAuthentication, authwire.Text{Value: header}, &user); err != nil {
		return user, mapError(err)
	}
	return user, checkUserID(authwire.SubjectAuthentication, user)
}

// checkUserID refuses a user without a usable id: every blog is owned by the
// user's id, so such an answer is a broken reply, not a user.
func checkUserID(subject string, user authwire.User) error {
	if !mongox.IsObjectIDHex(user.ID) {
		return apperr.Wrap(apperr.Unavailable, UnavailableMessage, errors.New(subject+": reply has no valid user id"))
	}
	return nil
}

// Authorize checks that user holds one of roles.
func (c *Client) Authorize(ctx context.Context, user authwire.User, roles ...string) error {
	var reply authwire.User
	err := c.rpc.Request(ctx, authwire.SubjectAuthorization, authwire.AuthorizationRequest{User: &user, Roles: roles}, &reply)
	return mapError(err)
}

// Profile returns the public profile of the user with id (hex). A user auth
// does not know (missing, inactive, or not an id at all) is an apperr
// NotFound.
func (c *Client) Profile(ctx context.Context, id string) (authwire.User, error) {
	var user authwire.User
	err := c.rpc.Request(ctx, authwire.SubjectProfileUser, authwire.Text{Value: id}, &user)
	return user, mapError(err)
}

// bareReplyCode is what an error reply without a status prefix means, by
// subject. Older auth services (the reference's) answer some failures with
// a bare driver text, e.g. "mongo: no documents in result" for a user
// missing from the store; their blog answered any authentication failure
// with 401 and any authorization failure with 403, and a failed profile
// look-up means the user is not there.
var bareReplyCode = map[string]apperr.Code{
	authwire.SubjectAuthentication: apperr.Unauthenticated,
	authwire.SubjectAuthorization:  apperr.Forbidden,
	authwire.SubjectProfileUser:    apperr.NotFound,
}

// mapError keeps auth_service's own answers (status and bare message, e.g.
// 401 "permission denied: missing Authorization"), gives an answer without
// a status the one its subject implies (bareReplyCode), and turns every
// failure to get an answer into 503. A 5xx answered by auth_service is also
// a 503 here: from this service's point of view auth could not do its job,
// and its message is not ours to relay.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var bare *natsx.BareError
	if errors.As(err, &bare) {
		if code, ok := bareReplyCode[bare.Subject]; ok {
			return apperr.Wrap(code, bare.Message, err)
		}
	}
	var remote *apperr.Error
	if !errors.Is(err, natsx.ErrUnavailable) && errors.As(err, &remote) && remote.Status() < http.StatusInternalServerError {
		return remote
	}
	return apperr.Wrap(apperr.Unavailable, UnavailableMessage, err)
}
