package natsx_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/natsx"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/wait"
)

// deadURL is a loopback URL nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	n, err := embedded.StartNATS(embedded.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := n.ClientURL()
	n.Shutdown()
	return url
}

// TestServerListWithTheFirstServerDown: a list whose first server is down
// connects to the next one, in listed order and in nats.go's random order.
func TestServerListWithTheFirstServerDown(t *testing.T) {
	live := startEmbedded(t)
	list := deadURL(t) + ", " + live.ClientURL()
	for _, listed := range []bool{true, false} {
		start := time.Now()
		nc, err := natsx.Connect(natsx.ConnOptions{URL: list, NoRandomize: listed, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		wait.Eventually(t, 5*time.Second, "connected past the dead first server", nc.IsConnected)
		if nc.ConnectedUrl() != live.ClientURL() {
			t.Errorf("listed=%v: connected to %s", listed, nc.ConnectedUrl())
		}
		// The dead server costs a refused dial, not a backoff round.
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("listed=%v: took %s", listed, took)
		}
		nc.Close()
	}
}

// TestPublishWhileDisconnectedFailsAtOnce: while the connection is down, a
// publish and a request fail at once, and nothing is sent after the
// reconnect. A connection with nats.go's default reconnect buffer shows
// the danger avoided: its publish "succeeds", and is delivered after the
// reconnect, long after its sender gave up.
func TestPublishWhileDisconnectedFailsAtOnce(t *testing.T) {
	n := startEmbedded(t)
	quiet := slog.New(slog.DiscardHandler)
	nc, err := natsx.Connect(natsx.ConnOptions{URL: n.ClientURL(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	buffering, err := nats.Connect(n.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buffering.Close)

	n.Shutdown()
	wait.Eventually(t, 5*time.Second, "both connections notice the loss", func() bool {
		return nc.IsReconnecting() && buffering.IsReconnecting()
	})
	if err := nc.Publish("writes.create", []byte("from natsx")); !errors.Is(err, nats.ErrReconnectBufExceeded) {
		t.Fatalf("publish while disconnected: %v, want an immediate ErrReconnectBufExceeded", err)
	}
	client := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 2 * time.Second, Breaker: natsx.BreakerOptions{Disabled: true}, Logger: quiet})
	start := time.Now()
	err = client.Request(context.Background(), "writes.create", echoReq{Value: "v"}, nil)
	if !errors.Is(err, natsx.ErrUnavailable) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("request while disconnected: %v after %s, want ErrUnavailable at once", err, time.Since(start))
	}
	if err := buffering.Publish("writes.create", []byte("buffered")); err != nil {
		t.Fatalf("the default connection refused to buffer: %v", err)
	}

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	watcher, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watcher.Close)
	received := make(chan string, 4)
	if _, err := watcher.Subscribe("writes.create", func(m *nats.Msg) { received <- string(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	// Both reconnect; nats.go flushes a buffer right after the handshake.
	wait.Eventually(t, 5*time.Second, "both connections back", func() bool {
		return nc.IsConnected() && buffering.IsConnected()
	})
	for _, c := range []*nats.Conn{nc, buffering} {
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-received:
		if m != "buffered" {
			t.Fatalf("delivered after the reconnect: %q (natsx must not buffer)", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the default connection's buffered publish never arrived: the contrast this test relies on is gone")
	}
	select {
	case m := <-received:
		t.Fatalf("also delivered after the reconnect: %q", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestMicroServiceServesAfterFailover: a micro service connected to one
// node of a cluster, whose node is killed, reconnects to another node and
// answers again (requests and discovery), without any action of its own.
func TestMicroServiceServesAfterFailover(t *testing.T) {
	c, err := embedded.StartNATSCluster(embedded.NATSClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	urls := c.ClientURLs()
	quiet := slog.New(slog.DiscardHandler)
	// The service prefers node 1; the caller sits on node 3.
	authConn, err := natsx.Connect(natsx.ConnOptions{URL: urls[0] + "," + urls[1], NoRandomize: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(authConn.Close)
	wait.Eventually(t, 5*time.Second, "auth connected", authConn.IsConnected)
	if authConn.ConnectedUrl() != urls[0] {
		t.Fatalf("listed order ignored: on %s, want %s", authConn.ConnectedUrl(), urls[0])
	}
	newEchoService(t, authConn, nil)
	blogConn, err := natsx.Connect(natsx.ConnOptions{URL: urls[2], Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(blogConn.Close)
	wait.Eventually(t, 5*time.Second, "blog connected", blogConn.IsConnected)
	if err := c.WaitInterest("auth.echo", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := echoWorks(t, blogConn); err != nil {
		t.Fatalf("before the failover: %v", err)
	}

	c.Node(0).Shutdown()
	start := time.Now()
	wait.Eventually(t, 5*time.Second, "auth moves to another node", func() bool {
		return authConn.IsConnected() && authConn.ConnectedUrl() != urls[0]
	})
	moved := time.Since(start)
	if err := c.WaitInterest("auth.echo", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := echoWorks(t, blogConn); err != nil {
		t.Fatalf("after the failover: %v", err)
	}
	if _, err := blogConn.Request("$SRV.PING.auth", nil, 2*time.Second); err != nil {
		t.Fatalf("discovery after the failover: %v", err)
	}
	t.Logf("auth reconnected to %s in %s", authConn.ConnectedUrl(), moved)
}

// TestIdempotentRequestWaitsOutAReconnect: a message refused while the
// connection is between servers reached nobody, so a request to an
// idempotent subject made then sends it again after a pause, and succeeds
// once the connection is back within its deadline (a non-idempotent one
// fails at once: TestPublishWhileDisconnectedFailsAtOnce).
func TestIdempotentRequestWaitsOutAReconnect(t *testing.T) {
	n := startEmbedded(t)
	quiet := slog.New(slog.DiscardHandler)
	authConn := connect(t, n.ClientURL())
	newEchoService(t, authConn, nil)
	blogConn := connect(t, n.ClientURL())
	client := retryingClientOn(t, blogConn, nil, natsx.ClientOptions{Timeout: 5 * time.Second, Logger: quiet})
	n.Shutdown()
	wait.Eventually(t, 5*time.Second, "the connections notice the loss", func() bool {
		return authConn.IsReconnecting() && blogConn.IsReconnecting()
	})

	// Also with the mark that turns off retries after "no responders":
	// a refused message is not "no responders", so it waits too (and then
	// may find no responders, should the client be back before auth).
	ctxs := []context.Context{context.Background(), natsx.WithoutNoResponderRetry(context.Background())}
	type result struct {
		marked bool
		err    error
	}
	done := make(chan result, len(ctxs))
	start := time.Now()
	for i, ctx := range ctxs {
		go func() {
			var out echoResp
			done <- result{i == 1, client.Request(ctx, "auth.echo", echoReq{Value: "v"}, &out)}
		}()
	}
	const away = 300 * time.Millisecond
	time.Sleep(away)
	select {
	case r := <-done:
		t.Fatalf("a request (marked: %v) ended while NATS was away: %v", r.marked, r.err)
	default:
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	for range ctxs {
		r := <-done
		if r.err != nil && !(r.marked && errors.Is(r.err, nats.ErrNoResponders)) {
			t.Fatalf("idempotent request (marked: %v) across the reconnect: %v", r.marked, r.err)
		}
	}
	if took := time.Since(start); took < away || took > 4*time.Second {
		t.Fatalf("took %s", took)
	}
}
