package tests

import (
	"bufio"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

const (
	seedAdminEmail    = "admin@unusualcode.org"
	seedAdminPassword = "changeit"
	insufficientRole  = "permission denied: does not have sufficient role"
	unknownObjectID   = "000000000000000000000001"
)

var key64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// adminRoutes are every operation of the admin API, with valid parameters
// (ids that exist or not: the role check comes first).
func adminRoutes(userID string) []struct{ method, path, body string } {
	return []struct{ method, path, body string }{
		{"GET", "/admin/apikeys", ""},
		{"POST", "/admin/apikeys", `{"comments":["x"]}`},
		{"DELETE", "/admin/apikeys/" + unknownObjectID, ""},
		{"GET", "/admin/users?email=" + seedAdminEmail, ""},
		{"GET", "/admin/users/" + userID, ""},
		{"POST", "/admin/users/" + userID + "/roles/AUTHOR", ""},
		{"DELETE", "/admin/users/" + userID + "/roles/AUTHOR", ""},
		{"POST", "/admin/users/" + userID + "/disable", ""},
		{"POST", "/admin/users/" + userID + "/enable", ""},
		{"GET", "/admin/users/" + userID + "/sessions", ""},
		{"DELETE", "/admin/users/" + userID + "/sessions", ""},
		{"DELETE", "/admin/users/" + userID + "/sessions/" + unknownObjectID, ""},
	}
}

// TestAdminAPIRequiresTheAdminRole: every operation answers 401 without a
// valid access token and 403 to a signed-in user without ADMIN, and
// changes nothing then.
func TestAdminAPIRequiresTheAdminRole(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	learner := r.signUp()
	admin := r.signIn(seedAdminEmail, seedAdminPassword)
	keyCount := func() int {
		res := r.do("GET", "/admin/apikeys?limit=1000", "", "Authorization", admin.bearer())
		var keys []map[string]any
		if err := json.Unmarshal(res.env.Data, &keys); err != nil || res.status != 200 {
			t.Fatalf("listing keys: %d %v", res.status, err)
		}
		return len(keys)
	}
	keysBefore := keyCount()
	for _, rt := range adminRoutes(learner.userID) {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			expect(t, r.do(rt.method, rt.path, rt.body), 401, "permission denied: missing Authorization")
			expect(t, r.do(rt.method, rt.path, rt.body, "Authorization", "Bearer not-a-token"), 401,
				"token is malformed: token contains an invalid number of segments")
			res := r.do(rt.method, rt.path, rt.body, "Authorization", learner.bearer())
			expect(t, res, 403, insufficientRole)
			if res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", res.header.Get("Cache-Control"))
			}
		})
	}
	// The learner was neither disabled nor given a role, and no key was
	// created or revoked.
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", learner.bearer()), 200, "success")
	res := r.do("GET", "/admin/users/"+learner.userID, "", "Authorization", admin.bearer())
	if roles := codes(t, res); roles != "LEARNER" || res.data()["status"] != true {
		t.Errorf("after the refused calls the learner has roles %q, status %v", roles, res.data()["status"])
	}
	if n := keyCount(); n != keysBefore {
		t.Errorf("%d API keys after the refused calls, %d before", n, keysBefore)
	}
}

