package resilience

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"blogplatform/chassis/telemetry"
)

// One authenticated blog request is one trace: the caller's traceparent is
// continued by blog's HTTP span, its NATS requests to auth carry it in their
// headers, and auth's handler spans (recorded by auth's own provider, as in a
// separate process) belong to the same trace as children of blog's requests.
func TestOneTraceSpansBlogAndAuth(t *testing.T) {
	authSpans, blogSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	authTP := telemetry.NewProvider(authSpans, "auth", "test")
	blogTP := telemetry.NewProvider(blogSpans, "blog", "test")
	p := startPlatformWith(t, platformOptions{authTracer: authTP, blogTracer: blogTP})
	token := p.signIn()

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req, err := http.NewRequest("GET", p.blogURL+"/author/drafts?page=1&limit=10", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("drafts: %d", res.StatusCode)
	}
	_ = blogTP.ForceFlush(context.Background())
	_ = authTP.ForceFlush(context.Background())

	inTrace := func(rec *tracetest.SpanRecorder) map[string]string { // name -> span id
		out := map[string]string{}
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() == traceID {
				out[s.Name()] = s.SpanContext().SpanID().String()
			}
		}
		return out
	}
	blog, auth := inTrace(blogSpans), inTrace(authSpans)
	for _, name := range []string{"GET /author/drafts", "nats request auth.authenticate.authorize"} {
		if _, ok := blog[name]; !ok {
			t.Errorf("blog has no span %q in the trace; blog spans: %v", name, blog)
		}
	}
	for _, name := range []string{"nats serve auth.authenticate.authorize"} {
		if _, ok := auth[name]; !ok {
			t.Errorf("auth has no span %q in the trace; auth spans: %v", name, auth)
		}
	}
	for _, s := range authSpans.Ended() {
		if s.Name() == "nats serve auth.authenticate.authorize" && s.SpanContext().TraceID().String() == traceID {
			if parent := s.Parent().SpanID().String(); parent != blog["nats request auth.authenticate.authorize"] {
				t.Errorf("auth's handler span has parent %s, want blog's request span %s", parent, blog["nats request auth.authenticate.authorize"])
			}
		}
	}
}
