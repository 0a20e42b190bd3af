package list

import (
	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/dto"
	"blogplatform/chassis/httpx"
)

type Controller struct{ service *Service }

func NewController(s *Service) *Controller { return &Controller{service: s} }

// Mount registers the public lists under /list.
func (ctl *Controller) Mount(r gin.IRouter) {
	g := r.Group("/list")
	g.GET("/latest", ctl.latest)
	g.GET("/tag/:tag", ctl.tagged)
	g.GET("/similar/id/:id", ctl.similar)
}

func (ctl *Controller) latest(c *gin.Context) {
	var q dto.Pagination
	if err := httpx.BindQuery(c, &q); err != nil {
		httpx.Fail(c, err)
		return
	}
	data, err := ctl.service.Latest(c.Request.Context(), q.StorePage())
	respond(c, data, err)
}

// tagged validates the tag before the pagination, like the reference.
func (ctl *Controller) tagged(c *gin.Context) {
	var p dto.Tag
	if err := httpx.BindURI(c, &p); err != nil {
		httpx.Fail(c, err)
		return
	}
	if err := p.CheckTag(); err != nil {
		httpx.Fail(c, err)
		return
	}
	var q dto.Pagination
	if err := httpx.BindQuery(c, &q); err != nil {
		httpx.Fail(c, err)
		return
	}
	data, err := ctl.service.Tagged(c.Request.Context(), p.Tag, q.StorePage())
	respond(c, data, err)
}

func (ctl *Controller) similar(c *gin.Context) {
	id, _, ok := dto.BindID(c)
	if !ok {
		return
	}
	data, err := ctl.service.Similar(c.Request.Context(), id)
	respond(c, data, err)
}

func respond(c *gin.Context, data []byte, err error) {
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	httpx.RawData(c, "success", data)
}
