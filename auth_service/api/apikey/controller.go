package apikey

import (
	"github.com/gin-gonic/gin"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/httpx"
)

// HeaderName carries the key (case-insensitive, like every HTTP header).
const HeaderName = "x-api-key"

var (
	errMissingKey = apperr.Unauthorized("permission denied: missing x-api-key header")
	errInvalidKey = apperr.Denied("permission denied: invalid x-api-key")
)

type Controller struct{ keys *Service }

func NewController(keys *Service) *Controller { return &Controller{keys: keys} }

// MountRoutes adds GET /verify/apikey under group (base path /).
func (ctl *Controller) MountRoutes(group gin.IRoutes) {
	group.GET("/verify/apikey", ctl.verify)
}

// verify answers 401 without a key, 403 for an unknown or disabled key and
// 200 otherwise. A store failure is a 500 rather than the reference's 403:
// the gateway must not report valid keys as invalid during an outage.
func (ctl *Controller) verify(c *gin.Context) {
	key := c.GetHeader(HeaderName)
	if key == "" {
		httpx.Fail(c, errMissingKey)
		return
	}
	active, err := ctl.keys.IsActive(c.Request.Context(), key)
	switch {
	case err != nil:
		httpx.Fail(c, apperr.InternalErr(err))
	case !active:
		httpx.Fail(c, errInvalidKey)
	default:
		httpx.OK(c, "success")
	}
}