// TestAdminAPIRejectsBadInput: malformed ids, unknown roles, users, keys
// and sessions are clear 4xx answers.
func TestAdminAPIRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	admin := r.signIn(seedAdminEmail, seedAdminPassword)
	u := r.signUp()
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"short user id", "GET", "/admin/users/abc", "", 400, "id must be of length 24"},
		{"user id not hex", "POST", "/admin/users/zzzzzzzzzzzzzzzzzzzzzzzz/disable", "", 400, "id must be a valid id"},
		{"unknown user", "GET", "/admin/users/" + unknownObjectID, "", 404, "user does not exist"},
		{"unknown user disabled", "POST", "/admin/users/" + unknownObjectID + "/disable", "", 404, "user does not exist"},
		{"unknown user enabled", "POST", "/admin/users/" + unknownObjectID + "/enable", "", 404, "user does not exist"},
		{"unknown user's sessions", "GET", "/admin/users/" + unknownObjectID + "/sessions", "", 404, "user does not exist"},
		{"unknown user's sessions ended", "DELETE", "/admin/users/" + unknownObjectID + "/sessions", "", 404, "user does not exist"},
		{"unknown role", "POST", "/admin/users/" + u.userID + "/roles/SUPERUSER", "", 400, "role must be one of LEARNER, AUTHOR, EDITOR, ADMIN"},
		{"unknown role revoked", "DELETE", "/admin/users/" + u.userID + "/roles/root", "", 400, "role must be one of LEARNER, AUTHOR, EDITOR, ADMIN"},
		{"role for unknown user", "POST", "/admin/users/" + unknownObjectID + "/roles/AUTHOR", "", 404, "user does not exist"},
		{"unknown session", "DELETE", "/admin/users/" + u.userID + "/sessions/" + unknownObjectID, "", 404, "session does not exist"},
		{"bad session id", "DELETE", "/admin/users/" + u.userID + "/sessions/123", "", 400, "sessionId must be of length 24"},
		{"unknown key", "DELETE", "/admin/apikeys/" + unknownObjectID, "", 404, "api key does not exist"},
		{"bad key id", "DELETE", "/admin/apikeys/xyz", "", 400, "id must be of length 24"},
		{"limit zero", "GET", "/admin/apikeys?limit=0", "", 400, "limit must be between 1 and 1000"},
		{"limit too large", "GET", "/admin/apikeys?limit=1001", "", 400, "limit must be between 1 and 1000"},
		{"limit not a number", "GET", "/admin/apikeys?limit=ten", "", 400, "limit must be an integer"},
		{"bad cursor", "GET", "/admin/apikeys?after=12", "", 400, "after must be of length 24"},
		{"too many comments", "POST", "/admin/apikeys", `{"comments":["1","2","3","4","5","6","7","8","9","10","11"]}`, 400,
			"comments must hold at most 10 entries of 1 to 200 characters"},
		{"empty comment", "POST", "/admin/apikeys", `{"comments":[""]}`, 400, "comments must hold at most 10 entries of 1 to 200 characters"},
		{"unknown field", "POST", "/admin/apikeys", `{"key":"mine"}`, 400, `unknown field "key"`},
		{"email missing", "GET", "/admin/users", "", 400, "email is required"},
		{"email invalid", "GET", "/admin/users?email=nobody", "", 400, "email is not a valid email"},
		{"email unknown", "GET", "/admin/users?email=nobody@example.com", "", 404, "user does not exist"},
		{"own admin role", "DELETE", "/admin/users/" + admin.userID + "/roles/admin", "", 400, "an administrator cannot remove their own ADMIN role"},
		{"own account", "POST", "/admin/users/" + admin.userID + "/disable", "", 400, "an administrator cannot disable their own account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, r.do(tt.method, tt.path, tt.body, "Authorization", admin.bearer()), tt.status, tt.message)
		})
	}
	// The refused self-changes changed nothing.
	res := r.do("GET", "/admin/users/"+admin.userID, "", "Authorization", admin.bearer())
	expect(t, res, 200, "success")
	if roles := codes(t, res); !strings.Contains(roles, "ADMIN") || res.data()["status"] != true {
		t.Fatalf("admin after refused self-changes: %s", res.raw)
	}
}

// codes are the role codes of a user answer, joined by commas.
func codes(t *testing.T, res response) string { return strings.Join(roleCodes(t, res), ",") }

