package metrics

import (
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The recorders count on the same series a label lookup finds, from many
// goroutines, and past the bound of resolved series too.
func TestRecordersCountOnTheirSeries(t *testing.T) {
	m := New("test")
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.HTTP("/id/:id", "GET", 200, 0.001)
				m.NATS("auth.authenticate.authorize", "client", "ok", 0.001)
				m.NATSAttempt("auth.authenticate.authorize", "first", 1)
				m.NATSAttempt("auth.authenticate.authorize", "hedge", 0) // nothing sent: not counted
				m.Cache("blog", "hit")
				// Many distinct label sets: more than the cache keeps.
				m.HTTP("/r/"+strconv.Itoa(w*each+i), "GET", 404, 0.001)
			}
		})
	}
	wg.Wait()
	const n = workers * each
	checks := []struct {
		name string
		got  float64
	}{
		{"http", testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/id/:id", "GET", "200"))},
		{"nats", testutil.ToFloat64(m.NATSRequests.WithLabelValues("auth.authenticate.authorize", "client", "ok"))},
		{"attempts", testutil.ToFloat64(m.NATSAttempts.WithLabelValues("auth.authenticate.authorize", "first"))},
		{"cache", testutil.ToFloat64(m.CacheLookups.WithLabelValues("blog", "hit"))},
	}
	for _, c := range checks {
		if c.got != n {
			t.Errorf("%s: %v, want %d", c.name, c.got, n)
		}
	}
	if got := testutil.CollectAndCount(m.NATSAttempts); got != 1 {
		t.Errorf("%d attempt series, want 1 (a zero count adds none)", got)
	}
	if got := testutil.CollectAndCount(m.HTTPRequests); got != n+1 {
		t.Errorf("%d http series, want %d", got, n+1)
	}
	for _, route := range []string{"/r/0", "/r/" + strconv.Itoa(n-1)} {
		if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues(route, "GET", "404")); got != 1 {
			t.Errorf("%s: %v, want 1", route, got)
		}
	}
	var none *Metrics
	none.HTTP("/x", "GET", 200, 1) // a nil *Metrics records nothing, without panicking
	none.NATS("s", "client", "ok", 1)
	none.NATSAttempt("s", "first", 1)
	none.Cache("c", "hit")
}
