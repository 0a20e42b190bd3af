// Package authclient is blog_service's only way to authenticate and authorize
// users: NATS requests to auth_service (auth.authentication, then
// auth.authorization) and profile look-ups (auth.profile.user), with the
// chassis client's deadline and circuit breaker.
package authclient

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
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

// Profile returns the public profile of the user with id (hex).
func (c *Client) Profile(ctx context.Context, id string) (authwire.User, error) {
	var user authwire.User
	err := c.rpc.Request(ctx, authwire.SubjectProfileUser, authwire.Text{Value: id}, &user)
	return user, mapError(err)
}

// mapError keeps auth_service's own answers (status and bare message, e.g.
// 401 "permission denied: missing Authorization") and turns every failure to
// get an answer into 503. A 5xx answered by auth_service is also a 503 here:
// from this service's point of view auth could not do its job, and its
// message is not ours to relay.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var remote *apperr.Error
	if !errors.Is(err, natsx.ErrUnavailable) && errors.As(err, &remote) && remote.Status() < http.StatusInternalServerError {
		return remote
	}
	return apperr.Wrap(apperr.Unavailable, UnavailableMessage, err)
}

const userKey = "authclient.user"

// Require is the middleware of a protected route group: authentication, then
// authorization for role, both before any validation of the request. Both
// calls carry the HTTP request's context, so a client that goes away stops
// the wait.
func (c *Client) Require(role string) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		reqCtx := ctx.Request.Context()
		user, err := c.Authenticate(reqCtx, ctx.GetHeader("Authorization"))
		if err != nil {
			httpx.Fail(ctx, err)
			return
		}
		if err := c.Authorize(reqCtx, user, role); err != nil {
			httpx.Fail(ctx, err)
			return
		}
		ctx.Set(userKey, user)
		ctx.Next()
	}
}

// User is the authenticated user Require stored; only valid behind Require.
func User(c *gin.Context) authwire.User {
	u, _ := c.Get(userKey)
	user, _ := u.(authwire.User)
	return user
}
