package authclient

import (
	"github.com/gin-gonic/gin"

	"blogplatform/chassis/httpx"
)

// Require is the middleware of a protected route group: authentication, then
// authorization for role, both before any validation of the request. Both
// calls carry the HTTP request's context, so a client that goes away stops
// the wait. Behind it, User returns the authenticated user.
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
		setUser(ctx, user)
		ctx.Next()
	}
}
