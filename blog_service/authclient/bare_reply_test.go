package authclient

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
	"blogplatform/chassis/natsx"
	"blogplatform/devkit/embedded"
)

// Texts the reference's auth_service answers without a status prefix.
const (
	noDocuments = "mongo: no documents in result"
	badHex      = "the provided hex string is not a valid ObjectID"
	knownID     = "66a0c6b2f1e4d3c2b1a09f8f"
	goneID      = "66a0c6b2f1e4d3c2b1a09f90" // authenticates, then is missing from the store
)

// startReferenceAuth starts an embedded NATS server with a responder that
// answers the three auth subjects the way the reference's auth_service
// does, including its error replies without a "NNN:" prefix, and returns a
// connection for the client side.
func startReferenceAuth(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := embedded.StartNATS(embedded.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	responder, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(responder.Close)
	reply := func(m *nats.Msg, user *authwire.User, bare string) {
		out := natsx.EncodeError(bare)
		if user != nil {
			out, _ = natsx.Encode(user)
		}
		_ = m.Respond(out)
	}
	handle := func(subject string, answer func(data json.RawMessage) (*authwire.User, string)) {
		if _, err := responder.QueueSubscribe(subject, "q", func(m *nats.Msg) {
			var req natsx.Message
			_ = json.Unmarshal(m.Data, &req)
			user, bare := answer(req.Data)
			reply(m, user, bare)
		}); err != nil {
			t.Fatal(err)
		}
	}
	handle(authwire.SubjectAuthentication, func(data json.RawMessage) (*authwire.User, string) {
		var h authwire.Text
		_ = json.Unmarshal(data, &h)
		switch h.Value {
		case "Bearer known":
			return &authwire.User{ID: knownID, Name: "Ada"}, ""
		case "Bearer gone":
			return &authwire.User{ID: goneID, Name: "Gone"}, ""
		default:
			return nil, noDocuments
		}
	})
	handle(authwire.SubjectAuthorization, func(data json.RawMessage) (*authwire.User, string) {
		var r authwire.AuthorizationRequest
		_ = json.Unmarshal(data, &r)
		if r.User != nil && r.User.ID == knownID {
			return r.User, ""
		}
		return nil, noDocuments
	})
	handle(authwire.SubjectProfileUser, func(data json.RawMessage) (*authwire.User, string) {
		var id authwire.Text
		_ = json.Unmarshal(data, &id)
		switch {
		case id.Value == knownID:
			return &authwire.User{ID: knownID, Name: "Ada"}, ""
		case len(id.Value) != 24:
			return nil, badHex
		default:
			return nil, noDocuments
		}
	})
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	nc, err := natsx.Connect(natsx.ConnOptions{URL: srv.ClientURL(), Name: t.Name(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// breaker is the blog's breaker shape with a small minimum, so that a few
// dozen failures would open it.
var breaker = natsx.BreakerOptions{FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, OpenTimeout: time.Minute}

// TestBareErrorRepliesAreClassifiedBySubject: an error reply without a
// status prefix is what the reference's blog made of it, by subject: 401 for
// authentication, 403 for authorization, and "user missing" for a profile
// look-up; never 503.
func TestBareErrorRepliesAreClassifiedBySubject(t *testing.T) {
	client := New(natsx.NewClient(startReferenceAuth(t), natsx.ClientOptions{Timeout: 2 * time.Second, Breaker: breaker}))
	e := httpx.NewEngine(httpx.Options{})
	e.GET("/author/drafts", client.Require(RoleAuthor), func(c *gin.Context) { httpx.Data(c, "success", User(c)) })

	routes := []struct {
		name, header string
		status       int
		message      string
	}{
		{"authentication answered without a prefix", "Bearer unknown", http.StatusUnauthorized, noDocuments},
		{"authorization answered without a prefix", "Bearer gone", http.StatusForbidden, noDocuments},
		{"both answered", "Bearer known", http.StatusOK, "success"},
	}
	for _, tt := range routes {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/author/drafts", nil)
			req.Header.Set("Authorization", tt.header)
			e.ServeHTTP(rec, req)
			var env httpx.Envelope
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if rec.Code != tt.status || env.Status != tt.status || env.Message != tt.message {
				t.Fatalf("got %d %s, want %d with message %q", rec.Code, rec.Body, tt.status, tt.message)
			}
		})
	}

	profiles := []struct{ name, id string }{
		{"missing or inactive user", "66a0c6b2f1e4d3c2b1a09f91"},
		{"bad hex", "not-hex"},
	}
	for _, tt := range profiles {
		t.Run("profile: "+tt.name, func(t *testing.T) {
			_, err := client.Profile(t.Context(), tt.id)
			if e := apperr.From(err); err == nil || e.Code != apperr.NotFound {
				t.Fatalf("Profile(%q) = %v, want a not-found error", tt.id, err)
			}
		})
	}
	if u, err := client.Profile(t.Context(), knownID); err != nil || u.Name != "Ada" {
		t.Fatalf("Profile(known) = %+v, %v", u, err)
	}
}

// TestBareErrorRepliesNeverOpenTheBreaker: a hundred well-formed error
// replies (bare or prefixed, 4xx or 5xx) are answers, so the breaker stays
// closed and the next good request goes through at once. The same client
// facing as many transport failures (no responders) does open it, so the
// setup can tell the difference.
func TestBareErrorRepliesNeverOpenTheBreaker(t *testing.T) {
	nc := startReferenceAuth(t)
	rpc := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 2 * time.Second, Breaker: breaker})
	client := New(rpc)
	ctx := t.Context()
	for i := range 100 {
		var err error
		switch i % 3 {
		case 0:
			_, err = client.Authenticate(ctx, "Bearer unknown")
		case 1:
			err = client.Authorize(ctx, authwire.User{ID: goneID}, RoleAuthor)
		default:
			_, err = client.Profile(ctx, "not-hex")
		}
		if err == nil {
			t.Fatalf("request %d succeeded, want the bare error", i)
		}
		if s := rpc.BreakerState(); s != "closed" {
			t.Fatalf("breaker %s after %d well-formed error replies: %v", s, i+1, err)
		}
	}
	start := time.Now()
	if _, err := client.Authenticate(ctx, "Bearer known"); err != nil {
		t.Fatalf("good request after the error replies: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("good request took %v", took)
	}

	// Control: a client like it facing transport failures (nobody answers)
	// does open, and then refuses even a request auth would answer.
	control := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 2 * time.Second, Breaker: breaker})
	for range 20 {
		var out authwire.User
		_ = control.Request(ctx, "auth.nobody", authwire.Text{}, &out)
	}
	if s := control.BreakerState(); s != "open" {
		t.Fatalf("breaker %s after 20 requests nobody answered, want open", s)
	}
	var out authwire.User
	if err := control.Request(ctx, authwire.SubjectProfileUser, authwire.Text{Value: knownID}, &out); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("request through the open breaker: %v", err)
	}
}
