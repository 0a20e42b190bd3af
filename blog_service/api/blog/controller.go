package blog

import (
	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/dto"
	"blogplatform/chassis/httpx"
)

type Controller struct{ service *Service }

func NewController(s *Service) *Controller { return &Controller{service: s} }

// Mount registers GET /id/:id and GET /slug/:slug (public).
func (ctl *Controller) Mount(r gin.IRouter) {
	r.GET("/id/:id", ctl.byID)
	r.GET("/slug/:slug", ctl.bySlug)
}

func (ctl *Controller) byID(c *gin.Context) {
	id, _, ok := dto.BindID(c)
	if !ok {
		return
	}
	data, err := ctl.service.ByID(c.Request.Context(), id)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.RawData(c, "success", data)
}

func (ctl *Controller) bySlug(c *gin.Context) {
	var p dto.Slug
	if err := httpx.BindURI(c, &p); err != nil {
		httpx.Fail(c, err)
		return
	}
	data, err := ctl.service.BySlug(c.Request.Context(), p.Slug)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.RawData(c, "success", data)
}
