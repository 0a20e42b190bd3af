package tests

import (
	"sync"
	"testing"
)

// TestConcurrentRefreshOfOnePair: a pair can be refreshed once. Of 20
// simultaneous attempts at most one gets a new pair and the others get the
// normal 401, never a 500; and since the refresh token was presented more
// than once (a copy may be in other hands), the session ends: a new pair
// handed out in the race does not work either.
func TestConcurrentRefreshOfOnePair(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	replicas := []*replica{s.replica(nil), s.replica(nil)} // the race spans replicas too
	u := replicas[0].signUp()
	const n = 20
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = replicas[i%2].do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer())
		})
	}
	wg.Wait()
	var won []session
	for _, res := range results {
		switch {
		case res.status == 200:
			won = append(won, pairOf(t, res))
		case res.status != 401 || res.message() != "permission denied: claims ids":
			t.Errorf("loser got %d %q", res.status, res.message())
		}
	}
	if len(won) > 1 {
		t.Fatalf("%d refreshes succeeded, want at most 1", len(won))
	}
	for _, p := range append(won, u) {
		for _, r := range replicas {
			expect(t, r.do("GET", "/profile/mine", "", "Authorization", p.bearer()), 401, "permission denied: invalid access token")
		}
	}
}

// TestConcurrentSignUpsWithOneEmail: one success, then the normal 400 for
// every other, never a 500 (the unique index catches check-then-insert races).
func TestConcurrentSignUpsWithOneEmail(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	replicas := []*replica{s.replica(nil), s.replica(nil)}
	email := uniqueEmail()
	const n = 20
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = replicas[i%2].do("POST", "/signup/basic", `{"email":"`+email+`","password":"secret1","name":"Racer"}`)
		})
	}
	wg.Wait()
	wins := 0
	for _, res := range results {
		switch {
		case res.status == 200:
			wins++
		case res.status != 400 || res.message() != "user already registered":
			t.Errorf("loser got %d %q", res.status, res.message())
		}
	}
	if wins != 1 {
		t.Fatalf("%d sign-ups succeeded, want exactly 1", wins)
	}
	n2, err := s.db().Collection("users").CountDocuments(t.Context(), map[string]any{"email": email})
	if err != nil || n2 != 1 {
		t.Fatalf("%d users with the email (%v)", n2, err)
	}
}
