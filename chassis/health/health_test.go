package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestReadiness(t *testing.T) {
	var mongoDown, redisDown, natsDown atomic.Bool
	ping := func(down *atomic.Bool) func(context.Context) error {
		return func(context.Context) error {
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		}
	}
	h := New(0,
		Check{Name: "mongo", Required: true, Ping: ping(&mongoDown)},
		Check{Name: "nats", RequiredUntilUp: true, Ping: ping(&natsDown)},
		Check{Name: "redis", Ping: ping(&redisDown)},
	)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	h.Mount(r)
	get := func(path string) (int, Report) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		var rep Report
		_ = json.Unmarshal(w.Body.Bytes(), &rep)
		return w.Code, rep
	}

	steps := []struct {
		name                  string
		mongo, nats, redis    bool // down?
		drain                 bool
		wantStatus            int
		wantReport, wantRedis string
	}{
		{"nats not up yet at start", false, true, false, false, 503, "unavailable", "up"},
		{"everything up", false, false, false, false, 200, "ready", "up"},
		{"redis down is degraded", false, false, true, false, 200, "degraded", "down"},
		{"nats lost after start is degraded", false, true, false, false, 200, "degraded", "up"},
		{"mongo down", true, false, false, false, 503, "unavailable", "up"},
		{"draining", false, false, false, true, 503, "shutting_down", "up"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			mongoDown.Store(s.mongo)
			natsDown.Store(s.nats)
			redisDown.Store(s.redis)
			if s.drain {
				h.Drain()
			}
			status, rep := get("/health/ready")
			if status != s.wantStatus || rep.Status != s.wantReport || rep.Dependencies["redis"].Status != s.wantRedis {
				t.Fatalf("got %d %+v", status, rep)
			}
			if len(rep.Dependencies) != 3 {
				t.Fatalf("want detail per dependency: %+v", rep.Dependencies)
			}
		})
	}
	if status, _ := get("/health/live"); status != 200 {
		t.Fatalf("live: %d", status)
	}
}
