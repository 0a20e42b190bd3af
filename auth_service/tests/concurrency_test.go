package tests

import (
	"sync"
	"testing"
	"time"

	"blogplatform/devkit/wait"
)

// TestConcurrentRefreshOfOnePair: a pair can be refreshed once. Of 20
// simultaneous attempts exactly one gets a new pair and the others get the
// normal 401, never a 500. Within the reuse grace period the duplicates are
// taken for the same client's repeated request: the winner's new pair
// keeps working and the old one does not. Without a grace period the
// duplicates count as reuse and the whole session ends.
func TestConcurrentRefreshOfOnePair(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		grace       string
		sessionKept bool
	}{
		{"WithinGrace", "5s", true},
		{"NoGrace", "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			settings := map[string]string{"REFRESH_REUSE_GRACE": tc.grace}
			replicas := []*replica{s.replica(settings), s.replica(settings)} // the race spans replicas too
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
			if tc.sessionKept {
				if len(won) != 1 {
					t.Fatalf("%d refreshes succeeded, want exactly 1", len(won))
				}
				for _, r := range replicas {
					expect(t, r.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 401, "permission denied: invalid access token")
					if res := r.do("GET", "/profile/mine", "", "Authorization", won[0].bearer()); res.status != 200 {
						t.Errorf("the winner's new pair: %d %q", res.status, res.message())
					}
				}
				return
			}
			if len(won) > 1 {
				t.Fatalf("%d refreshes succeeded, want at most 1", len(won))
			}
			for _, p := range append(won, u) {
				for _, r := range replicas {
					expect(t, r.do("GET", "/profile/mine", "", "Authorization", p.bearer()), 401, "permission denied: invalid access token")
				}
			}
		})
	}
}

// TestReuseAfterTheGracePeriodEndsTheSession: a consumed refresh token
// presented again within the grace period is refused and the session kept;
// presented after it, the whole session ends.
func TestReuseAfterTheGracePeriodEndsTheSession(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(map[string]string{"REFRESH_REUSE_GRACE": "1s"})
	u := r.signUp()
	res := r.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer())
	if res.status != 200 {
		t.Fatalf("refresh: %d %q", res.status, res.message())
	}
	next := pairOf(t, res)
	again := func() {
		t.Helper()
		expect(t, r.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer()), 401, "permission denied: claims ids")
	}
	again()
	if res := r.do("GET", "/profile/mine", "", "Authorization", next.bearer()); res.status != 200 {
		t.Fatalf("within the grace period the new pair must keep working: %d %q", res.status, res.message())
	}
	// Presented again until the grace period is over: refused every time,
	// and once it is over the session ends.
	wait.Eventually(t, 10*time.Second, "the session ends once the grace period is over", func() bool {
		again()
		return r.do("GET", "/profile/mine", "", "Authorization", next.bearer()).status != 200
	})
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", next.bearer()), 401, "permission denied: invalid access token")
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