// TestAdminAPIKeys: a created key is shown once, works at once on every
// replica, is listed without its value, and once revoked is refused by
// every replica. Every call is audited without the key.
func TestAdminAPIKeys(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	settings := map[string]string{"LOCAL_CACHE_TTL": "1m", "LOG_LEVEL": "info"}
	a, logs := s.loggedReplica(settings)
	b := s.replica(settings)
	admin := a.signIn(seedAdminEmail, seedAdminPassword)
	verify := func(r *replica, key string) response { return r.do("GET", "/verify/apikey", "", "x-api-key", key) }

	res := a.do("POST", "/admin/apikeys", `{"comments":["mobile app"]}`, "Authorization", admin.bearer())
	expect(t, res, 200, "success")
	created := res.data()
	key, _ := created["key"].(string)
	id, _ := created["_id"].(string)
	if !key64.MatchString(key) || created["status"] != true || created["suffix"] != key[60:] {
		t.Fatalf("created key: %s", res.raw)
	}
	for _, r := range []*replica{a, b} {
		expect(t, verify(r, key), 200, "success")
	}
	// A key without comments needs no body.
	expect(t, a.do("POST", "/admin/apikeys", "", "Authorization", admin.bearer()), 200, "success")

	// Listed (paging by id) with its suffix, never its value.
	var found map[string]any
	after := ""
	for page := 0; page < 10 && found == nil; page++ {
		res := b.do("GET", "/admin/apikeys?limit=1"+after, "", "Authorization", admin.bearer())
		expect(t, res, 200, "success")
		if strings.Contains(res.raw, key) || strings.Contains(res.raw, s.apiKey) {
			t.Fatalf("a key's value is listed: %s", res.raw)
		}
		var items []map[string]any
		if err := json.Unmarshal(res.env.Data, &items); err != nil || len(items) > 1 {
			t.Fatalf("page %d: %v %s", page, err, res.raw)
		}
		if len(items) == 0 {
			break
		}
		if items[0]["_id"] == id {
			found = items[0]
		}
		after = "&after=" + items[0]["_id"].(string)
	}
	if found == nil || found["suffix"] != key[60:] || found["status"] != true {
		t.Fatalf("created key not listed: %v", found)
	}

	// Revoked through b: refused by b at once and by a (which cached it).
	res = b.do("DELETE", "/admin/apikeys/"+id, "", "Authorization", admin.bearer())
	expect(t, res, 200, "success")
	if res.data()["status"] != false || strings.Contains(res.raw, key) {
		t.Fatalf("revoked key: %s", res.raw)
	}
	expect(t, verify(b, key), 403, "permission denied: invalid x-api-key")
	expectSoon(t, func() response { return verify(a, key) }, 403, "permission denied: invalid x-api-key")
	expect(t, b.do("DELETE", "/admin/apikeys/"+id, "", "Authorization", admin.bearer()), 200, "success") // idempotent
	expect(t, verify(a, s.apiKey), 200, "success")                                                       // others untouched

	// The audit: one line per call on a, with the admin, action, target and
	// outcome, and no key value anywhere in the log.
	if strings.Contains(logs.String(), key) {
		t.Fatal("the log holds a created key's value")
	}
	lines := auditLines(t, logs.String())
	want := map[string]bool{"apikeys.create ok apikey=" + id: false}
	for _, l := range lines {
		k := l["action"].(string) + " " + l["outcome"].(string) + " " + l["target"].(string)
		if _, ok := want[k]; ok && l["admin"] == admin.userID && l["status"] == float64(200) && l["requestId"] != "" {
			want[k] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no audit line %q among %v", k, lines)
		}
	}
}

// auditLines are the log's admin audit lines.
func auditLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "admin action" && m["audit"] == true {
			out = append(out, m)
		}
	}
	return out
}

