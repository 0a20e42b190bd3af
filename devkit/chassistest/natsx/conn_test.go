package natsx_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/natsx"
	"blogplatform/chassis/natsx/inbox"
	"blogplatform/devkit/embedded"
)

// TestConnectUsesThePerUserInbox: with the platform's restricted users
// (each may subscribe to its own inbox only), a connection made by Connect
// gets its replies, as requester through Client and as micro responder
// (discovery included), and its reply subjects carry the user's prefix.
func TestConnectUsesThePerUserInbox(t *testing.T) {
	n, err := embedded.StartNATS(embedded.NATSOptions{Users: []embedded.NATSUser{
		{Name: "auth", Password: "a", Publish: []string{}, Subscribe: []string{"auth.>"}},
		{Name: "blog", Password: "b", Publish: []string{"auth.>"}, Subscribe: []string{}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	quiet := slog.New(slog.DiscardHandler)
	conn := func(user, password string) *nats.Conn {
		nc, err := natsx.Connect(natsx.ConnOptions{URL: n.ClientURL(), Name: user, User: user, Password: password, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	auth, blog := conn("auth", "a"), conn("blog", "b")
	newEchoService(t, auth, nil)

	if got := blog.NewRespInbox(); !strings.HasPrefix(got, inbox.Prefix("blog")+".") {
		t.Errorf("blog's reply subject %q lacks its inbox prefix", got)
	}
	client := natsx.NewClient(blog, natsx.ClientOptions{Timeout: 3 * time.Second, Logger: quiet})
	var resp echoResp
	if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "hi"}, &resp); err != nil || resp.Echo != "hi" {
		t.Fatalf("blog -> auth.echo: %+v %v", resp, err)
	}
	if _, err := blog.Request("$SRV.PING", nil, 3*time.Second); err != nil {
		t.Errorf("micro discovery: %v", err)
	}
}

func TestConnectRefusesAUserThatCannotNameAnInbox(t *testing.T) {
	if nc, err := natsx.Connect(natsx.ConnOptions{URL: "nats://127.0.0.1:1", User: "a.b", Logger: slog.New(slog.DiscardHandler)}); err == nil {
		nc.Close()
		t.Fatal("user a.b accepted")
	}
}
