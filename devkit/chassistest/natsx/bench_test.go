package natsx_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"blogplatform/chassis/metrics"
	"blogplatform/chassis/natsx"
)

type benchUser struct {
	ID     string   `json:"_id"`
	Name   string   `json:"name"`
	Email  string   `json:"email"`
	Roles  []string `json:"roles"`
	Verify bool     `json:"verified"`
}

// BenchmarkRequest is one request-reply through a local server, client and
// service in this process (both sides' work is counted), shaped like the
// combined authentication subject: a token in, a user out.
func BenchmarkRequest(b *testing.B) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(5 * time.Second) {
		b.Fatal("nats server not ready")
	}
	quiet := slog.New(slog.DiscardHandler)
	m := metrics.New("bench")
	srvConn, err := natsx.Connect(natsx.ConnOptions{URL: s.ClientURL(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer srvConn.Close()
	svc, err := natsx.NewService(srvConn, natsx.ServiceOptions{Name: "auth", Version: "1.0.0", Logger: quiet, Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Stop(time.Second)
	user := benchUser{ID: "66a0c6b2f1e4d3c2b1a09f8e", Name: "Ann Author", Email: "ann@example.com", Roles: []string{"LEARNER", "AUTHOR"}, Verify: true}
	if err := svc.AddEndpoint("auth.authenticate", "authorize", natsx.Typed(func(ctx context.Context, r echoReq) (benchUser, error) {
		return user, nil
	})); err != nil {
		b.Fatal(err)
	}
	cliConn, err := natsx.Connect(natsx.ConnOptions{URL: s.ClientURL(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer cliConn.Close()
	c := natsx.NewClient(cliConn, natsx.ClientOptions{Logger: quiet, Metrics: m, Retry: natsx.RetryOptions{Idempotent: []string{"auth.>"}}})
	req := echoReq{Value: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI2NmEwYzZiMmYxZTRkM2MyYjFhMDlmOGUifQ.c2lnbmF0dXJl"}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var out benchUser
			if err := c.Request(ctx, "auth.authenticate.authorize", req, &out); err != nil || out.ID != user.ID {
				b.Errorf("request: %v %v", err, out)
				return
			}
		}
	})
}
