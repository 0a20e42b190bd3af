package authclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/localcache"
	"blogplatform/chassis/natsx"
)

const (
	adaID  = "66a0c6b2f1e4d3c2b1a09f8f"
	bobID  = "66a0c6b2f1e4d3c2b1a09f90"
	cacheT = time.Minute // the cache's TTL: longer than any test, so exp and events decide
)

// bearer is an Authorization header carrying a JWT-shaped token with jti
// and exp (the signature part is not checked by the blog: auth did it).
func bearer(jti string, exp time.Time) string {
	return bearerClaims(map[string]any{"sub": adaID, "jti": jti, "exp": exp.Unix()})
}

func bearerClaims(claims map[string]any) string {
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(claims)
	return "Bearer " + enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".c2ln"
}

// fakeAuth answers the combined subject with the user of each header (or
// an error), counting requests; during can run inside a request, between
// auth's answer and the caller's fill.
type fakeAuth struct {
	mu      sync.Mutex
	users   map[string]string // header → user id
	err     error
	calls   atomic.Int64
	during  func()
	subject string // the subject it serves; the combined one by default
}

func (f *fakeAuth) Request(_ context.Context, subject string, req, resp any) error {
	want := f.subject
	if want == "" {
		want = authwire.SubjectAuthenticateAuthorize
	}
	if subject != want && !(want == authwire.SubjectAuthentication && subject == authwire.SubjectAuthorization) {
		return fmt.Errorf("%w: %s: %w", natsx.ErrUnavailable, subject, nats.ErrNoResponders)
	}
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.during != nil {
		f.during()
	}
	if f.err != nil {
		return f.err
	}
	header := ""
	switch r := req.(type) {
	case authwire.AuthenticateAuthorizeRequest:
		header = r.Value
	case authwire.Text:
		header = r.Value
	case authwire.AuthorizationRequest:
		*resp.(*authwire.User) = *r.User
		return nil
	}
	id, ok := f.users[header]
	if !ok {
		return apperr.New(apperr.Unauthenticated, "permission denied: invalid access token")
	}
	*resp.(*authwire.User) = authwire.User{ID: id, Name: "user " + id}
	return nil
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCached(t *testing.T, auth *fakeAuth) (*Client, *Sessions, *testClock) {
	t.Helper()
	clk := &testClock{t: time.Unix(1_800_000_000, 0)}
	sessions := localcache.New[Verified](localcache.Options{Name: "sessions", TTL: cacheT, Now: clk.now})
	c := New(auth).WithSessions(sessions)
	c.now = clk.now
	return c, sessions, clk
}

// check runs Check and returns the user id or the error's status.
func check(t *testing.T, c *Client, header string, roles ...string) string {
	t.Helper()
	u, err := c.Check(context.Background(), header, roles...)
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) {
			return fmt.Sprint(ae.Status())
		}
		return err.Error()
	}
	return u.ID
}

// expectCalls checks how many requests auth got since the last call.
func expectCalls(t *testing.T, auth *fakeAuth, want int64, what string) {
	t.Helper()
	if got := auth.calls.Swap(0); got != want {
		t.Fatalf("%s: auth asked %d times, want %d", what, got, want)
	}
}

func TestSessionsServeRepeatedChecks(t *testing.T) {
	auth := &fakeAuth{}
	c, _, clk := newCached(t, auth)
	ada := bearer("jti-ada", clk.now().Add(time.Hour))
	auth.users = map[string]string{ada: adaID}

	for i := range 3 {
		if got := check(t, c, ada, RoleAuthor); got != adaID {
			t.Fatalf("check %d: %s", i, got)
		}
	}
	expectCalls(t, auth, 1, "three checks of one token and role")
	// The role set is part of the key: auth judges each role on its own.
	if got := check(t, c, ada, RoleEditor); got != adaID {
		t.Fatal(got)
	}
	expectCalls(t, auth, 1, "another role")
	// So are the header's exact bytes.
	if got := check(t, c, ada+" ", RoleAuthor); got != "401" {
		t.Fatalf("a header auth does not know: %s", got)
	}
	expectCalls(t, auth, 1, "a different header")
}