// TestAdminUsersAndSessions: roles granted and revoked count at once on
// every replica; a disabled user's tokens are refused at once on every
// replica (HTTP and NATS) and they cannot sign in or refresh until
// enabled; sessions are listed and ended one by one or all at once.
func TestAdminUsersAndSessions(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	settings := map[string]string{"LOCAL_CACHE_TTL": "1m", "LOG_LEVEL": "info"}
	a, logs := s.loggedReplica(settings)
	b := s.replica(settings)
	admin := a.signIn(seedAdminEmail, seedAdminPassword)
	as := func(r *replica, method, path string) response {
		return r.do(method, path, "", "Authorization", admin.bearer())
	}
	mine := func(r *replica, sess session) response {
		return r.do("GET", "/profile/mine", "", "Authorization", sess.bearer())
	}
	authorized := func(sess session, role string) string {
		_, errText := s.natsReply("auth.authenticate.authorize", `{"data":{"value":"`+sess.bearer()+`","roles":["`+role+`"]}}`)
		return errText
	}

	t.Run("find by email", func(t *testing.T) {
		u := a.signUp()
		res := as(b, "GET", "/admin/users?email="+strings.ToUpper(u.email))
		expect(t, res, 200, "success")
		if res.data()["_id"] != u.userID || codes(t, res) != "LEARNER" || res.data()["status"] != true {
			t.Fatalf("found %s", res.raw)
		}
	})

	t.Run("roles", func(t *testing.T) {
		u := a.signUp()
		expect(t, mine(b, u), 200, "success") // cached on b
		if e := authorized(u, "AUTHOR"); e != "403:"+insufficientRole {
			t.Fatalf("before the grant: %q", e)
		}
		res := as(a, "POST", "/admin/users/"+u.userID+"/roles/author")
		expect(t, res, 200, "success")
		if codes(t, res) != "LEARNER,AUTHOR" {
			t.Fatalf("granted: %s", res.raw)
		}
		expect(t, as(a, "POST", "/admin/users/"+u.userID+"/roles/AUTHOR"), 200, "success") // idempotent
		if !soon(func() bool { return strings.Contains(codes(t, mine(b, u)), "AUTHOR") }) {
			t.Fatal("replica b does not show the granted role")
		}
		if e := authorized(u, "AUTHOR"); e != "" {
			t.Fatalf("after the grant: %q", e)
		}
		// ADMIN opens the admin API to the user, on every replica.
		expect(t, as(b, "POST", "/admin/users/"+u.userID+"/roles/ADMIN"), 200, "success")
		expectSoon(t, func() response { return a.do("GET", "/admin/apikeys", "", "Authorization", u.bearer()) }, 200, "success")
		expect(t, as(b, "DELETE", "/admin/users/"+u.userID+"/roles/ADMIN"), 200, "success")
		expectSoon(t, func() response { return a.do("GET", "/admin/apikeys", "", "Authorization", u.bearer()) }, 403, insufficientRole)
		res = as(b, "DELETE", "/admin/users/"+u.userID+"/roles/AUTHOR")
		expect(t, res, 200, "success")
		if codes(t, res) != "LEARNER" {
			t.Fatalf("revoked: %s", res.raw)
		}
		if e := authorized(u, "AUTHOR"); e != "403:"+insufficientRole {
			t.Fatalf("after the revocation: %q", e)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		u := a.signUp()
		second := b.signIn(u.email, u.password)
		for _, r := range []*replica{a, b} { // warm every replica's caches
			expect(t, mine(r, u), 200, "success")
			expect(t, mine(r, second), 200, "success")
		}
		res := as(a, "POST", "/admin/users/"+u.userID+"/disable")
		expect(t, res, 200, "success")
		if res.data()["sessionsEnded"] != float64(2) {
			t.Fatalf("disabled: %s", res.raw)
		}
		user, _ := res.data()["user"].(map[string]any)
		if user["status"] != false {
			t.Fatalf("disabled user: %s", res.raw)
		}
		for _, sess := range []session{u, second} {
			expect(t, mine(a, sess), 401, "permission denied: claims subject does not exist")
			expectSoon(t, func() response { return mine(b, sess) }, 401, "permission denied: claims subject does not exist")
			if _, e := s.natsReply("auth.authentication", `{"data":{"value":"`+sess.bearer()+`"}}`); e != "401:permission denied: claims subject does not exist" {
				t.Fatalf("nats after disable: %q", e)
			}
		}
		expect(t, b.do("POST", "/signin/basic", `{"email":"`+u.email+`","password":"`+u.password+`"}`), 404, "user not registered")
		expect(t, b.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(u.refresh)+`}`, "Authorization", u.bearer()),
			401, "permission denied: invalid refresh claims subject")
		list := as(b, "GET", "/admin/users/"+u.userID+"/sessions")
		expect(t, list, 200, "success")
		if string(list.env.Data) != "[]" {
			t.Fatalf("sessions left after disable: %s", list.raw)
		}

		res = as(b, "POST", "/admin/users/"+u.userID+"/enable")
		expect(t, res, 200, "success")
		if res.data()["status"] != true {
			t.Fatalf("enabled: %s", res.raw)
		}
		expect(t, mine(a, u), 401, "permission denied: invalid access token") // ended sessions stay ended
		again := a.signIn(u.email, u.password)
		expect(t, mine(b, again), 200, "success")
	})

	t.Run("sessions", func(t *testing.T) {
		u := a.signUp()
		others := []session{b.signIn(u.email, u.password), a.signIn(u.email, u.password)}
		res := as(b, "GET", "/admin/users/"+u.userID+"/sessions")
		expect(t, res, 200, "success")
		var list []map[string]any
		if err := json.Unmarshal(res.env.Data, &list); err != nil || len(list) != 3 {
			t.Fatalf("sessions: %v %s", err, res.raw)
		}
		if strings.Contains(res.raw, "pKey") || strings.Contains(res.raw, "sKey") {
			t.Fatalf("token ids listed: %s", res.raw)
		}
		for _, r := range []*replica{a, b} {
			expect(t, mine(r, u), 200, "success")
		}
		// The newest first: the last sign-in's session.
		newest := list[0]["_id"].(string)
		expect(t, as(a, "DELETE", "/admin/users/"+u.userID+"/sessions/"+newest), 200, "session ended")
		expect(t, mine(a, others[1]), 401, "permission denied: invalid access token")
		expectSoon(t, func() response { return mine(b, others[1]) }, 401, "permission denied: invalid access token")
		expect(t, mine(b, u), 200, "success")
		expect(t, as(a, "DELETE", "/admin/users/"+u.userID+"/sessions/"+newest), 404, "session does not exist")
		// Another user's session id is not this user's.
		other := a.signUp()
		otherList := as(a, "GET", "/admin/users/"+other.userID+"/sessions")
		var ol []map[string]any
		_ = json.Unmarshal(otherList.env.Data, &ol)
		if len(ol) != 1 {
			t.Fatalf("other user's sessions: %s", otherList.raw)
		}
		expect(t, as(a, "DELETE", "/admin/users/"+u.userID+"/sessions/"+ol[0]["_id"].(string)), 404, "session does not exist")
		expect(t, mine(b, other), 200, "success")

		res = as(b, "DELETE", "/admin/users/"+u.userID+"/sessions")
		expect(t, res, 200, "success")
		if res.data()["ended"] != float64(2) {
			t.Fatalf("ended: %s", res.raw)
		}
		for _, sess := range []session{u, others[0]} {
			expect(t, mine(b, sess), 401, "permission denied: invalid access token")
			expectSoon(t, func() response { return mine(a, sess) }, 401, "permission denied: invalid access token")
		}
		expect(t, mine(a, other), 200, "success")
	})

	t.Run("refused calls are audited", func(t *testing.T) {
		u := a.signUp()
		expect(t, a.do("POST", "/admin/users/"+u.userID+"/disable", "", "Authorization", u.bearer()), 403, insufficientRole)
		expect(t, a.do("GET", "/admin/users/"+u.userID+"/sessions", ""), 401, "permission denied: missing Authorization")
		var forbidden, unauthenticated bool
		for _, l := range auditLines(t, logs.String()) {
			switch {
			case l["action"] == "users.disable" && l["outcome"] == "forbidden" && l["admin"] == u.userID && l["target"] == "id="+u.userID:
				forbidden = true
			case l["action"] == "sessions.list" && l["outcome"] == "unauthenticated" && l["admin"] == "" && l["status"] == float64(401):
				unauthenticated = true
			}
		}
		if !forbidden || !unauthenticated {
			t.Fatalf("audit lines: forbidden %v, unauthenticated %v\n%s", forbidden, unauthenticated, logs.String())
		}
		if strings.Contains(logs.String(), u.access) || strings.Contains(logs.String(), admin.access) {
			t.Fatal("the log holds an access token")
		}
	})
}
