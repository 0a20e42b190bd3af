package authclient

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
	"blogplatform/chassis/natsx"
	"blogplatform/devkit/embedded"
)

// recording passes requests on and remembers their subjects, in order.
type recording struct {
	Requester
	mu       sync.Mutex
	subjects []string
}

func (r *recording) Request(ctx context.Context, subject string, req, resp any) error {
	r.mu.Lock()
	r.subjects = append(r.subjects, subject)
	r.mu.Unlock()
	return r.Requester.Request(ctx, subject, req, resp)
}

// take returns the subjects asked since the last take.
func (r *recording) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.subjects
	r.subjects = nil
	return s
}

// protected serves GET /author/drafts behind Require(RoleAuthor).
func protected(client *Client) http.Handler {
	e := httpx.NewEngine(httpx.Options{})
	e.GET("/author/drafts", client.Require(RoleAuthor), func(c *gin.Context) { httpx.Data(c, "success", User(c)) })
	return e
}

// get sends GET /author/drafts with header and returns status and message.
func get(t *testing.T, e http.Handler, header string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/author/drafts", nil)
	req.Header.Set("Authorization", header)
	e.ServeHTTP(rec, req)
	var env httpx.Envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	return rec.Code, env.Message
}

// TestCheckFallsBackToTheReferenceSubjects: against an auth that serves only
// auth.authentication and auth.authorization, the first protected request
// gets no responders on the combined subject at once (no retries: the
// client retries on no responders with a long pause here) and is answered
// by the two subjects; within SeparateWindow later requests use only the
// two; after it the combined subject is tried again.
func TestCheckFallsBackToTheReferenceSubjects(t *testing.T) {
	const pause = 300 * time.Millisecond
	rpc := &recording{Requester: natsx.NewClient(startReferenceAuth(t), natsx.ClientOptions{Timeout: 5 * time.Second,
		Retry: natsx.RetryOptions{Idempotent: []string{"auth.>"}, MaxAttempts: 4, NoResponderPause: pause}})}
	client := New(rpc)
	now := time.Unix(1_000_000, 0)
	client.now = func() time.Time { return now }
	e := protected(client)
	both := []string{authwire.SubjectAuthentication, authwire.SubjectAuthorization}
	probeThenBoth := append([]string{authwire.SubjectAuthenticateAuthorize}, both...)

	start := time.Now()
	if status, msg := get(t, e, "Bearer known"); status != http.StatusOK {
		t.Fatalf("first request: %d %q", status, msg)
	}
	if took := time.Since(start); took >= pause {
		t.Errorf("first request took %v: the combined subject's no responders was retried", took)
	}
	if got := rpc.take(); !slices.Equal(got, probeThenBoth) {
		t.Fatalf("first request asked %v, want %v", got, probeThenBoth)
	}

	steps := []struct {
		name, header string
		advance      time.Duration
		status       int
		message      string
		want         []string
	}{
		{"within the window: the two subjects only", "Bearer known", 0, http.StatusOK, "success", both},
		{"a 401 within the window", "Bearer unknown", SeparateWindow / 2, http.StatusUnauthorized, noDocuments, both[:1]},
		{"a 403 within the window", "Bearer gone", SeparateWindow/2 - time.Nanosecond, http.StatusForbidden, noDocuments, both},
		{"after the window: the combined subject again", "Bearer known", time.Nanosecond, http.StatusOK, "success", probeThenBoth},
		{"and a new window", "Bearer known", time.Second, http.StatusOK, "success", both},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		status, msg := get(t, e, s.header)
		if status != s.status || msg != s.message {
			t.Fatalf("%s: %d %q, want %d %q", s.name, status, msg, s.status, s.message)
		}
		if got := rpc.take(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: asked %v, want %v", s.name, got, s.want)
		}
	}
}

// TestCheckAsksOnceWhenTheCombinedSubjectIsServed: against an auth serving
// auth.authenticate.authorize (and the reference subjects, as ours does),
// every protected request is one NATS message on the combined subject,
// counted by a plain subscription on auth.>, whatever the answer.
func TestCheckAsksOnceWhenTheCombinedSubjectIsServed(t *testing.T) {
	srv, err := embedded.StartNATS(embedded.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conn := func() *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}

	// The auth side, answering by the authwire contract.
	responder := conn()
	serve := func(subject string, answer func(data json.RawMessage) []byte) {
		if _, err := responder.QueueSubscribe(subject, "q", func(m *nats.Msg) {
			var env natsx.Message
			_ = json.Unmarshal(m.Data, &env)
			_ = m.Respond(answer(env.Data))
		}); err != nil {
			t.Fatal(err)
		}
	}
	const authorID = "66a0c6b2f1e4d3c2b1a09f8f"
	author := authwire.User{ID: authorID, Name: "Ada"}
	serve(authwire.SubjectAuthenticateAuthorize, func(data json.RawMessage) []byte {
		var req authwire.AuthenticateAuthorizeRequest
		_ = json.Unmarshal(data, &req)
		switch {
		case req.Value == "":
			return natsx.EncodeError("401:permission denied: missing Authorization")
		case req.Value != "Bearer author" && req.Value != "Bearer learner":
			return natsx.EncodeError("401:permission denied: invalid access token")
		case req.Value == "Bearer learner" || !slices.Contains(req.Roles, RoleAuthor):
			return natsx.EncodeError("403:permission denied: does not have sufficient role")
		}
		out, _ := natsx.Encode(author)
		return out
	})
	for _, subject := range []string{authwire.SubjectAuthentication, authwire.SubjectAuthorization} {
		serve(subject, func(json.RawMessage) []byte { out, _ := natsx.Encode(author); return out })
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}

	// An observer that sees every message on auth.> without answering.
	observer := conn()
	seen, err := observer.SubscribeSync("auth.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := observer.Flush(); err != nil {
		t.Fatal(err)
	}

	nc, err := natsx.Connect(natsx.ConnOptions{URL: srv.ClientURL(), Name: t.Name(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e := protected(New(natsx.NewClient(nc, natsx.ClientOptions{Timeout: 2 * time.Second, Breaker: breaker})))

	requests := []struct {
		header  string
		status  int
		message string
	}{
		{"Bearer author", http.StatusOK, "success"},
		{"", http.StatusUnauthorized, "permission denied: missing Authorization"},
		{"Bearer revoked", http.StatusUnauthorized, "permission denied: invalid access token"},
		{"Bearer learner", http.StatusForbidden, "permission denied: does not have sufficient role"},
		{"Bearer author", http.StatusOK, "success"},
	}
	for i, r := range requests {
		if status, msg := get(t, e, r.header); status != r.status || msg != r.message {
			t.Fatalf("request %d (%q): %d %q, want %d %q", i, r.header, status, msg, r.status, r.message)
		}
	}
	// Every message was routed to the observer before its reply came back;
	// the flush's round trip puts them all in its queue.
	if err := observer.Flush(); err != nil {
		t.Fatal(err)
	}
	n, _, err := seen.Pending()
	if err != nil || n != len(requests) {
		t.Fatalf("%d messages on auth.> for %d protected requests (%v), want one each", n, len(requests), err)
	}
	for range n {
		m, err := seen.NextMsg(time.Second)
		if err != nil || m.Subject != authwire.SubjectAuthenticateAuthorize {
			t.Fatalf("message %v %v, want one on %s", m, err, authwire.SubjectAuthenticateAuthorize)
		}
	}
}
