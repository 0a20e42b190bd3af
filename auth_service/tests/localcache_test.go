package tests

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/chassis/apperr"
)

// l1Hits is how many answers replica r served from its first-level cache
// name ("auth_session", "auth_user", "auth_apikey").
func l1Hits(r *replica, name string) float64 {
	return testutil.ToFloat64(r.Runtime.Metrics.CacheLookups.WithLabelValues("l1_"+name, "hit"))
}

// servedFromL1 runs request on r until r answers it from its first-level
// cache name, and fails if it does not within a few tries: the coherence
// checks after it would prove nothing about a cache that is not used. (A
// fill is refused when any change event lands while it is being read, and
// a replica also receives its own events a moment after making a change.)
func servedFromL1(t *testing.T, r *replica, name string, request func()) {
	t.Helper()
	for range 5 {
		before := l1Hits(r, name)
		request()
		if l1Hits(r, name) > before {
			return
		}
	}
	t.Fatalf("replica did not answer from its %s cache", name)
}

// authorizeOn is the combined authentication and authorization of a
// protected blog request, as replica r answers it.
func authorizeOn(t *testing.T, r *replica, u session, role string) error {
	t.Helper()
	_, err := r.Auth.AuthenticateAuthorize(t.Context(), u.bearer(), []string{role})
	return err
}

func statusOf(err error) int {
	if err == nil {
		return 200
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae.Status()
	}
	return 500
}

// TestLocalCachesFollowChangesOnEveryReplica: each replica answers the hot
// paths from its own first-level caches, and a change made through one
// replica is enforced by the other on the very next request (no waiting,
// no TTL): the change's event reaches every replica before the client that
// made the change has its answer.
func TestLocalCachesFollowChangesOnEveryReplica(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	noGrace := map[string]string{"REFRESH_REUSE_GRACE": "0", "LOCAL_CACHE_TTL": "1m"}
	a, b := s.replica(noGrace), s.replica(noGrace)
	mine := func(r *replica, u session) response {
		return r.do("GET", "/profile/mine", "", "Authorization", u.bearer())
	}
	warm := func(t *testing.T, u session) {
		t.Helper()
		for _, r := range []*replica{a, b} {
			servedFromL1(t, r, "auth_session", func() { expect(t, mine(r, u), 200, "success") })
		}
	}

	t.Run("sign-out", func(t *testing.T) {
		u := a.signUp()
		warm(t, u)
		expect(t, a.do("DELETE", "/signout", "", "Authorization", u.bearer()), 200, "signout success")
		expect(t, mine(a, u), 401, "permission denied: invalid access token")
		expectSoon(t, func() response { return mine(b, u) }, 401, "permission denied: invalid access token")
	})
	t.Run("refresh", func(t *testing.T) {
		u := a.signUp()
		warm(t, u)
		fresh := pairOf(t, refreshOn(a, u))
		expect(t, mine(a, u), 401, "permission denied: invalid access token")
		expectSoon(t, func() response { return mine(b, u) }, 401, "permission denied: invalid access token")
		expect(t, mine(b, fresh), 200, "success")
	})
	t.Run("refresh token reuse", func(t *testing.T) {
		u := a.signUp()
		latest := pairOf(t, refreshOn(a, u))
		warm(t, latest)
		expect(t, refreshOn(a, u), 401, "permission denied: claims ids")
		expect(t, mine(a, latest), 401, "permission denied: invalid access token")
		expectSoon(t, func() response { return mine(b, latest) }, 401, "permission denied: invalid access token")
	})
	t.Run("api key disabled", func(t *testing.T) {
		key := "k-" + randomHex(8)
		if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*replica{a, b} {
			servedFromL1(t, r, "auth_apikey", func() {
				expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", key), 200, "success")
			})
		}
		if ok, err := a.APIKeys.Disable(t.Context(), key); err != nil || !ok {
			t.Fatalf("disable: %v %v", ok, err)
		}
		expect(t, a.do("GET", "/verify/apikey", "", "x-api-key", key), 403, "permission denied: invalid x-api-key")
		expectSoon(t, func() response { return b.do("GET", "/verify/apikey", "", "x-api-key", key) }, 403, "permission denied: invalid x-api-key")
	})
	t.Run("api key created after refusals", func(t *testing.T) {
		key := "k-" + randomHex(8)
		for _, r := range []*replica{a, b, a, b} {
			expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", key), 403, "permission denied: invalid x-api-key")
		}
		if _, err := b.APIKeys.Create(t.Context(), key, nil); err != nil {
			t.Fatal(err)
		}
		expect(t, a.do("GET", "/verify/apikey", "", "x-api-key", key), 200, "success")
	})
	t.Run("role removed", func(t *testing.T) {
		ids := roleIDs(t, s)
		users := s.db().Collection("users")
		u := a.signUp()
		uid, _ := bson.ObjectIDFromHex(u.userID)
		setRoles := func(codes ...string) {
			t.Helper()
			roles := bson.A{}
			for _, c := range codes {
				roles = append(roles, ids[c])
			}
			if _, err := users.UpdateOne(t.Context(), bson.M{"_id": uid}, bson.M{"$set": bson.M{"roles": roles}}); err != nil {
				t.Fatal(err)
			}
			b.Users.Forget(t.Context(), u.userID) // the change's publishing path
		}
		setRoles("LEARNER", "AUTHOR")
		for _, r := range []*replica{a, b} {
			servedFromL1(t, r, "auth_user", func() {
				if err := authorizeOn(t, r, u, "AUTHOR"); err != nil {
					t.Fatalf("AUTHOR before the change: %v", err)
				}
			})
		}
		setRoles("LEARNER")
		for _, r := range []*replica{b, a} {
			// On a, the other replica, the event may still be on its way.
			if !soon(func() bool { return statusOf(authorizeOn(t, r, u, "AUTHOR")) == 403 }) {
				t.Fatal("AUTHOR still granted after its removal")
			}
			if _, err := r.Auth.Authorize(t.Context(), u.userID, []string{"AUTHOR"}); statusOf(err) != 403 {
				t.Fatalf("authorization after the removal: %v", err)
			}
			roles, _ := mine(r, u).data()["roles"].([]any)
			if len(roles) != 1 {
				t.Fatalf("profile roles after the removal: %v", roles)
			}
		}
	})
}

