package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A target out of the rotation comes back only after the upstream's
// healthchecks.active.healthy.successes passing probes in a row: a replica
// that has just thawed from a freeze answers its first probe before its own
// connections have recovered. A failed probe in between starts the count
// again, and a target in the rotation stays in it on a passing probe.
func TestTargetReturnsAfterHealthySuccessesInARow(t *testing.T) {
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name   string
		passes int32 // healthy.successes in the Kong file (0: not set)
		out    func(*target)
		probes []bool // each probe's health
		wantIn []bool // in the rotation after each probe
	}{
		{"EjectedNeedsTwo", 2, func(t *target) { t.ejected.Store(true) },
			[]bool{true, true, true}, []bool{false, true, true}},
		{"NotReadyNeedsTwo", 2, func(t *target) { t.ready.Store(false) },
			[]bool{true, true}, []bool{false, true}},
		{"AFailureRestartsTheCount", 2, func(t *target) { t.ejected.Store(true) },
			[]bool{true, false, true, true}, []bool{false, false, false, true}},
		{"UnsetMeansOne", 0, func(t *target) { t.ejected.Store(true) },
			[]bool{true}, []bool{true}},
		{"InRotationStays", 2, func(*target) {},
			[]bool{true, true}, []bool{true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(Endpoint{Name: "blog1", Addr: strings.TrimPrefix(srv.URL, "http://")}, 100)
			p := &pool{name: "blog_upstream", healthPath: "/health/ready", targets: []*target{tg}, passesToReturn: tc.passes}
			tc.out(tg)
			for i, h := range tc.probes {
				healthy.Store(h)
				p.probe(context.Background(), srv.Client(), tg, time.Second, log)
				if in := tg.ready.Load() && !tg.ejected.Load(); in != tc.wantIn[i] {
					t.Fatalf("after probe %d (healthy %v): in rotation %v, want %v", i+1, h, in, tc.wantIn[i])
				}
			}
		})
	}
}
