package authclient

import (
	"github.com/gin-gonic/gin"

	"blogplatform/chassis/authwire"
)

const userKey = "authclient.user"

// setUser stores the authenticated user for the rest of the request.
func setUser(c *gin.Context, u authwire.User) { c.Set(userKey, u) }

// User is the authenticated user Require stored; only valid behind Require.
func User(c *gin.Context) authwire.User {
	u, _ := c.Get(userKey)
	user, _ := u.(authwire.User)
	return user
}
