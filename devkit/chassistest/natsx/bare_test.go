package natsx_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/natsx"
)

// TestErrorRepliesAreAnswersForTheBreaker: error replies, with a status
// prefix or without one (as older auth services send), come back as the
// remote's answer (*apperr.Error, or *BareError for the caller to
// classify), and a hundred of them leave the breaker closed.
func TestErrorRepliesAreAnswersForTheBreaker(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s.ClientURL())
	replies := map[string]string{
		"auth.bare":     "mongo: no documents in result",
		"auth.internal": "500:something went wrong",
		"auth.denied":   "403:permission denied",
	}
	for subject, text := range replies {
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(natsx.EncodeError(text)) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := natsx.NewClient(connect(t, s.ClientURL()), natsx.ClientOptions{Timeout: time.Second,
		Breaker: natsx.BreakerOptions{MinRequests: 5, FailureRatio: 0.5, OpenTimeout: time.Minute}})
	subjects := []string{"auth.bare", "auth.internal", "auth.denied"}
	for i := range 100 {
		subject := subjects[i%len(subjects)]
		err := c.Request(t.Context(), subject, echoReq{Value: "x"}, &echoResp{})
		var bare *natsx.BareError
		var remote *apperr.Error
		switch {
		case subject != "auth.bare" && errors.Is(err, natsx.ErrUnavailable):
			t.Fatalf("%s: %v, want the remote's answer", subject, err)
		case subject == "auth.bare" && (!errors.As(err, &bare) || bare.Message != replies[subject] || bare.Subject != subject):
			t.Fatalf("%s: %#v, want a BareError", subject, err)
		case subject != "auth.bare" && (!errors.As(err, &remote) || apperr.WireText(remote) != replies[subject]):
			t.Fatalf("%s: %#v, want %q", subject, err, replies[subject])
		}
	}
	if st := c.BreakerState(); st != "closed" {
		t.Fatalf("breaker %s after 100 error replies", st)
	}
}