func TestSessionsNeverServeAfterTheTokensExp(t *testing.T) {
	auth := &fakeAuth{}
	c, sessions, clk := newCached(t, auth)
	ada := bearer("jti-ada", clk.now().Add(10*time.Second)) // long before the cache's TTL
	auth.users = map[string]string{ada: adaID}

	check(t, c, ada, RoleAuthor)
	clk.add(9 * time.Second)
	check(t, c, ada, RoleAuthor)
	expectCalls(t, auth, 1, "within exp")
	clk.add(time.Second) // now == exp
	auth.users = nil     // auth refuses the expired token
	if got := check(t, c, ada, RoleAuthor); got != "401" {
		t.Fatalf("at exp: %s, want auth's 401", got)
	}
	expectCalls(t, auth, 1, "at exp")
	if sessions.Len() != 1 {
		t.Fatalf("the expired answer was replaced: %d entries", sessions.Len())
	}

	// A token auth still accepts (its clock, its leeway) but whose exp
	// has passed here is not stored at all.
	late := bearer("jti-late", clk.now().Add(-time.Second))
	auth.users = map[string]string{late: adaID}
	check(t, c, late, RoleAuthor)
	check(t, c, late, RoleAuthor)
	expectCalls(t, auth, 2, "a token past its exp")
}

func TestSessionsDoNotCacheFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"401", apperr.New(apperr.Unauthenticated, "permission denied: invalid access token"), "401"},
		{"403", apperr.New(apperr.Forbidden, "permission denied: does not have sufficient role"), "403"},
		{"unavailable", fmt.Errorf("%w: timeout", natsx.ErrUnavailable), "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &fakeAuth{err: tc.err}
			c, sessions, clk := newCached(t, auth)
			ada := bearer("jti-ada", clk.now().Add(time.Hour))
			auth.users = map[string]string{ada: adaID}
			for range 2 {
				if got := check(t, c, ada, RoleAuthor); got != tc.want {
					t.Fatalf("got %s, want %s", got, tc.want)
				}
			}
			expectCalls(t, auth, 2, "two failing checks")
			if sessions.Len() != 0 {
				t.Fatalf("%d entries after failures", sessions.Len())
			}
			// The next success is asked for and then served.
			auth.err = nil
			check(t, c, ada, RoleAuthor)
			check(t, c, ada, RoleAuthor)
			expectCalls(t, auth, 1, "after the failure")
		})
	}
}

// A token whose id or expiry cannot be read has no tag an event could drop
// it by, and no bound: it is always asked for.
func TestSessionsSkipUnreadableTokens(t *testing.T) {
	exp := time.Unix(1_800_000_000, 0).Add(time.Hour).Unix()
	for _, tc := range []struct{ name, header string }{
		{"not a JWT", "Bearer opaque-token"},
		{"no Bearer prefix", "Token " + bearer("j", time.Unix(exp, 0))[len("Bearer "):]},
		{"lower-case bearer", "bearer " + bearer("j", time.Unix(exp, 0))[len("Bearer "):]},
		{"no jti", bearerClaims(map[string]any{"exp": exp})},
		{"empty jti", bearerClaims(map[string]any{"jti": "", "exp": exp})},
		{"no exp", bearerClaims(map[string]any{"jti": "j"})},
		{"exp not a number", bearerClaims(map[string]any{"jti": "j", "exp": "soon"})},
		{"exp beyond int64 nanoseconds", bearerClaims(map[string]any{"jti": "j", "exp": 1e300})},
		{"four parts", bearer("j", time.Unix(exp, 0)) + ".more"},
		{"payload not base64url", "Bearer a.%%%.c"},
		{"payload not JSON", "Bearer a." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &fakeAuth{users: map[string]string{tc.header: adaID}}
			c, sessions, _ := newCached(t, auth)
			check(t, c, tc.header, RoleAuthor)
			check(t, c, tc.header, RoleAuthor)
			expectCalls(t, auth, 2, "an unreadable token")
			if sessions.Len() != 0 {
				t.Fatalf("%d entries", sessions.Len())
			}
		})
	}
}

// An event that lands while auth is answering refuses the fill: auth's yes
// may predate the sign-out, so it must not be stored after it.
func TestSessionsRefuseAStaleFill(t *testing.T) {
	auth := &fakeAuth{}
	c, sessions, clk := newCached(t, auth)
	ada := bearer("jti-ada", clk.now().Add(time.Hour))
	auth.users = map[string]string{ada: adaID}
	auth.during = func() {
		c.HandleChange(authwire.SubjectChanges, mustJSON(t, authwire.Change{Kind: authwire.ChangeSession, UserID: adaID, SessionID: "jti-ada"}))
	}
	if got := check(t, c, ada, RoleAuthor); got != adaID {
		t.Fatal(got) // the request itself got its answer
	}
	if sessions.Len() != 0 {
		t.Fatal("an answer from before the event was stored after it")
	}
	auth.during = nil
	check(t, c, ada, RoleAuthor)
	check(t, c, ada, RoleAuthor)
	expectCalls(t, auth, 2, "the refused fill, then one fill")
}

