package admin

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/auth"
	userdto "blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/httpx"
)

// Authorizer is auth.Service: it authenticates a request's Authorization
// header (401) and checks a user holds one of roles (403), as every role
// check of the platform. The two steps are separate so that the audit line
// of a refused call names who was refused.
type Authorizer interface {
	Authenticate(ctx context.Context, header string) (*auth.Session, error)
	Authorize(ctx context.Context, userID string, roles []string) (*userdto.InfoPrivateUser, error)
}

// Limits of the API-key listing and of a new key's comments.
const (
	DefaultKeyPage = 100
	MaxKeyPage     = 1000
	maxComments    = 10
	maxCommentLen  = 200
)

var (
	errLimit    = apperr.BadRequest("limit must be between 1 and 1000")
	errComments = apperr.BadRequest("comments must hold at most 10 entries of 1 to 200 characters")
)

// Context keys of an audited request.
const (
	adminKey  = "admin.user"
	targetKey = "admin.target"
)

// Controller serves /admin/... (base path /admin).
type Controller struct {
	svc   *Service
	authz Authorizer
}

// NewController serves svc's operations to the users authz accepts as ADMIN.
func NewController(svc *Service, authz Authorizer) *Controller {
	return &Controller{svc: svc, authz: authz}
}

// MountRoutes adds the routes under group (base path /admin). Each is
// audited, then requires ADMIN, then runs.
func (ctl *Controller) MountRoutes(group gin.IRoutes) {
	route := func(method, path, action string, h gin.HandlerFunc) {
		group.Handle(method, path, ctl.audit(action), ctl.requireAdmin, h)
	}
	route(http.MethodGet, "/apikeys", "apikeys.list", ctl.listKeys)
	route(http.MethodPost, "/apikeys", "apikeys.create", ctl.createKey)
	route(http.MethodDelete, "/apikeys/:id", "apikeys.revoke", byID(func(c *gin.Context, id bson.ObjectID) (any, error) {
		return ctl.svc.RevokeKey(c.Request.Context(), id)
	}))
	route(http.MethodGet, "/users", "users.find", ctl.findUser)
	route(http.MethodGet, "/users/:id", "users.show", byID(func(c *gin.Context, id bson.ObjectID) (any, error) {
		return ctl.svc.User(c.Request.Context(), id)
	}))
	route(http.MethodPost, "/users/:id/roles/:role", "users.roles.grant", ctl.grantRole)
	route(http.MethodDelete, "/users/:id/roles/:role", "users.roles.revoke", ctl.revokeRole)
	route(http.MethodPost, "/users/:id/disable", "users.disable", byID(func(c *gin.Context, id bson.ObjectID) (any, error) {
		return ctl.svc.Disable(c.Request.Context(), c.GetString(adminKey), id)
	}))
	route(http.MethodPost, "/users/:id/enable", "users.enable", byID(func(c *gin.Context, id bson.ObjectID) (any, error) {
		return ctl.svc.Enable(c.Request.Context(), id)
	}))
	route(http.MethodGet, "/users/:id/sessions", "sessions.list", byID(func(c *gin.Context, id bson.ObjectID) (any, error) {
		return ctl.svc.Sessions(c.Request.Context(), id)
	}))
	route(http.MethodDelete, "/users/:id/sessions", "sessions.end_all", byID(func(c *gin.Context, id bson.ObjectID) (any, error) {
		return ctl.svc.EndSessions(c.Request.Context(), id)
	}))
	route(http.MethodDelete, "/users/:id/sessions/:sessionId", "sessions.end", ctl.endSession)
}

// audit writes one line per call once it is answered: who (the caller's
// id, empty when the token was refused), what, on what, and how it ended.
// Nothing secret goes in: a created key is named by its id, never its value,
// and no header is logged.
func (ctl *Controller) audit(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		status := c.Writer.Status()
		attrs := []any{
			"audit", true,
			"action", action,
			"admin", c.GetString(adminKey),
			"target", target(c),
			"outcome", outcome(status),
			"status", status,
		}
		// The request logger adds the request id (and trace id).
		httpx.Logger(c).InfoContext(c.Request.Context(), "admin action", attrs...)
	}
}

