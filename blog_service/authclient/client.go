// Package authclient is blog_service's only way to authenticate and authorize
// users: NATS requests to auth_service (auth.authentication, then
// auth.authorization) and profile look-ups (auth.profile.user), with the
// chassis client's deadline and circuit breaker. client.go asks auth,
// middleware.go guards routes with it, context.go carries the user it found
// through a request.
package authclient

import (
	"context"
	"errors"
	"net/http"

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

// Client asks auth_service.
type Client struct{ rpc Requester }

func New(rpc Requester) *Client { return &Client{rpc: rpc} }

// Authenticate resolves the raw Authorization header (possibly "") to a user.
func (c *Client) Authenticate(ctx context.Context, header string) (authwire.User, error) {
	var user authwire.User
	if err := c.rpc.Request(ctx, authwire.SubjectAuthentication, authwire.Text{Value: header}, &user); err != nil {
		return user, mapError(err)
	}
	if !mongox.IsObjectIDHex(user.ID) {
		// Every blog is owned by the user's id: an answer without a usable
		// one is a broken reply, not a user.
		return user, apperr.Wrap(apperr.Unavailable, UnavailableMessage, errors.New("auth.authentication: reply has no valid user id"))
	}
	return user, nil
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
