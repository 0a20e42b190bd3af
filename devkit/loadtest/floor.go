package loadtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// FloorPath is the route the floor server answers.
const FloorPath = "/floor"

// floorEnvelope is the floor's answer: a success envelope of the services'
// shape, 49 bytes once encoded.
type floorEnvelope struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// Floor is a trivial gin service: gin.New() (no middleware) in release mode,
// one GET route encoding a 49-byte JSON envelope. Nothing a gin service does
// per request can be cheaper, so on a given machine its throughput is the
// ceiling the real services are compared against, in the same run and under
// the same load.
type Floor struct {
	URL string // base URL, e.g. http://127.0.0.1:41234
	srv *http.Server
	ln  net.Listener
}

// StartFloor serves the floor on a free loopback port until Close.
func StartFloor() (*Floor, error) {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.GET(FloorPath, func(c *gin.Context) {
		c.JSON(http.StatusOK, floorEnvelope{Code: "10000", Status: http.StatusOK, Message: "success"})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Floor{URL: "http://" + ln.Addr().String(), ln: ln,
		srv: &http.Server{Handler: engine, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err) // Serve only fails this way on a broken listener
		}
	}()
	return f, nil
}

// Close stops the floor server.
func (f *Floor) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return f.srv.Shutdown(ctx)
}
