package embedded

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"blogplatform/chassis/natsx/inbox"
)

// permErrs collects a connection's asynchronous errors (permission
// violations arrive that way).
func permErrs(errs chan error) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	})
}

func wantViolation(t *testing.T, errs chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("%s: async error %v, want a permissions violation", what, err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("%s: allowed", what)
	}
}

// TestNATSInboxIsolation: with the platform's users, each service reads
// only the replies in its own inbox. blog cannot subscribe to auth's inbox
// (nor to the shared default one, nor to everything), cannot inject replies
// into auth's inbox, and auth may publish into blog's inbox only as the
// answer to a request it received; requests and micro discovery still work.
func TestNATSInboxIsolation(t *testing.T) {
	n := startNATS(t, NATSOptions{Users: []NATSUser{
		{Name: "auth", Password: "a", Publish: []string{}, Subscribe: []string{"auth.>"}},
		{Name: "blog", Password: "b", Publish: []string{"auth.>"}, Subscribe: []string{}},
	}})
	authErrs, blogErrs := make(chan error, 8), make(chan error, 8)
	auth := natsConnect(t, n.ClientURL(), nats.UserInfo("auth", "a"), nats.CustomInboxPrefix(inbox.Prefix("auth")), permErrs(authErrs))
	blog := natsConnect(t, n.ClientURL(), nats.UserInfo("blog", "b"), nats.CustomInboxPrefix(inbox.Prefix("blog")), permErrs(blogErrs))

	svc, err := micro.AddService(auth, micro.Config{Name: "auth", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "auth.verify", QueueGroup: "q",
			Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("ok")) })}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := auth.Flush(); err != nil {
		t.Fatal(err)
	}

	// Requests (several, each reply allowed once) and discovery work.
	for i := range 3 {
		reply, err := blog.Request("auth.verify", nil, 3*time.Second)
		if err != nil || string(reply.Data) != "ok" {
			t.Fatalf("request %d: %v %v", i, reply, err)
		}
		if !strings.HasPrefix(reply.Subject, inbox.Prefix("blog")+".") {
			t.Errorf("reply came on %q, want blog's inbox", reply.Subject)
		}
	}
	if _, err := blog.Request("$SRV.PING.auth", nil, 3*time.Second); err != nil {
		t.Errorf("discovery: %v", err)
	}

	// Eavesdropping on replies is refused.
	for _, subject := range []string{inbox.Subjects("auth"), "_INBOX.>", ">", "_INBOX_auth.x"} {
		if _, err := blog.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		_ = blog.Flush()
		wantViolation(t, blogErrs, "blog subscribes to "+subject)
	}
	// Forged replies are refused in both directions.
	if err := blog.Publish(inbox.Prefix("auth")+".forged", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = blog.Flush()
	wantViolation(t, blogErrs, "blog publishes into auth's inbox")
	if err := auth.Publish(inbox.Prefix("blog")+".unsolicited", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = auth.Flush()
	wantViolation(t, authErrs, "auth publishes into blog's inbox without a request")

	// A client that keeps the shared default prefix gets no reply at all:
	// it may not subscribe to _INBOX.
	legacy := natsConnect(t, n.ClientURL(), nats.UserInfo("blog", "b"), permErrs(make(chan error, 8)))
	if _, err := legacy.Request("auth.verify", nil, 500*time.Millisecond); err == nil {
		t.Error("a request with the default _INBOX prefix got a reply")
	}
}

func TestNATSRestrictedUserNeedsAnInboxName(t *testing.T) {
	for _, name := range []string{"a.b", "a*", "a>", "a b"} {
		if n, err := StartNATS(NATSOptions{Users: []NATSUser{{Name: name, Password: "x", Subscribe: []string{}}}}); err == nil {
			n.Shutdown()
			t.Errorf("user %q accepted", name)
		}
	}
}
