package user

import (
	"context"
	"errors"

	"github.com/gin-gonic/gin"

	"blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/message"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
)

// Messages of this controller.
const msgUserMissing = "user does not exist"

const currentUserKey = "auth.user"

// SetCurrent stores the authenticated user in the request context.
func SetCurrent(c *gin.Context, u *dto.InfoPrivateUser) { c.Set(currentUserKey, u) }

// Current returns the user stored by SetCurrent.
func Current(c *gin.Context) *dto.InfoPrivateUser {
	u, _ := c.MustGet(currentUserKey).(*dto.InfoPrivateUser)
	return u
}

// Controller serves /profile (HTTP) and auth.profile (NATS).
type Controller struct {
	users        *Service
	authenticate gin.HandlerFunc
}

// NewController needs the authentication middleware for /profile/mine.
func NewController(users *Service, authenticate gin.HandlerFunc) *Controller {
	return &Controller{users: users, authenticate: authenticate}
}

// MountRoutes adds the routes under group (base path /profile).
func (ctl *Controller) MountRoutes(group gin.IRoutes) {
	group.GET("/id/:id", ctl.publicProfile)
	group.GET("/mine", ctl.authenticate, ctl.privateProfile)
}

func (ctl *Controller) publicProfile(c *gin.Context) {
	var p dto.MongoID
	if err := httpx.BindURI(c, &p); err != nil {
		httpx.Fail(c, err)
		return
	}
	info, err := ctl.users.Info(c.Request.Context(), p.ID)
	if err != nil {
		httpx.Fail(c, notFoundOr(err))
		return
	}
	httpx.Data(c, "success", info.Public())
}

func (ctl *Controller) privateProfile(c *gin.Context) {
	u := Current(c)
	if raw := u.JSON(); raw != nil {
		httpx.RawData(c, "success", raw) // a shared snapshot, encoded once
		return
	}
	httpx.Data(c, "success", u)
}

// ProfileUser answers auth.profile.user: the user's name and picture, with
// "email":"" like the reference (its projection left email out).
func (ctl *Controller) ProfileUser(ctx context.Context, req message.ProfileRequest) (authwire.User, error) {
	info, err := ctl.users.Info(ctx, req.Value)
	if err != nil {
		return authwire.User{}, notFoundOr(err)
	}
	return authwire.User{ID: info.ID, Name: info.Name, ProfilePicURL: info.ProfilePicURL}, nil
}

func notFoundOr(err error) error {
	if errors.Is(err, model.ErrNotFound) {
		return apperr.Missing(msgUserMissing)
	}
	return apperr.InternalErr(err)
}
