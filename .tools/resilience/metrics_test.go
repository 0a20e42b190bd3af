package resilience

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// After real traffic, each service's /metrics (Prometheus text, on its
// internal metrics listener) carries the
// series operators rely on: HTTP requests by route template and status, NATS
// requests by subject and outcome on both sides, cache hits and misses of
// both tiers (the replica's own first-level cache, l1_blog, then Redis), and
// the breaker state.
func TestMetricsAfterTraffic(t *testing.T) {
	p := startPlatform(t, false)
	token := p.signIn()
	id, _ := p.publish(token, "Metrics Are Scraped")
	for i := 0; i < 2; i++ { // a miss (first-level cache and Redis), then a first-level hit
		if a := p.do("GET", p.blogURL, "/id/"+id, "", nil); a.status != 200 {
			t.Fatalf("read: %d", a.status)
		}
	}
	scrape := func(base string) string {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	blog, auth := scrape(p.blogMetrics), scrape(p.authMetrics)
	// The public listener does not serve them: only the internal one does.
	for _, base := range []string{p.blogURL, p.authURL} {
		if a := p.do("GET", base, "/metrics", "", nil); a.status != http.StatusNotFound || a.message != "url not found" {
			t.Errorf("%s/metrics on the public port: %d %q, want 404 url not found", base, a.status, a.message)
		}
	}
	want := []struct {
		service, text string
		fragments     []string
	}{
		{"blog", blog, []string{`http_requests_total{method="GET",route="/id/:id",service="blog",status="200"} 2`}},
		{"blog", blog, []string{`http_request_duration_seconds_bucket{method="PUT",route="/editor/publish/id/:id"`}},
		{"blog", blog, []string{`nats_requests_total{outcome="ok",service="blog",side="client",subject="auth.authenticate.authorize"}`}},
		{"blog", blog, []string{`nats_request_duration_seconds_bucket{outcome="ok",service="blog",side="client",subject="auth.authenticate.authorize"`}},
		{"blog", blog, []string{`cache_lookups_total{cache="l1_blog",result="hit",service="blog"}`, `cache_lookups_total{cache="l1_blog",result="miss",service="blog"}`, `cache_lookups_total{cache="blog",result="miss",service="blog"}`}},
		{"blog", blog, []string{`circuit_breaker_state{name="auth",service="blog"} 0`}},
		{"auth", auth, []string{`http_requests_total{method="POST",route="/signin/basic",service="auth",status="200"} 1`}},
		{"auth", auth, []string{`nats_requests_total{outcome="ok",service="auth",side="server",subject="auth.authenticate.authorize"}`}},
	}
	for _, w := range want {
		for _, f := range w.fragments {
			if !strings.Contains(w.text, f) {
				t.Errorf("%s /metrics lacks %s", w.service, f)
			}
		}
	}
}
