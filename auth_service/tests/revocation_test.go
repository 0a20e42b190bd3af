package tests

import (
	"net"
	"strconv"
	"testing"
)

const revocationUnavailable = "session revocation unavailable, try again later"

// deadRedisPort is a local port nothing listens on.
func deadRedisPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return strconv.Itoa(port)
}

func refreshOn(r *replica, u session) response {
	return r.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer())
}

func pairOf(t *testing.T, res response) session {
	t.Helper()
	expect(t, res, 200, "success")
	return session{access: res.data()["accessToken"].(string), refresh: res.data()["refreshToken"].(string)}
}

// TestRevocationFailsWhenOtherReplicasCannotLearnOfIt: one replica cannot
// reach Redis, the other can and has the session cached as active. Sign-out
// and refresh through the first one answer 503 instead of a success the
// second replica would not honour; the session then stays valid everywhere,
// exactly as the failure told the client, and works normally afterwards.
func TestRevocationFailsWhenOtherReplicasCannotLearnOfIt(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	healthy := s.replica(nil)
	deaf := s.replica(map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": deadRedisPort(t), "REDIS_TIMEOUT": "100ms"})
	mine := func(r *replica, u session) response {
		return r.do("GET", "/profile/mine", "", "Authorization", u.bearer())
	}
	tests := []struct {
		name   string
		revoke func(r *replica, u session) response
		// after runs the revocation again through the healthy replica.
		after func(t *testing.T, u session)
	}{
		{"sign-out", func(r *replica, u session) response {
			return r.do("DELETE", "/signout", "", "Authorization", u.bearer())
		}, func(t *testing.T, u session) {
			expect(t, healthy.do("DELETE", "/signout", "", "Authorization", u.bearer()), 200, "signout success")
		}},
		{"refresh", refreshOn, func(t *testing.T, u session) {
			fresh := pairOf(t, refreshOn(healthy, u))
			expect(t, mine(deaf, fresh), 200, "success")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := healthy.signUp()
			expect(t, mine(healthy, u), 200, "success") // cached as active in Redis
			expect(t, tt.revoke(deaf, u), 503, revocationUnavailable)
			for _, r := range []*replica{healthy, deaf} {
				expect(t, mine(r, u), 200, "success")
			}
			tt.after(t, u)
			for _, r := range []*replica{healthy, deaf} {
				expect(t, mine(r, u), 401, "permission denied: invalid access token")
			}
		})
	}
}

// TestReusedRefreshTokenRevokesTheWholeSession: presenting a refresh token
// that a refresh already consumed ends the session it belongs to: the pair
// that replaced it (and any later one) stops working, on every replica;
// other sessions of the same user are untouched.
func TestReusedRefreshTokenRevokesTheWholeSession(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// No grace period: every second use of a refresh token is reuse here
	// (the grace period has its own test).
	noGrace := map[string]string{"REFRESH_REUSE_GRACE": "0"}
	a, b := s.replica(noGrace), s.replica(noGrace)
	tests := []struct {
		name      string
		rotations int // refreshes before the reuse
		reuse     int // which pair is presented again (0 = the sign-up's)
	}{
		{"the first pair after one refresh", 1, 0},
		{"the first pair after three refreshes", 3, 0},
		{"a middle pair", 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := a.signUp()
			other := b.signIn(u.email, u.password) // a second, independent session
			pairs := []session{u}
			for i := range tt.rotations {
				pairs = append(pairs, pairOf(t, refreshOn([]*replica{a, b}[i%2], pairs[i])))
			}
			latest := pairs[len(pairs)-1]
			expect(t, a.do("GET", "/profile/mine", "", "Authorization", latest.bearer()), 200, "success")

			expect(t, refreshOn(b, pairs[tt.reuse]), 401, "permission denied: claims ids")

			for _, r := range []*replica{a, b} {
				expectSoon(t, func() response { return r.do("GET", "/profile/mine", "", "Authorization", latest.bearer()) }, 401, "permission denied: invalid access token")
			}
			expect(t, refreshOn(a, latest), 401, "permission denied: claims ids")
			expect(t, b.do("GET", "/profile/mine", "", "Authorization", other.bearer()), 200, "success")
			pairOf(t, refreshOn(a, other))
		})
	}
}
