package embedded

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"blogplatform/chassis/natsx/inbox"
	"blogplatform/devkit/wait"
)

func startNATS(t testing.TB, opts NATSOptions) *NATS {
	t.Helper()
	n, err := StartNATS(opts)
	if err != nil {
		t.Fatalf("StartNATS: %v", err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

func natsConnect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestNATSRequestReply(t *testing.T) {
	// Two servers in one process, to show nothing is global.
	for _, n := range []*NATS{startNATS(t, NATSOptions{}), startNATS(t, NATSOptions{})} {
		if !strings.HasPrefix(n.ClientURL(), "nats://127.0.0.1:") || n.Port() <= 0 {
			t.Fatalf("ClientURL %q, Port %d", n.ClientURL(), n.Port())
		}
		nc := natsConnect(t, n.ClientURL())
		if _, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) }); err != nil {
			t.Fatal(err)
		}
		// The subscription must reach the server before another connection asks.
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		client := natsConnect(t, n.ClientURL())
		reply, err := client.Request("echo", []byte("hi"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(reply.Data) != "re: hi" {
			t.Errorf("reply %q", reply.Data)
		}
	}
}

func TestNATSRestartKeepsURLAndClientsReconnect(t *testing.T) {
	n := startNATS(t, NATSOptions{})
	url := n.ClientURL()

	reconnected := make(chan struct{}, 1)
	disconnected := make(chan struct{}, 1)
	opts := []nats.Option{
		nats.ReconnectWait(50 * time.Millisecond),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { nonBlockingSend(disconnected) }),
		nats.ReconnectHandler(func(*nats.Conn) { nonBlockingSend(reconnected) }),
	}
	responder := natsConnect(t, url, opts...)
	if _, err := responder.Subscribe("ping", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	client := natsConnect(t, url, opts...)
	if _, err := client.Request("ping", nil, 5*time.Second); err != nil {
		t.Fatalf("before restart: %v", err)
	}

	n.Shutdown()
	waitFor(t, disconnected, "disconnect")
	if _, err := client.Request("ping", nil, 200*time.Millisecond); err == nil {
		t.Fatal("request succeeded while the server was down")
	}

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if n.ClientURL() != url {
		t.Fatalf("URL changed across Restart: %s -> %s", url, n.ClientURL())
	}
	// Both connections must reconnect; the responder also re-subscribes.
	wait.Eventually(t, 10*time.Second, "clients reconnected", func() bool { return responder.IsConnected() && client.IsConnected() })
	// The responder's SUB may reach the new server a moment after the
	// client's reconnect, so allow a few tries.
	var err error
	if !wait.For(10*time.Second, func() bool {
		_, err = client.Request("ping", nil, time.Second)
		return err == nil
	}) {
		t.Fatalf("after restart: %v", err)
	}
}

// TestNATSUserPermissions shows the local platform's security model: only the
// auth service's user may subscribe to auth.>, other users may still make
// requests to it (replies to their own inbox and micro discovery are allowed
// for all).
func TestNATSUserPermissions(t *testing.T) {
	n := startNATS(t, NATSOptions{Users: []NATSUser{
		{Name: "auth", Password: "auth-pw", Subscribe: []string{"auth.>"}},
		{Name: "blog", Password: "blog-pw", Publish: []string{"auth.>", "blog.>"}, Subscribe: []string{"blog.>"}},
	}})

	// The auth service, as a nats.go micro service (needs $SRV.> and inbox
	// replies).
	authConn := natsConnect(t, n.ClientURL(), nats.UserInfo("auth", "auth-pw"), nats.CustomInboxPrefix(inbox.Prefix("auth")))
	svc, err := micro.AddService(authConn, micro.Config{
		Name:    "auth",
		Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{
			Subject: "auth.verify",
			Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("ok:" + string(r.Data()))) }),
		},
	})
	if err != nil {
		t.Fatalf("micro.AddService: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	// The subscription must have reached the server before blog asks.
	if err := authConn.Flush(); err != nil {
		t.Fatal(err)
	}

	asyncErrs := make(chan error, 10)
	blogConn := natsConnect(t, n.ClientURL(), nats.UserInfo("blog", "blog-pw"), nats.CustomInboxPrefix(inbox.Prefix("blog")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }))

	reply, err := blogConn.Request("auth.verify", []byte("token"), 5*time.Second)
	if err != nil {
		t.Fatalf("blog -> auth.verify: %v", err)
	}
	if string(reply.Data) != "ok:token" {
		t.Errorf("reply %q", reply.Data)
	}
	// Micro discovery works for a restricted user.
	if _, err := blogConn.Request("$SRV.PING.auth", nil, 5*time.Second); err != nil {
		t.Errorf("$SRV.PING.auth: %v", err)
	}

	// Eavesdropping on auth.> is refused by the server.
	if _, err := blogConn.SubscribeSync("auth.>"); err != nil {
		t.Fatalf("SubscribeSync returned early: %v", err)
	}
	select {
	case err := <-asyncErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"auth.>"`) {
			t.Errorf("async error = %v, want permissions violation for auth.>", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no permissions violation for blog subscribing to auth.>")
	}
	// Publishing outside the allow list is refused too.
	if err := blogConn.Publish("comments.created", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-asyncErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("async error = %v, want permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no permissions violation for blog publishing to comments.created")
	}

	// Authentication is enforced.
	for name, opt := range map[string]nats.Option{
		"wrong password": nats.UserInfo("blog", "nope"),
		"no credentials": func(*nats.Options) error { return nil },
	} {
		if nc, err := nats.Connect(n.ClientURL(), opt, nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: err = %v, want authorization violation", name, err)
		}
	}
}

func TestNATSRejectsEmptyUserName(t *testing.T) {
	if n, err := StartNATS(NATSOptions{Users: []NATSUser{{Password: "x"}}}); err == nil {
		n.Shutdown()
		t.Fatal("StartNATS accepted a user without a name")
	}
}

func TestNATSShutdownIsIdempotentAndFreesPort(t *testing.T) {
	n, err := StartNATS(NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown()
	n.Shutdown()
	if n.Server() != nil {
		t.Error("Server() not nil after Shutdown")
	}
	// The port is free again: a new server can take it.
	again := startNATS(t, NATSOptions{Port: n.Port()})
	if again.Port() != n.Port() {
		t.Errorf("port %d, want %d", again.Port(), n.Port())
	}
}

func nonBlockingSend(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestNATSLoggerReceivesServerLogs(t *testing.T) {
	var buf syncBuffer
	n := startNATS(t, NATSOptions{Logger: slogTextLogger(&buf)})
	natsConnect(t, n.ClientURL())
	if out := buf.String(); !strings.Contains(out, "component=nats") || !strings.Contains(out, "Server is ready") {
		t.Errorf("server log lines missing:\n%s", out)
	}
}

// TestNATSDropsFrozenClient: a client that stops reading (a SIGSTOPped or
// partitioned replica: its socket stays open, nothing answers) is dropped by
// the server after a few missed pings, and its queue subscription stops
// receiving requests, which then all go to the live member.
func TestNATSDropsFrozenClient(t *testing.T) {
	n := startNATS(t, NATSOptions{})
	live := natsConnect(t, n.ClientURL())
	var liveCalls atomic.Int32
	if _, err := live.QueueSubscribe("svc.echo", "q", func(m *nats.Msg) {
		liveCalls.Add(1)
		_ = m.Respond(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	if err := live.Flush(); err != nil {
		t.Fatal(err)
	}

	// The frozen member speaks the protocol by hand: CONNECT, SUB in the same
	// queue group, a PING to learn that both were processed, then silence.
	conn, err := net.Dial("tcp", net.JoinHostPort(n.Host(), strconv.Itoa(n.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO: %q %v", line, err)
	}
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"frozen\"}\r\nSUB svc.echo q 1\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "PONG\r\n" {
		t.Fatalf("no PONG: %q %v", line, err)
	}
	if got := n.Server().NumClients(); got != 2 {
		t.Fatalf("%d clients, want 2 (live and frozen)", got)
	}

	start := time.Now()
	limit := NATSPingInterval*time.Duration(NATSMaxPingsOut+1) + time.Second // ≈ 4 s
	wait.Eventually(t, limit, "frozen client dropped", func() bool { return n.Server().NumClients() <= 1 })
	t.Logf("frozen client dropped after %s", time.Since(start).Round(time.Millisecond))

	// Every request now reaches the live member, at once.
	requester := natsConnect(t, n.ClientURL())
	before := liveCalls.Load()
	for i := range 50 {
		if _, err := requester.Request("svc.echo", []byte("x"), 500*time.Millisecond); err != nil {
			t.Fatalf("request %d after the drop: %v", i, err)
		}
	}
	if got := liveCalls.Load() - before; got != 50 {
		t.Errorf("live member answered %d of 50", got)
	}
}
