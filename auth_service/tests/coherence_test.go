package tests

import (
	"testing"

	"blogplatform/devkit/testinfra"
)

// TestCacheCoherenceAcrossReplicas: two replicas share the database and
// Redis. Whatever one changes, the other sees at once, although both answer
// hot paths from caches: Redis alone (first-level caches off), or their own
// first-level caches in front of it.
func TestCacheCoherenceAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, ttl := range []string{"0", "1m"} {
		t.Run("LOCAL_CACHE_TTL="+ttl, func(t *testing.T) {
			t.Parallel()
			coherenceAcrossReplicas(t, map[string]string{"LOCAL_CACHE_TTL": ttl})
		})
	}
}

func coherenceAcrossReplicas(t *testing.T, settings map[string]string) {
	s := newStack(t)
	a, b := s.replica(settings), s.replica(settings)
	mine := func(r *replica, sess session) response {
		return r.do("GET", "/profile/mine", "", "Authorization", sess.bearer())
	}

	t.Run("sign-out on one replica", func(t *testing.T) {
		u := a.signUp()
		expect(t, mine(a, u), 200, "success") // warm both replicas' caches
		expect(t, mine(b, u), 200, "success")
		expect(t, a.do("DELETE", "/signout", "", "Authorization", u.bearer()), 200, "signout success")
		expectSoon(t, func() response { return mine(b, u) }, 401, "permission denied: invalid access token")
		expect(t, mine(a, u), 401, "permission denied: invalid access token")
		if _, errText := s.natsReply("auth.authentication", `{"data":{"value":"`+u.bearer()+`"}}`); errText != "401:permission denied: invalid access token" {
			t.Fatalf("nats after sign-out: %q", errText)
		}
	})
	t.Run("refresh on one replica", func(t *testing.T) {
		u := a.signUp()
		expect(t, mine(b, u), 200, "success")
		res := a.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer())
		expect(t, res, 200, "success")
		expectSoon(t, func() response { return mine(b, u) }, 401, "permission denied: invalid access token")
		fresh := session{access: res.data()["accessToken"].(string)}
		expect(t, mine(b, fresh), 200, "success")
	})
	t.Run("api key disabled on one replica", func(t *testing.T) {
		key := "k-" + randomHex(8)
		if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*replica{a, b, a, b} {
			expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", key), 200, "success")
		}
		if ok, err := a.APIKeys.Disable(t.Context(), key); err != nil || !ok {
			t.Fatalf("disable: %v %v", ok, err)
		}
		expect(t, a.do("GET", "/verify/apikey", "", "x-api-key", key), 403, "permission denied: invalid x-api-key")
		expectSoon(t, func() response { return b.do("GET", "/verify/apikey", "", "x-api-key", key) }, 403, "permission denied: invalid x-api-key")
	})
	t.Run("api key created after a refusal was cached", func(t *testing.T) {
		key := "k-" + randomHex(8)
		expect(t, b.do("GET", "/verify/apikey", "", "x-api-key", key), 403, "permission denied: invalid x-api-key")
		if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
			t.Fatal(err)
		}
		expect(t, b.do("GET", "/verify/apikey", "", "x-api-key", key), 200, "success")
	})
}

// TestRedisDownFallsBackToTheStore: with Redis stopped every endpoint still
// answers correctly (just from Mongo), except revocations, which are refused
// with 503 and leave the session valid; when Redis returns they work and
// nothing stale is served.
func TestRedisDownFallsBackToTheStore(t *testing.T) {
	t.Parallel()
	infra := testinfra.NewEnv(t)
	s := newStackOn(t, infra)
	a, b := s.replica(map[string]string{"REDIS_TIMEOUT": "100ms"}), s.replica(map[string]string{"REDIS_TIMEOUT": "100ms"})
	before := a.signUp()
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", before.bearer()), 200, "success")

	if err := infra.Redis.Stop(); err != nil {
		t.Fatal(err)
	}
	u := a.signUp()
	u = b.signIn(u.email, u.password)
	for _, r := range []*replica{a, b} {
		expect(t, r.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 200, "success")
		expect(t, r.do("GET", "/profile/id/"+u.userID, ""), 200, "success")
		expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", s.apiKey), 200, "success")
		expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", "wrong"), 403, "permission denied: invalid x-api-key")
	}
	if data, errText := s.natsReply("auth.authentication", `{"data":{"value":"`+u.bearer()+`"}}`); errText != "" || data["_id"] != u.userID {
		t.Fatalf("nats authentication without redis: %v %q", data, errText)
	}
	if _, errText := s.natsReply("auth.authorization", `{"data":{"user":{"_id":"`+u.userID+`"},"roles":["AUTHOR"]}}`); errText != "403:permission denied: does not have sufficient role" {
		t.Fatalf("nats authorization without redis: %q", errText)
	}
	// Revocations cannot be published to every replica without Redis (a
	// replica could hold the session cached as active when Redis returns):
	// they are refused, and the sessions stay valid, as the answers say.
	res := a.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer())
	expect(t, res, 503, revocationUnavailable)
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 200, "success")
	expect(t, a.do("DELETE", "/signout", "", "Authorization", before.bearer()), 503, revocationUnavailable)
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", before.bearer()), 200, "success")

	if err := infra.Redis.Start(); err != nil {
		t.Fatal(err)
	}
	expect(t, a.do("DELETE", "/signout", "", "Authorization", before.bearer()), 200, "signout success")
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", before.bearer()), 401, "permission denied: invalid access token")
	fresh := pairOf(t, a.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer()))
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 401, "permission denied: invalid access token")
	expect(t, b.do("GET", "/profile/mine", "", "Authorization", fresh.bearer()), 200, "success")
}
