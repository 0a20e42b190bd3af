package authclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
	"blogplatform/chassis/natsx"
)

// scripted answers each subject with a fixed user or error; a subject it
// has no answer for gets no responders, as from an auth that does not serve
// it (the reference's, for the combined subject).
type scripted map[string]func(resp any) error

func (s scripted) Request(_ context.Context, subject string, _, resp any) error {
	answer, ok := s[subject]
	if !ok {
		return fmt.Errorf("%w: %s: %w", natsx.ErrUnavailable, subject, nats.ErrNoResponders)
	}
	return answer(resp)
}

func user(id string) func(any) error {
	return func(resp any) error {
		*resp.(*authwire.User) = authwire.User{ID: id, Name: "Ada"}
		return nil
	}
}

func fails(err error) func(any) error { return func(any) error { return err } }

func TestRequire(t *testing.T) {
	const id = "66a0c6b2f1e4d3c2b1a09f8f"
	unavailable := fmt.Errorf("%w: auth.authentication: nats: no responders available for request", natsx.ErrUnavailable)
	timeout := fmt.Errorf("%w: %s: %w", natsx.ErrUnavailable, authwire.SubjectAuthenticateAuthorize, context.DeadlineExceeded)
	cases := []struct {
		name     string
		rpc      scripted
		status   int
		message  string
		nextRuns bool
	}{
		{"authenticated and authorized", scripted{authwire.SubjectAuthentication: user(id), authwire.SubjectAuthorization: user(id)}, 200, "", true},
		{"auth's 401 keeps its status and bare message",
			scripted{authwire.SubjectAuthentication: fails(apperr.New(apperr.Unauthenticated, "permission denied: missing Authorization"))},
			401, "permission denied: missing Authorization", false},
		{"auth's 403", scripted{authwire.SubjectAuthentication: user(id),
			authwire.SubjectAuthorization: fails(apperr.New(apperr.Forbidden, "permission denied: does not have sufficient role"))},
			403, "permission denied: does not have sufficient role", false},
		{"unavailable", scripted{authwire.SubjectAuthentication: fails(unavailable)}, 503, UnavailableMessage, false},
		{"auth's own 5xx", scripted{authwire.SubjectAuthentication: fails(apperr.New(apperr.Internal, "something went wrong"))},
			503, UnavailableMessage, false},
		{"user without a valid id", scripted{authwire.SubjectAuthentication: user("not-an-id")}, 503, UnavailableMessage, false},
		{"authorization unavailable", scripted{authwire.SubjectAuthentication: user(id), authwire.SubjectAuthorization: fails(unavailable)},
			503, UnavailableMessage, false},
		{"combined: authenticated and authorized", scripted{authwire.SubjectAuthenticateAuthorize: user(id)}, 200, "", true},
		{"combined: auth's 401", scripted{authwire.SubjectAuthenticateAuthorize: fails(apperr.New(apperr.Unauthenticated, "permission denied: invalid access token"))},
			401, "permission denied: invalid access token", false},
		{"combined: auth's 403", scripted{authwire.SubjectAuthenticateAuthorize: fails(apperr.New(apperr.Forbidden, "permission denied: does not have sufficient role"))},
			403, "permission denied: does not have sufficient role", false},
		{"combined: user without a valid id", scripted{authwire.SubjectAuthenticateAuthorize: user("not-an-id")}, 503, UnavailableMessage, false},
		// A timeout or open breaker is not "not served": no fallback, so a
		// slow auth is not asked twice more.
		{"combined: timeout without fallback", scripted{authwire.SubjectAuthenticateAuthorize: fails(timeout),
			authwire.SubjectAuthentication: user(id), authwire.SubjectAuthorization: user(id)}, 503, UnavailableMessage, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := httpx.NewEngine(httpx.Options{})
			ran := false
			e.GET("/p", New(c.rpc).Require(RoleAuthor), func(ctx *gin.Context) {
				ran = true
				if User(ctx).ID != id {
					t.Errorf("user %+v", User(ctx))
				}
				httpx.OK(ctx, "ok")
			})
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/p", nil))
			if rec.Code != c.status || ran != c.nextRuns {
				t.Fatalf("status %d (handler ran: %v), want %d (%v): %s", rec.Code, ran, c.status, c.nextRuns, rec.Body)
			}
			if c.message != "" {
				var env httpx.Envelope
				if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Message != c.message {
					t.Errorf("body %s, want message %q", rec.Body, c.message)
				}
			}
		})
	}
}
