package editor

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/httpx"
)

type Controller struct {
	service *Service
	auth    *authclient.Client
}

func NewController(s *Service, auth *authclient.Client) *Controller {
	return &Controller{service: s, auth: auth}
}

// Mount registers /editor/... behind authentication and the EDITOR role.
func (ctl *Controller) Mount(r gin.IRouter) {
	g := r.Group("/editor", ctl.auth.Require(authclient.RoleEditor))
	g.GET("/id/:id", ctl.get)
	g.PUT("/publish/id/:id", ctl.publish)
	g.PUT("/unpublish/id/:id", dto.ActionHandler(ctl.service.Unpublish, authclient.User, "blog unpublished successfully"))
	g.GET("/submitted", ctl.list(model.SubmittedBlogs))
	g.GET("/published", ctl.list(model.PublishedBlogs))
}

func (ctl *Controller) get(c *gin.Context) {
	id, given, ok := dto.BindID(c)
	if !ok {
		return
	}
	blog, err := ctl.service.Get(c.Request.Context(), id, given)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "success", blog)
}

// PublishBlog is the optional body of PUT /editor/publish/id/:id. A
// request without a body (or without updatedAt) publishes whatever state
// the blog is in, as the reference does.
type PublishBlog struct {
	// UpdatedAt is the blog's updatedAt as the editor saw it (GET
	// /editor/id/:id): the publish is refused with 409 if the blog changed
	// since.
	UpdatedAt *string `json:"updatedAt"`
}

const updatedAtFormatMessage = "updatedAt must be the blog's updatedAt as an RFC 3339 date-time, e.g. 2024-07-01T10:00:00.123Z"

// reviewedAt reads the optional body; nil when the request sets no
// precondition.
func reviewedAt(c *gin.Context) (*time.Time, error) {
	if c.Request.Body == nil {
		return nil, nil
	}
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, apperr.New(apperr.TooLarge, "request body too large")
		}
		return nil, apperr.BadRequest("request body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var body PublishBlog
	if err := httpx.DecodeJSON(raw, &body); err != nil {
		return nil, err
	}
	if body.UpdatedAt == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *body.UpdatedAt)
	if err != nil {
		return nil, apperr.BadRequest(updatedAtFormatMessage)
	}
	return &t, nil
}

func (ctl *Controller) publish(c *gin.Context) {
	id, _, ok := dto.BindID(c)
	if !ok {
		return
	}
	reviewed, err := reviewedAt(c)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	if err := ctl.service.Publish(c.Request.Context(), authclient.User(c), id, reviewed); err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.OK(c, "blog published successfully")
}

func (ctl *Controller) list(list model.AuthorList) gin.HandlerFunc {
	return func(c *gin.Context) {
		var q dto.Pagination
		if err := httpx.BindQuery(c, &q); err != nil {
			httpx.Fail(c, err)
			return
		}
		data, err := ctl.service.List(c.Request.Context(), list, q.StorePage())
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.RawData(c, "success", data)
	}
}
