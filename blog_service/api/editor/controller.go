package editor

import (
	"context"

	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/api/reply"
	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/authwire"
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
	g.PUT("/publish/id/:id", ctl.transition(ctl.service.Publish, "blog published successfully"))
	g.PUT("/unpublish/id/:id", ctl.transition(ctl.service.Unpublish, "blog unpublished successfully"))
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

type transitionFunc = func(ctx context.Context, editor authwire.User, id bson.ObjectID) error

func (ctl *Controller) transition(apply transitionFunc, message string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, _, ok := dto.BindID(c)
		if !ok {
			return
		}
		if err := apply(c.Request.Context(), authclient.User(c), id); err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.OK(c, message)
	}
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
		reply.Success(c, data)
	}
}
