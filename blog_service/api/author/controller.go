package author

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

// Mount registers /author/... behind authentication and the AUTHOR role
// (checked before any validation). Routes have no trailing slash; the
// engine accepts `/author/` as well.
func (ctl *Controller) Mount(r gin.IRouter) {
	g := r.Group("/author", ctl.auth.Require(authclient.RoleAuthor))
	g.POST("", ctl.create)
	g.PUT("", ctl.update)
	g.GET("/id/:id", ctl.get)
	g.DELETE("/id/:id", ctl.delete)
	g.PUT("/submit/id/:id", ctl.submit)
	g.PUT("/withdraw/id/:id", ctl.withdraw)
	g.GET("/drafts", ctl.list(model.Drafts))
	g.GET("/submitted", ctl.list(model.SubmittedBlogs))
	g.GET("/published", ctl.list(model.PublishedBlogs))
}

func (ctl *Controller) create(c *gin.Context) {
	var body CreateBlog
	if err := httpx.BindJSON(c, &body); err != nil {
		reply.Fail(c, err)
		return
	}
	if err := checkTags(body.Tags); err != nil {
		reply.Fail(c, err)
		return
	}
	blog, err := ctl.service.Create(c.Request.Context(), authclient.User(c), body)
	if err != nil {
		reply.Fail(c, err)
		return
	}
	httpx.Data(c, "blog created successfully", blog)
}

func (ctl *Controller) update(c *gin.Context) {
	var body UpdateBlog
	if err := httpx.BindJSON(c, &body); err != nil {
		reply.Fail(c, err)
		return
	}
	if body.Tags != nil {
		if err := checkTags(*body.Tags); err != nil {
			reply.Fail(c, err)
			return
		}
	}
	blog, err := ctl.service.Update(c.Request.Context(), authclient.User(c), body)
	if err != nil {
		reply.Fail(c, err)
		return
	}
	httpx.Data(c, "blog updated successfully", blog)
}

func (ctl *Controller) get(c *gin.Context) {
	id, given, ok := dto.BindID(c)
	if !ok {
		return
	}
	blog, err := ctl.service.Get(c.Request.Context(), authclient.User(c), id, given)
	if err != nil {
		reply.Fail(c, err)
		return
	}
	httpx.Data(c, "success", blog)
}

func (ctl *Controller) delete(c *gin.Context) {
	ctl.flag(c, ctl.service.Delete, "blog deleted successfully")
}

func (ctl *Controller) submit(c *gin.Context) {
	ctl.flag(c, ctl.service.Submit, "blog submitted successfully")
}

func (ctl *Controller) withdraw(c *gin.Context) {
	ctl.flag(c, ctl.service.Withdraw, "blog withdrawn successfully")
}

type flagFunc = func(ctx context.Context, user authwire.User, id bson.ObjectID) error

func (ctl *Controller) flag(c *gin.Context, apply flagFunc, message string) {
	id, _, ok := dto.BindID(c)
	if !ok {
		return
	}
	if err := apply(c.Request.Context(), authclient.User(c), id); err != nil {
		reply.Fail(c, err)
		return
	}
	httpx.OK(c, message)
}

func (ctl *Controller) list(list model.AuthorList) gin.HandlerFunc {
	return func(c *gin.Context) {
		var q dto.Pagination
		if err := httpx.BindQuery(c, &q); err != nil {
			reply.Fail(c, err)
			return
		}
		data, err := ctl.service.List(c.Request.Context(), authclient.User(c), list, q.StorePage())
		if err != nil {
			reply.Fail(c, err)
			return
		}
		reply.Success(c, data)
	}
}
