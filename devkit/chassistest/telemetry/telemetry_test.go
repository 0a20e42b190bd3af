package telemetry_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats-server/v2/server"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"blogplatform/chassis/httpx"
	"blogplatform/chassis/natsx"
	"blogplatform/chassis/telemetry"
	"blogplatform/devkit/wait"
)

// One request crosses HTTP → NATS client → NATS handler in another "service"
// (its own provider, like a separate process): every span belongs to the
// trace the caller started, and the handler's span is a child of the
// client's request span.
func TestTraceCrossesHTTPAndNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	quiet := slog.New(slog.DiscardHandler)

	authSpans, blogSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	authTP := telemetry.NewProvider(authSpans, "auth", "test")
	blogTP := telemetry.NewProvider(blogSpans, "blog", "test")
	prop := telemetry.Propagator()

	authConn, err := natsx.Connect(natsx.ConnOptions{URL: ns.ClientURL(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer authConn.Close()
	svc, err := natsx.NewService(authConn, natsx.ServiceOptions{Name: "auth", Version: "1.0.0", Logger: quiet, Tracer: authTP, Propagator: prop})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(time.Second)
	type text struct {
		Value string `json:"value"`
	}
	if err := svc.AddEndpoint("auth", "authentication", natsx.Typed(func(ctx context.Context, r text) (text, error) {
		return r, nil
	})); err != nil {
		t.Fatal(err)
	}

	blogConn, err := natsx.Connect(natsx.ConnOptions{URL: ns.ClientURL(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer blogConn.Close()
	client := natsx.NewClient(blogConn, natsx.ClientOptions{Logger: quiet, Tracer: blogTP, Propagator: prop})
	engine := httpx.NewEngine(httpx.Options{Logger: quiet, Tracer: blogTP, Propagator: prop})
	engine.GET("/author/drafts", func(c *gin.Context) {
		var out text
		if err := client.Request(c.Request.Context(), "auth.authentication", text{Value: "Bearer x"}, &out); err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.OK(c, "success")
	})

	const incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodGet, "/author/drafts", nil)
	req.Header.Set("traceparent", "00-"+incomingTrace+"-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	engine.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	_ = blogTP.ForceFlush(context.Background())
	// The handler's span ends after its reply is sent, so the client can
	// have its answer a moment before the auth side's span has ended.
	wait.Eventually(t, 5*time.Second, "the NATS handler's span ended", func() bool { return len(authSpans.Ended()) > 0 })
	_ = authTP.ForceFlush(context.Background())

	blogEnded := blogSpans.Ended()
	authEnded := authSpans.Ended()
	if len(blogEnded) != 2 || len(authEnded) != 1 {
		t.Fatalf("spans: blog %d (want HTTP + NATS client), auth %d (want NATS handler)", len(blogEnded), len(authEnded))
	}
	names := map[string]string{}
	for _, s := range append(blogEnded, authEnded...) {
		if got := s.SpanContext().TraceID().String(); got != incomingTrace {
			t.Errorf("span %q in trace %s, want %s", s.Name(), got, incomingTrace)
		}
		names[s.Name()] = s.SpanContext().SpanID().String()
	}
	httpSpan, ok := names["GET /author/drafts"]
	if !ok {
		t.Fatalf("no HTTP span named by route: %v", names)
	}
	clientSpan := names["nats request auth.authentication"]
	handler := authEnded[0]
	if handler.Name() != "nats serve auth.authentication" || handler.Parent().SpanID().String() != clientSpan {
		t.Errorf("handler span %q has parent %s, want the client span %s", handler.Name(), handler.Parent().SpanID(), clientSpan)
	}
	for _, s := range blogEnded {
		if s.Name() == "nats request auth.authentication" && s.Parent().SpanID().String() != httpSpan {
			t.Errorf("client span parent %s, want the HTTP span %s", s.Parent().SpanID(), httpSpan)
		}
	}
}

// A service without an exporter (the no-op provider) starts no spans but
// still carries the caller's trace: the traceparent it received reaches the
// next service through the NATS headers.
func TestNoopServiceStillCarriesTheTrace(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	quiet := slog.New(slog.DiscardHandler)
	authSpans := tracetest.NewSpanRecorder()
	authTP := telemetry.NewProvider(authSpans, "auth", "test")
	noopTP, _, err := telemetry.Setup(context.Background(), "blog", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	prop := telemetry.Propagator()

	authConn, err := natsx.Connect(natsx.ConnOptions{URL: ns.ClientURL(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer authConn.Close()
	svc, err := natsx.NewService(authConn, natsx.ServiceOptions{Name: "auth", Version: "1.0.0", Logger: quiet, Tracer: authTP, Propagator: prop})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(time.Second)
	type text struct {
		Value string `json:"value"`
	}
	if err := svc.AddEndpoint("auth", "authentication", natsx.Typed(func(ctx context.Context, r text) (text, error) {
		return r, nil
	})); err != nil {
		t.Fatal(err)
	}
	blogConn, err := natsx.Connect(natsx.ConnOptions{URL: ns.ClientURL(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer blogConn.Close()
	client := natsx.NewClient(blogConn, natsx.ClientOptions{Logger: quiet, Tracer: noopTP, Propagator: prop})
	engine := httpx.NewEngine(httpx.Options{Logger: quiet, Tracer: noopTP, Propagator: prop})
	engine.GET("/author/drafts", func(c *gin.Context) {
		var out text
		if err := client.Request(c.Request.Context(), "auth.authentication", text{Value: "Bearer x"}, &out); err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.OK(c, "success")
	})

	const incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, traced := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodGet, "/author/drafts", nil)
		if traced {
			req.Header.Set("traceparent", "00-"+incomingTrace+"-00f067aa0ba902b7-01")
		}
		w := httptest.NewRecorder()
		engine.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	}
	wait.Eventually(t, 5*time.Second, "both NATS handler spans ended", func() bool { return len(authSpans.Ended()) == 2 })
	var inTrace int
	for _, s := range authSpans.Ended() {
		if s.SpanContext().TraceID().String() == incomingTrace {
			inTrace++
			if s.Parent().SpanID().String() != "00f067aa0ba902b7" {
				t.Errorf("handler span's parent %s, want the caller's span", s.Parent().SpanID())
			}
		}
	}
	if inTrace != 1 {
		t.Fatalf("%d handler spans in the caller's trace, want 1 (the traced request's)", inTrace)
	}
}