func TestSessionsFollowChanges(t *testing.T) {
	auth := &fakeAuth{}
	c, sessions, clk := newCached(t, auth)
	exp := clk.now().Add(time.Hour)
	ada1, ada2, bob := bearer("ada-1", exp), bearer("ada-2", exp), bearer("bob-1", exp)
	auth.users = map[string]string{ada1: adaID, ada2: adaID, bob: bobID}
	warm := func() {
		t.Helper()
		for _, h := range []string{ada1, ada2, bob} {
			check(t, c, h, RoleAuthor)
			check(t, c, h, RoleEditor)
		}
		auth.calls.Store(0)
	}
	// cachedFor lists which headers are served without asking auth.
	cachedFor := func() []string {
		var served []string
		for name, h := range map[string]string{"ada1": ada1, "ada2": ada2, "bob": bob} {
			if _, ok := c.cached(sessionKey(h, []string{RoleAuthor})); ok {
				if _, ok := c.cached(sessionKey(h, []string{RoleEditor})); !ok {
					t.Fatalf("%s: one role dropped, the other kept", name)
				}
				served = append(served, name)
			}
		}
		slices.Sort(served)
		return served
	}
	for _, tc := range []struct {
		name   string
		change any
		want   []string
	}{
		{"a session ends", authwire.Change{Kind: authwire.ChangeSession, UserID: adaID, SessionID: "ada-1"}, []string{"ada2", "bob"}},
		{"a session event without its id drops the user", authwire.Change{Kind: authwire.ChangeSession, UserID: adaID}, []string{"bob"}},
		{"a user changes", authwire.Change{Kind: authwire.ChangeUser, UserID: adaID}, []string{"bob"}},
		{"user ids compare case-insensitively", authwire.Change{Kind: authwire.ChangeUser, UserID: "66A0C6B2F1E4D3C2B1A09F8F"}, []string{"bob"}},
		{"an API key changes", authwire.Change{Kind: authwire.ChangeAPIKey, APIKeyHash: authwire.APIKeyHash("k")}, []string{"ada1", "ada2", "bob"}},
		{"an unknown kind empties the cache", authwire.Change{Kind: "tenant", UserID: adaID}, nil},
		{"a user event without a user empties the cache", authwire.Change{Kind: authwire.ChangeUser}, nil},
		{"an unreadable event empties the cache", "not an event", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sessions.Clear()
			warm()
			if got := cachedFor(); len(got) != 3 {
				t.Fatalf("warm: %v", got)
			}
			data := mustJSON(t, tc.change)
			if s, ok := tc.change.(string); ok {
				data = []byte(s)
			}
			c.HandleChange(authwire.SubjectChanges, data)
			if got := cachedFor(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("served from the cache after the event: %v, want %v", got, tc.want)
			}
		})
	}
}

// Against an auth that does not serve the combined subject (the
// reference's, which publishes no change events), nothing is cached.
func TestSessionsOffAgainstTheReferenceSubjects(t *testing.T) {
	auth := &fakeAuth{subject: authwire.SubjectAuthentication}
	c, sessions, clk := newCached(t, auth)
	ada := bearer("jti-ada", clk.now().Add(time.Hour))
	auth.users = map[string]string{ada: adaID}
	check(t, c, ada, RoleAuthor)
	check(t, c, ada, RoleAuthor)
	expectCalls(t, auth, 4, "two checks over the two reference subjects")
	if sessions.Len() != 0 {
		t.Fatalf("%d entries", sessions.Len())
	}
}

// Without a cache every check asks auth (and HandleChange is harmless).
func TestSessionsOff(t *testing.T) {
	auth := &fakeAuth{}
	ada := bearer("jti-ada", time.Now().Add(time.Hour))
	auth.users = map[string]string{ada: adaID}
	c := New(auth).WithSessions(nil)
	check(t, c, ada, RoleAuthor)
	check(t, c, ada, RoleAuthor)
	c.HandleChange(authwire.SubjectChanges, []byte("{}"))
	expectCalls(t, auth, 2, "no cache")
}

func TestSessionKey(t *testing.T) {
	if sessionKey("Bearer x", []string{RoleAuthor}) == sessionKey("Bearer x", []string{RoleEditor}) {
		t.Fatal("roles share a key")
	}
	if sessionKey("Bearer x", []string{RoleAuthor, RoleEditor}) == sessionKey("Bearer x", []string{RoleAuthor}) {
		t.Fatal("role sets share a key")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