// TestLocalCachesSuspendedWhileNATSIsDown: a replica that cannot receive
// change events serves nothing from its first-level caches, so a sign-out
// it never heard of is still enforced (through the Redis tombstone), and
// it starts again with empty caches once NATS is back.
func TestLocalCachesSuspendedWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	long := map[string]string{"LOCAL_CACHE_TTL": "1m"}
	a, b := s.replica(long), s.replica(long)
	u, other := a.signUp(), a.signUp()
	for _, x := range []session{u, other} {
		servedFromL1(t, b, "auth_session", func() {
			expect(t, b.do("GET", "/profile/mine", "", "Authorization", x.bearer()), 200, "success")
		})
	}

	s.nats.Shutdown()
	waitFor(t, "replica b's caches suspended", func() bool {
		return b.SessionCache.Suspended() && b.UserCache.Suspended() && b.APIKeyCache.Suspended()
	})
	if n := b.SessionCache.Len(); n != 0 {
		t.Fatalf("a suspended cache still holds %d sessions", n)
	}
	// The sign-out's event cannot be delivered; the answer still comes
	// (the failure is logged) and the other replica refuses the token.
	expect(t, a.do("DELETE", "/signout", "", "Authorization", u.bearer()), 200, "signout success")
	before := l1Hits(b, "auth_session")
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 401, "permission denied: invalid access token")
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", other.bearer()), 200, "success")
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", other.bearer()), 200, "success")
	if l1Hits(b, "auth_session") != before {
		t.Fatal("a suspended cache served")
	}

	if err := s.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica b's caches serving again", func() bool {
		return !b.SessionCache.Suspended() && !b.UserCache.Suspended() && !b.APIKeyCache.Suspended()
	})
	servedFromL1(t, b, "auth_session", func() {
		expect(t, b.do("GET", "/profile/mine", "", "Authorization", other.bearer()), 200, "success")
	})
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 401, "permission denied: invalid access token")
}

// waitFor polls cond for up to 10 s (NATS notices a lost server and
// reconnects in the background).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
