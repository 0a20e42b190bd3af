package author

import (
	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
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
	g.DELETE("/id/:id", dto.ActionHandler(ctl.service.Delete, authclient.User, "blog deleted successfully"))
	g.PUT("/submit/id/:id", dto.ActionHandler(ctl.service.Submit, authclient.User, "blog submitted successfully"))
	g.PUT("/withdraw/id/:id", dto.ActionHandler(ctl.service.Withdraw, authclient.User, "blog withdrawn successfully"))
	g.GET("/drafts", ctl.list(model.Drafts))
	g.GET("/submitted", ctl.list(model.SubmittedBlogs))
	g.GET("/published", ctl.list(model.PublishedBlogs))
}

func (ctl *Controller) create(c *gin.Context) {
	var body CreateBlog
	if err := bindBlog(c, &body); err != nil {
		httpx.Fail(c, err)
		return
	}
	blog, err := ctl.service.Create(c.Request.Context(), authclient.User(c), body)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "blog created successfully", blog)
}

func (ctl *Controller) update(c *gin.Context) {
	var body UpdateBlog
	if err := bindBlog(c, &body); err != nil {
		httpx.Fail(c, err)
		return
	}
	blog, err := ctl.service.Update(c.Request.Context(), authclient.User(c), body)
	if err != nil {
		httpx.Fail(c, err)
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
		httpx.Fail(c, err)
		return
	}
	httpx.Data(c, "success", blog)
}

func (ctl *Controller) list(list model.AuthorList) gin.HandlerFunc {
	return func(c *gin.Context) {
		var q dto.Pagination
		if err := httpx.BindQuery(c, &q); err != nil {
			httpx.Fail(c, err)
			return
		}
		data, err := ctl.service.List(c.Request.Context(), authclient.User(c), list, q.StorePage())
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.RawData(c, "success", data)
	}
}
