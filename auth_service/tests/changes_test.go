package tests

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/authwire"
)

// jtiOf reads the jti claim of a JWT without verifying it (the test's own
// tokens).
func jtiOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.ID == "" {
		t.Fatalf("no jti in %s: %v", raw, err)
	}
	return claims.ID
}

// changeEvents follows auth's change events like any other service would.
type changeEvents struct {
	t  *testing.T
	nc *nats.Conn
	ch chan *nats.Msg
}

func followChanges(t *testing.T, s *stack) *changeEvents {
	t.Helper()
	ch := make(chan *nats.Msg, 64)
	sub, err := s.nc.ChanSubscribe(authwire.SubjectChanges, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &changeEvents{t: t, nc: s.nc, ch: ch}
}

// published returns the events published so far. The server delivers a
// publication to a subscriber before it answers a later ping from it, and a
// replica publishes before it answers its client: after the flush, every
// event of a request that has been answered is in the channel, no waiting.
func (e *changeEvents) published() []authwire.Change {
	e.t.Helper()
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	var out []authwire.Change
	for {
		select {
		case m := <-e.ch:
			var c authwire.Change
			if err := json.Unmarshal(m.Data, &c); err != nil {
				e.t.Fatalf("event %q: %v", m.Data, err)
			}
			out = append(out, c)
		default:
			return out
		}
	}
}

func (e *changeEvents) expect(want ...authwire.Change) {
	e.t.Helper()
	got := e.published()
	if len(got) != len(want) {
		e.t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			e.t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestChangeEventsAnnounceEveryChange: each change a client or an operator
// makes is announced on events.auth.changed by the time the change's answer
// is given.
func TestChangeEventsAnnounceEveryChange(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	noGrace := map[string]string{"REFRESH_REUSE_GRACE": "0"}
	a, b := s.replica(noGrace), s.replica(noGrace)
	events := followChanges(t, s)
	session := func(userID, token string) authwire.Change {
		return authwire.Change{Kind: authwire.ChangeSession, UserID: userID, SessionID: jtiOf(t, token)}
	}

	t.Run("sign-up, sign-in and reads change nothing", func(t *testing.T) {
		u := a.signUp()
		b.signIn(u.email, u.password)
		expect(t, b.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 200, "success")
		expect(t, a.do("GET", "/profile/id/"+u.userID, ""), 200, "success")
		expect(t, b.do("GET", "/verify/apikey", "", "x-api-key", s.apiKey), 200, "success")
		events.expect()
	})
	t.Run("sign-out ends the access token's session", func(t *testing.T) {
		u := a.signUp()
		events.published()
		expect(t, b.do("DELETE", "/signout", "", "Authorization", u.bearer()), 200, "signout success")
		events.expect(session(u.userID, u.access))
	})
	t.Run("refresh ends the replaced session", func(t *testing.T) {
		u := a.signUp()
		events.published()
		pairOf(t, refreshOn(a, u))
		events.expect(session(u.userID, u.access))
	})
	t.Run("refresh token reuse changes the user", func(t *testing.T) {
		u := a.signUp()
		pairOf(t, refreshOn(a, u))
		events.published()
		expect(t, refreshOn(b, u), 401, "permission denied: claims ids")
		events.expect(authwire.Change{Kind: authwire.ChangeUser, UserID: u.userID})
	})
	t.Run("a forgotten user snapshot changes the user", func(t *testing.T) {
		u := a.signUp()
		events.published()
		b.Users.Forget(t.Context(), strings.ToUpper(u.userID))
		events.expect(authwire.Change{Kind: authwire.ChangeUser, UserID: u.userID})
	})
	t.Run("api keys created and disabled", func(t *testing.T) {
		key := "k-" + randomHex(8)
		keyChange := authwire.Change{Kind: authwire.ChangeAPIKey, APIKeyHash: authwire.APIKeyHash(key)}
		if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
			t.Fatal(err)
		}
		events.expect(keyChange)
		if ok, err := b.APIKeys.Disable(t.Context(), key); err != nil || !ok {
			t.Fatalf("disable: %v %v", ok, err)
		}
		events.expect(keyChange)
		if ok, err := b.APIKeys.Disable(t.Context(), "k-unknown-"+randomHex(8)); err != nil || ok {
			t.Fatalf("disable unknown: %v %v", ok, err)
		}
		events.expect() // nothing matched, nothing changed
	})
}
