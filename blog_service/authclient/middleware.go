package authclient

import (
	"github.com/gin-gonic/gin"

	"blogplatform/chassis/httpx"
)

// Require is the middleware of a protected route group: authentication, then
// authorization for role (one NATS request, see Check), both before any
// validation of the request. The request carries the HTTP request's context,
// so a client that goes away stops the wait. Behind it, User returns the
// authenticated user.
func (c *Client) Require(role string) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		user, err := c.Check(ctx.Request.Context(), ctx.GetHeader("Authorization"), role)
		if err != nil {
			httpx.Fail(ctx, err)
			return
		}
		setUser(ctx, user)
		ctx.Next()
	}
}
