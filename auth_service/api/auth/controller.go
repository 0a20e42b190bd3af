package auth

import (
	"context"
	"errors"

	"github.com/gin-gonic/gin"

	"blogplatform/auth_service/api/auth/dto"
	"blogplatform/auth_service/api/auth/message"
	"blogplatform/auth_service/api/auth/throttle"
	"blogplatform/auth_service/api/user"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
)

const sessionKey = "auth.session"

// Controller serves the auth routes (base path /) and the NATS group auth.
type Controller struct {
	auth          *Service
	signInLimiter *throttle.AddressLimiter
	signUpLimiter *throttle.AddressLimiter
}

// NewController takes one limiter per limited route: each has its own budget.
func NewController(auth *Service, signUp, signIn *throttle.AddressLimiter) *Controller {
	return &Controller{auth: auth, signUpLimiter: signUp, signInLimiter: signIn}
}

// Authentication is the middleware of authenticated routes: on success the
// user (user.Current) and the session are in the context, otherwise the
// request ends with a 401.
func (ctl *Controller) Authentication() gin.HandlerFunc {
	return func(c *gin.Context) {
		sess, err := ctl.auth.Authenticate(c.Request.Context(), c.GetHeader("Authorization"))
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		user.SetCurrent(c, sess.User)
		c.Set(sessionKey, sess)
		c.Next()
	}
}

func (ctl *Controller) MountRoutes(group gin.IRoutes) {
	group.POST("/signup/basic", NoStore, limited(ctl.signUpLimiter), ctl.signUp)
	group.POST("/signin/basic", NoStore, limited(ctl.signInLimiter), ctl.signIn)
	group.POST("/token/refresh", NoStore, ctl.refresh)
	group.DELETE("/signout", ctl.Authentication(), ctl.signOut)
}

var errTooManyRequests = apperr.New(apperr.TooManyRequests, "too many requests")

// limited answers 429 `too many requests` with Retry-After when the client
// address's budget (shared by every replica) is spent.
func limited(l *throttle.AddressLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ok, wait := l.Allow(c.Request.Context(), c.ClientIP()); !ok {
			c.Header("Retry-After", throttle.RetryAfterSeconds(wait))
			httpx.Fail(c, errTooManyRequests)
			return
		}
		c.Next()
	}
}

func (ctl *Controller) signUp(c *gin.Context) {
	var body dto.SignUpBasic
	if err := httpx.BindJSON(c, &body); err != nil {
		httpx.Fail(c, err)
		return
	}
	res, err := ctl.auth.SignUp(c.Request.Context(), body)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "success", res)
}

func (ctl *Controller) signIn(c *gin.Context) {
	var body dto.SignInBasic
	if err := httpx.BindJSON(c, &body); err != nil {
		httpx.Fail(c, err)
		return
	}
	res, err := ctl.auth.SignIn(c.Request.Context(), body)
	if err != nil {
		var throttled *throttledError
		if errors.As(err, &throttled) {
			c.Header("Retry-After", throttle.RetryAfterSeconds(throttled.Wait))
		}
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "success", res)
}

// refresh validates the body before looking at the header, like the
// reference (`{}` with a token is a 400 `refreshToken is required`).
func (ctl *Controller) refresh(c *gin.Context) {
	var body dto.TokenRefresh
	if err := httpx.BindJSON(c, &body); err != nil {
		httpx.Fail(c, err)
		return
	}
	pair, err := ctl.auth.Refresh(c.Request.Context(), c.GetHeader("Authorization"), body.RefreshToken)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "success", pair)
}

func (ctl *Controller) signOut(c *gin.Context) {
	sess, _ := c.MustGet(sessionKey).(*Session)
	if err := ctl.auth.SignOut(c.Request.Context(), sess); err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.OK(c, "signout success")
}

// NoStore marks a response that carries tokens or profile data as never to be
// stored by a browser or shared cache: a proxy that cached it would hand one
// user's tokens or email to the next client. Set before the handler, so error
// answers of these routes carry it too.
func NoStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}

// AuthenticationEndpoint answers auth.authentication with the user of the header.
func (ctl *Controller) AuthenticationEndpoint(ctx context.Context, req message.AuthenticationRequest) (authwire.User, error) {
	sess, err := ctl.auth.Authenticate(ctx, *req.Value)
	if err != nil {
		return authwire.User{}, err
	}
	return wireUser(sess.User.ID, sess.User.Name, sess.User.Email, sess.User.ProfilePicURL), nil
}

// AuthorizationEndpoint answers auth.authorization with the user re-read
// from the store when it holds one of the roles.
func (ctl *Controller) AuthorizationEndpoint(ctx context.Context, req message.AuthorizationRequest) (authwire.User, error) {
	u, err := ctl.auth.Authorize(ctx, req.User.ID, req.Roles)
	if err != nil {
		return authwire.User{}, err
	}
	return wireUser(u.ID, u.Name, u.Email, u.ProfilePicURL), nil
}

// AuthenticateAuthorizeEndpoint answers auth.authenticate.authorize: the
// user of the header when it holds one of the roles, else the error
// auth.authentication or auth.authorization would have given.
func (ctl *Controller) AuthenticateAuthorizeEndpoint(ctx context.Context, req message.AuthenticateAuthorizeRequest) (authwire.User, error) {
	u, err := ctl.auth.AuthenticateAuthorize(ctx, *req.Value, req.Roles)
	if err != nil {
		return authwire.User{}, err
	}
	return wireUser(u.ID, u.Name, u.Email, u.ProfilePicURL), nil
}

func wireUser(id, name, email string, pic *string) authwire.User {
	return authwire.User{ID: id, Name: name, Email: email, ProfilePicURL: pic}
}
