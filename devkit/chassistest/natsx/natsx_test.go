package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/metrics"
	"blogplatform/chassis/natsx"
	"blogplatform/devkit/wait"
)

func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := natsx.Connect(natsx.ConnOptions{URL: url, Name: t.Name(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

type echoReq struct {
	Value string `json:"value"`
}

func (r *echoReq) Validate() error {
	if r.Value == "" {
		return apperr.BadRequest("value is required")
	}
	return nil
}

type echoResp struct {
	Echo string `json:"echo"`
}

func newEchoService(t *testing.T, nc *nats.Conn, m *metrics.Metrics) *natsx.Service {
	t.Helper()
	svc, err := natsx.NewService(nc, natsx.ServiceOptions{Name: "auth", Version: "1.0.0", Logger: slog.New(slog.DiscardHandler), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(time.Second) })
	group := natsx.GroupName("auth", "/")
	mustAdd := func(name string, h natsx.HandlerFunc) {
		if err := svc.AddEndpoint(group, name, h); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd("echo", natsx.Typed(func(ctx context.Context, r echoReq) (echoResp, error) { return echoResp{Echo: r.Value}, nil }))
	mustAdd("deny", natsx.Typed(func(ctx context.Context, r echoReq) (echoResp, error) {
		return echoResp{}, apperr.Unauthorized("permission denied: missing Authorization")
	}))
	mustAdd("fail", natsx.Typed(func(ctx context.Context, r echoReq) (echoResp, error) {
		return echoResp{}, errors.New("mongo: secret detail")
	}))
	mustAdd("panic", natsx.Typed(func(ctx context.Context, r echoReq) (echoResp, error) {
		var m map[string]string
		//lint:ignore SA5000 the nil map write is the point: a runtime panic, not a panic(value)
		m["boom"] = r.Value // nil map write: a real panic
		return echoResp{}, nil
	}))
	return svc
}

func TestServerRepliesOnTheWire(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	newEchoService(t, nc, nil)
	tests := []struct {
		name, subject, payload, reply string
	}{
		{"success", "auth.echo", `{"data":{"value":"hi"}}`, `{"data":{"echo":"hi"}}`},
		{"app error keeps status", "auth.deny", `{"data":{"value":"x"}}`, `{"error":"401:permission denied: missing Authorization"}`},
		{"internal error hidden", "auth.fail", `{"data":{"value":"x"}}`, `{"error":"500:something went wrong"}`},
		{"panic recovered", "auth.panic", `{"data":{"value":"x"}}`, `{"error":"500:something went wrong"}`},
		{"empty object", "auth.echo", `{}`, `{"error":"400:malformed message: data is required"}`},
		{"null", "auth.echo", `null`, `{"error":"400:malformed message: data is required"}`},
		{"data null", "auth.echo", `{"data":null}`, `{"error":"400:malformed message: data is required"}`},
		{"not json", "auth.echo", `garbage`, `{"error":"400:malformed message: expected a JSON object with a data field"}`},
		{"wrong type", "auth.echo", `{"data":{"value":5}}`, `{"error":"400:malformed message: cannot unmarshal number into Go struct field echoReq.value of type string"}`},
		{"validate hook", "auth.echo", `{"data":{}}`, `{"error":"400:value is required"}`},
		// Other spellings of the envelope than the client's own are read
		// as envelopes too.
		{"spaced", "auth.echo", ` { "data" : {"value":"sp"} } `, `{"data":{"echo":"sp"}}`},
		{"other key", "auth.echo", `{"data":{"value":"ok"},"trace":1}`, `{"data":{"echo":"ok"}}`},
		{"key case", "auth.echo", `{"Data":{"value":"case"}}`, `{"data":{"echo":"case"}}`},
		{"data then garbage", "auth.echo", `{"data":{"value":"x"}}}`, `{"error":"400:malformed message: expected a JSON object with a data field"}`},
		{"data empty", "auth.echo", `{"data":}`, `{"error":"400:malformed message: expected a JSON object with a data field"}`},
		{"data spaces null", "auth.echo", `{"data":null }`, `{"error":"400:malformed message: data is required"}`},
		{"html kept escaped", "auth.echo", `{"data":{"value":"<a&b>"}}`, `{"data":{"echo":"\u003ca\u0026b\u003e"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := nc.Request(tt.subject, []byte(tt.payload), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if string(msg.Data) != tt.reply {
				t.Errorf("reply %s, want %s", msg.Data, tt.reply)
			}
		})
	}
	// Still serving after all of that.
	msg, err := nc.Request("auth.echo", []byte(`{"data":{"value":"again"}}`), 2*time.Second)
	if err != nil || string(msg.Data) != `{"data":{"echo":"again"}}` {
		t.Fatalf("service stopped answering: %v %s", err, msg.Data)
	}
}

func TestClientMapsOutcomes(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	newEchoService(t, nc, nil)
	// A responder that answers with something that is not the envelope.
	if _, err := nc.Subscribe("auth.broken", func(m *nats.Msg) { _ = m.Respond([]byte("not json")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("auth.rawerror", func(m *nats.Msg) { _ = m.Respond([]byte(`{"error":"mongo: no documents in result"}`)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("auth.slow", func(m *nats.Msg) { time.Sleep(500 * time.Millisecond); _ = m.Respond([]byte(`{"data":{}}`)) }); err != nil {
		t.Fatal(err)
	}
	client := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 200 * time.Millisecond, Breaker: natsx.BreakerOptions{Disabled: true}, Logger: slog.New(slog.DiscardHandler)})

	var out echoResp
	if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out); err != nil || out.Echo != "v" {
		t.Fatalf("success: %v %+v", err, out)
	}
	err := client.Request(context.Background(), "auth.deny", echoReq{Value: "v"}, &out)
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Status() != 401 || ae.Message != "permission denied: missing Authorization" {
		t.Fatalf("remote error: %v", err)
	}
	for _, subject := range []string{"auth.broken", "auth.rawerror", "auth.nobody", "auth.slow"} {
		start := time.Now()
		err := client.Request(context.Background(), subject, echoReq{Value: "v"}, &out)
		if !errors.Is(err, natsx.ErrUnavailable) {
			t.Errorf("%s: want ErrUnavailable, got %v", subject, err)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("%s: did not respect the timeout", subject)
		}
	}
	// Replies in other shapes than the service's own: each is read as an
	// envelope, an error beside data still wins.
	replies := []struct {
		reply, want string // want: the echo, or "error"/"unavailable"
	}{
		{`{"data":{"echo":"plain"}}`, "plain"},
		{`{ "data": {"echo":"spaced"} }`, "spaced"},
		{`{"data":{"echo":"x"},"error":"401:permission denied"}`, "error"},
		{`{"error":"401:permission denied","data":{"echo":"x"}}`, "error"},
		{`{"data":{"echo":"x"}}}`, "unavailable"},
		{`{"data":{"echo":5}}`, "unavailable"},
		{`{"data":}`, "unavailable"},
		{`{}`, "unavailable"},
	}
	for i, r := range replies {
		subject := fmt.Sprintf("auth.shape%d", i)
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond([]byte(r.reply)) }); err != nil {
			t.Fatal(err)
		}
		var got echoResp
		err := client.Request(context.Background(), subject, echoReq{Value: "v"}, &got)
		switch r.want {
		case "error":
			if !errors.As(err, &ae) || ae.Status() != 401 {
				t.Errorf("%s: want the remote 401, got %v", r.reply, err)
			}
		case "unavailable":
			if !errors.Is(err, natsx.ErrUnavailable) {
				t.Errorf("%s: want ErrUnavailable, got %v", r.reply, err)
			}
		default:
			if err != nil || got.Echo != r.want {
				t.Errorf("%s: got %+v %v", r.reply, got, err)
			}
		}
	}

	// The caller's cancellation stops the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := client.Request(ctx, "auth.slow", echoReq{Value: "v"}, &out); !errors.Is(err, natsx.ErrUnavailable) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestHandlersRunConcurrently(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	svc, err := natsx.NewService(nc, natsx.ServiceOptions{Name: "auth", Version: "1.0.0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(time.Second)
	var inflight, maxInflight atomic.Int32
	release := make(chan struct{})
	err = svc.AddEndpoint("auth", "wait", natsx.Typed(func(ctx context.Context, r echoReq) (echoResp, error) {
		n := inflight.Add(1)
		for {
			m := maxInflight.Load()
			if n <= m || maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
		return echoResp{Echo: r.Value}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	client := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out echoResp
			errs <- client.Request(context.Background(), "auth.wait", echoReq{Value: "x"}, &out)
		}()
	}
	// Not fatal here: the handlers must be released first; the check below
	// reports a shortfall.
	wait.For(5*time.Second, func() bool { return maxInflight.Load() >= n })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := maxInflight.Load(); got != n {
		t.Fatalf("max in-flight handlers = %d, want all %d at once", got, n)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	m := metrics.New("test")
	client := natsx.NewClient(nc, natsx.ClientOptions{
		Timeout: 100 * time.Millisecond, Name: "auth", Metrics: m, Logger: slog.New(slog.DiscardHandler),
		Breaker: natsx.BreakerOptions{MinRequests: 3, OpenTimeout: 200 * time.Millisecond, HalfOpenRequests: 2},
	})
	var out echoResp
	for i := 0; i < 3; i++ { // no responders: each fails fast
		if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out); !errors.Is(err, natsx.ErrUnavailable) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if client.BreakerState() != "open" {
		t.Fatalf("breaker %s after 3 failures", client.BreakerState())
	}
	// Bring the responder back; while open the breaker still refuses.
	newEchoService(t, nc, nil)
	if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("open breaker let a request through: %v", err)
	}
	// The open timeout passes: the breaker lets trial requests through.
	wait.Eventually(t, 5*time.Second, "breaker half-open", func() bool { return client.BreakerState() == "half-open" })
	for i := range 2 {
		if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out); err != nil {
			t.Fatalf("half-open trial %d failed: %v", i, err)
		}
	}
	if client.BreakerState() != "closed" {
		t.Fatalf("breaker %s after recovery", client.BreakerState())
	}
	// A remote "401" is an answer, not an outage: it never opens the breaker.
	for i := 0; i < 10; i++ {
		_ = client.Request(context.Background(), "auth.deny", echoReq{Value: "v"}, &out)
	}
	if client.BreakerState() != "closed" {
		t.Fatal("remote rejections opened the breaker")
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	s := startServer(t)
	port := s.Addr().(*net.TCPAddr).Port
	nc := connect(t, s.ClientURL())
	newEchoService(t, nc, nil)
	client := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 300 * time.Millisecond, Breaker: natsx.BreakerOptions{Disabled: true}, Logger: slog.New(slog.DiscardHandler)})
	s.Shutdown()
	var out echoResp
	if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("server down: %v", err)
	}
	s2, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s2.Start()
	t.Cleanup(s2.Shutdown)
	if !s2.ReadyForConnections(5 * time.Second) {
		t.Fatal("restart failed")
	}
	var lastErr error
	if !wait.For(10*time.Second, func() bool {
		lastErr = client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out)
		return lastErr == nil
	}) {
		t.Fatalf("no recovery after restart: %v", lastErr)
	}
}

func TestConnectRetriesWhenServerIsLate(t *testing.T) {
	// Reserve a port, start nothing on it yet.
	s := startServer(t)
	port := s.Addr().(*net.TCPAddr).Port
	s.Shutdown()
	nc, err := natsx.Connect(natsx.ConnOptions{URL: s.ClientURL(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("a late server must not fail Connect: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected to nothing")
	}
	s2, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s2.Start()
	defer s2.Shutdown()
	wait.Eventually(t, 10*time.Second, "connected to the late server", nc.IsConnected)
}
