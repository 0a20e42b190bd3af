package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"blogplatform/chassis/metrics"
)

// floorBody is the 49-byte success envelope the floor handler answers.
var floorBody = []byte(`{"code":"10000","status":200,"message":"success"}`)

// discardWriter is a reusable ResponseWriter, so the benchmarks measure the
// router and middleware, not a recorder's buffers.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchServe(b *testing.B, h http.Handler, path string) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	if w.status != http.StatusOK && w.status != 0 {
		b.Fatalf("status %d", w.status)
	}
}

func floorHandler(c *gin.Context) { c.Data(http.StatusOK, "application/json", floorBody) }

// BenchmarkBareGin is the floor: gin.New() with one trivial route.
func BenchmarkBareGin(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	g.GET("/id/:id", floorHandler)
	benchServe(b, g, "/id/66a0c6b2f1e4d3c2b1a09f8e")
}

// BenchmarkEngine is the same route behind the platform's middleware (request
// id, tracing with the no-op provider, metrics, access log as JSON to
// io.Discard, recovery, body limit) at a few access-log sample rates.
func BenchmarkEngine(b *testing.B) {
	for _, tc := range []struct {
		name   string
		sample float64
	}{{"log-all", 1}, {"log-none", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			log := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("service", "bench")
			e := NewEngine(Options{Logger: log, Metrics: metrics.New("bench"), SuccessLogSample: &tc.sample})
			e.GET("/id/:id", floorHandler)
			benchServe(b, e, "/id/66a0c6b2f1e4d3c2b1a09f8e")
		})
	}
}