// target names what a call acted on: the path's ids and role, or what the
// handler set (the id of a key it created, the email it looked up).
func target(c *gin.Context) string {
	if t := c.GetString(targetKey); t != "" {
		return t
	}
	var parts []string
	for _, name := range []string{"id", "role", "sessionId"} {
		if v := c.Param(name); v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func outcome(status int) string {
	switch {
	case status < 300:
		return "ok"
	case status == http.StatusUnauthorized:
		return "unauthenticated"
	case status == http.StatusForbidden:
		return "forbidden"
	case status == http.StatusNotFound:
		return "not_found"
	case status < 500:
		return "rejected"
	default:
		return "failed"
	}
}

var adminRoles = []string{model.RoleAdmin}

// requireAdmin lets only a signed-in ADMIN through: 401 without a valid
// token, 403 without the role. Answers carry emails and key values: never
// to be stored by a cache.
func (ctl *Controller) requireAdmin(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	sess, err := ctl.authz.Authenticate(c.Request.Context(), c.GetHeader("Authorization"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Set(adminKey, sess.User.ID)
	if _, err := ctl.authz.Authorize(c.Request.Context(), sess.User.ID, adminRoles); err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Next()
}

func (ctl *Controller) listKeys(c *gin.Context) {
	var q KeyPage
	if err := httpx.BindQuery(c, &q); err != nil {
		httpx.Fail(c, err)
		return
	}
	if q.Limit == 0 && c.Query("limit") == "" {
		q.Limit = DefaultKeyPage
	}
	if q.Limit < 1 || q.Limit > MaxKeyPage {
		httpx.Fail(c, errLimit)
		return
	}
	var after bson.ObjectID
	if q.After != "" {
		after, _ = bson.ObjectIDFromHex(strings.ToLower(q.After))
	}
	keys, err := ctl.svc.ListKeys(c.Request.Context(), after, q.Limit)
	respond(c, keys, err)
}

func (ctl *Controller) createKey(c *gin.Context) {
	var body CreateKeyRequest
	// The body is optional: a key without comments needs none.
	if c.Request.ContentLength != 0 {
		if err := httpx.BindJSON(c, &body); err != nil {
			httpx.Fail(c, err)
			return
		}
	}
	if len(body.Comments) > maxComments {
		httpx.Fail(c, errComments)
		return
	}
	for _, s := range body.Comments {
		if n := utf8.RuneCountInString(s); n == 0 || n > maxCommentLen {
			httpx.Fail(c, errComments)
			return
		}
	}
	key, err := ctl.svc.CreateKey(c.Request.Context(), body.Comments)
	if err == nil {
		c.Set(targetKey, "apikey="+key.ID)
	}
	respond(c, key, err)
}

func (ctl *Controller) findUser(c *gin.Context) {
	var q UserQuery
	if err := httpx.BindQuery(c, &q); err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Set(targetKey, "email="+model.NormalizeEmail(q.Email))
	u, err := ctl.svc.UserByEmail(c.Request.Context(), q.Email)
	respond(c, u, err)
}

func (ctl *Controller) grantRole(c *gin.Context) {
	id, code, ok := userAndRole(c)
	if !ok {
		return
	}
	u, err := ctl.svc.GrantRole(c.Request.Context(), id, code)
	respond(c, u, err)
}

func (ctl *Controller) revokeRole(c *gin.Context) {
	id, code, ok := userAndRole(c)
	if !ok {
		return
	}
	u, err := ctl.svc.RevokeRole(c.Request.Context(), c.GetString(adminKey), id, code)
	respond(c, u, err)
}

func userAndRole(c *gin.Context) (bson.ObjectID, string, bool) {
	id, ok := bindID(c)
	if !ok {
		return id, "", false
	}
	code, err := RoleCode(c.Param("role"))
	if err != nil {
		httpx.Fail(c, err)
		return id, "", false
	}
	return id, code, true
}

func (ctl *Controller) endSession(c *gin.Context) {
	var p UserSession
	if err := httpx.BindURI(c, &p); err != nil {
		httpx.Fail(c, err)
		return
	}
	id, _ := bson.ObjectIDFromHex(strings.ToLower(p.ID))
	sid, _ := bson.ObjectIDFromHex(strings.ToLower(p.SessionID))
	if err := ctl.svc.EndSession(c.Request.Context(), id, sid); err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.OK(c, "session ended")
}

// byID serves a route whose only parameter is :id: do runs with the id
// once it is valid, and its answer (or failure) is the response.
func byID(do func(c *gin.Context, id bson.ObjectID) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := bindID(c)
		if !ok {
			return
		}
		data, err := do(c, id)
		respond(c, data, err)
	}
}

// bindID validates :id (24 hexadecimal characters, any letter case) and
// parses it, or answers 400.
func bindID(c *gin.Context) (bson.ObjectID, bool) {
	var p PathID
	if err := httpx.BindURI(c, &p); err != nil {
		httpx.Fail(c, err)
		return bson.ObjectID{}, false
	}
	id, _ := bson.ObjectIDFromHex(strings.ToLower(p.ID)) // validated above
	return id, true
}

func respond(c *gin.Context, data any, err error) {
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "success", data)
}
