package tests

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTPValidation covers every input error of the sign-up, sign-in and
// refresh bodies and the path id, with the messages of the README's
// "Differences from the reference" (typos fixed, a non-hex id is a 400).
func TestHTTPValidation(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	u := r.signUp()
	long := strings.Repeat("a", 73)
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"signup all missing", "POST", "/signup/basic", `{}`, 400, "email is required, password is required, name is required"},
		{"signup stage two", "POST", "/signup/basic", `{"email":"bad","password":"123","name":"x"}`, 400,
			"email is not a valid email, password must be at least 6 characters, name must be at least 2 characters"},
		{"signup maxima", "POST", "/signup/basic", `{"email":"a@b.co","password":"` + strings.Repeat("p", 101) + `","name":"` + strings.Repeat("n", 201) + `"}`, 400,
			"password must be at most 100 characters, name must be at most 200 characters"},
		{"signup picture not a url", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann","profilePicUrl":"notaurl"}`, 400, "profilePicUrl is not a valid URL"},
		{"signup picture empty", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann","profilePicUrl":""}`, 400, "profilePicUrl is not a valid URL"},
		{"signup picture too long", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann","profilePicUrl":"https://x.io/` + strings.Repeat("p", 500) + `"}`, 400, "profilePicUrl must be at most 500 characters"},
		{"signup wrong type", "POST", "/signup/basic", `{"email":1,"password":"secret1","name":"Ann"}`, 400, "email must be of type string"},
		{"signup operator injection", "POST", "/signup/basic", `{"email":{"$gt":""},"password":"secret1","name":"Ann"}`, 400, "email must be of type string"},
		{"signup unknown field", "POST", "/signup/basic", `{"email":"a@b.co","password":"secret1","name":"Ann","roles":["ADMIN"]}`, 400, `unknown field "roles"`},
		{"signup empty body", "POST", "/signup/basic", ``, 400, "EOF"},
		{"signup array body", "POST", "/signup/basic", `[]`, 400, "request body must be a JSON object, not array"},
		{"signup password beyond bcrypt", "POST", "/signup/basic", `{"email":"a@b.co","password":"` + long + `","name":"Ann"}`, 400, "password must be at most 72 bytes"},
		{"signup taken email", "POST", "/signup/basic", `{"email":"` + u.email + `","password":"secret1","name":"Ann"}`, 400, "user already registered"},
		{"signin all missing", "POST", "/signin/basic", `{}`, 400, "email is required, password is required"},
		{"signin stage two", "POST", "/signin/basic", `{"email":"bad","password":"123"}`, 400, "email is not a valid email, password must be at least 6 characters"},
		{"signin operator injection", "POST", "/signin/basic", `{"email":{"$ne":null},"password":"secret1"}`, 400, "email must be of type string"},
		{"signin malformed", "POST", "/signin/basic", `{"email":`, 400, "malformed JSON: unexpected end of input"},
		{"signin empty body", "POST", "/signin/basic", ``, 400, "EOF"},
		{"signin unknown email", "POST", "/signin/basic", `{"email":"nobody-` + randomHex(4) + `@example.com","password":"secret1"}`, 404, "user not registered"},
		{"signin wrong password", "POST", "/signin/basic", `{"email":"` + u.email + `","password":"wrong-1"}`, 401, "wrong password"},
		{"refresh missing", "POST", "/token/refresh", `{}`, 400, "refreshToken is required"},
		{"refresh wrong type", "POST", "/token/refresh", `{"refreshToken":5}`, 400, "refreshToken must be of type string"},
		{"profile id short", "GET", "/profile/id/abc", ``, 400, "id must be of length 24"},
		{"profile id not hex", "GET", "/profile/id/zzzzzzzzzzzzzzzzzzzzzzzz", ``, 400, "id must be a valid id"},
		{"profile id unknown", "GET", "/profile/id/000000000000000000000001", ``, 404, "user does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, r.do(tt.method, tt.path, tt.body, "Authorization", u.bearer()), tt.status, tt.message)
		})
	}
	// Bodies are read as JSON whatever the Content-Type says, like the
	// reference; a form body is therefore malformed JSON.
	signIn := `{"email":"` + u.email + `","password":"secret1"}`
	expect(t, r.do("POST", "/signin/basic", signIn, "Content-Type", "text/plain"), 200, "success")
	res := r.do("POST", "/signin/basic", "email=a%40b.co&password=secret1", "Content-Type", "application/x-www-form-urlencoded")
	if res.status != 400 || !strings.HasPrefix(res.message(), "malformed JSON") {
		t.Fatalf("form body: %d %q", res.status, res.message())
	}
}

// TestHTTPRoutes covers the router's answers: 404, 405 with Allow, both
// slash forms, the request id, and the body limit.
func TestHTTPRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(map[string]string{"BODY_LIMIT_BYTES": "4096"})
	u := r.signUp()
	tests := []struct {
		name, method, path, body string
		status                   int
		message, allow           string
	}{
		{"unknown path", "GET", "/does/not/exist", "", 404, "url not found", ""},
		{"wrong method signup", "GET", "/signup/basic", "", 405, "method not allowed", "POST"},
		{"wrong method signout", "POST", "/signout", "", 405, "method not allowed", "DELETE"},
		{"wrong method apikey", "POST", "/verify/apikey", "", 405, "method not allowed", "GET"},
		{"trailing slash signin", "POST", "/signin/basic/", `{"email":"` + u.email + `","password":"secret1"}`, 200, "success", ""},
		{"trailing slash profile", "GET", "/profile/mine/", "", 200, "success", ""},
		{"case sensitive", "GET", "/Profile/mine", "", 404, "url not found", ""},
		{"oversized body", "POST", "/signup/basic", `{"email":"` + strings.Repeat("a", 5000) + `@b.co"}`, 413, "request body too large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.do(tt.method, tt.path, tt.body, "Authorization", u.bearer(), "X-Request-ID", "req-"+tt.name[:3])
			expect(t, res, tt.status, tt.message)
			if tt.allow != "" && !strings.Contains(res.header.Get("Allow"), tt.allow) {
				t.Errorf("Allow = %q, want %s", res.header.Get("Allow"), tt.allow)
			}
			if got := res.header.Get("X-Request-ID"); got != "req-"+tt.name[:3] {
				t.Errorf("X-Request-ID = %q", got)
			}
		})
	}
	// Without a request id one is generated.
	if id := r.do("GET", "/nope", "").header.Get("X-Request-ID"); len(id) != 32 {
		t.Errorf("generated X-Request-ID %q", id)
	}
	// Health (chassis) and the OpenAPI document sit next to the API.
	for _, path := range []string{"/health/live", "/health/ready", "/openapi.yaml"} {
		req := httptest.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		r.Engine.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Errorf("%s: %d %s", path, w.Code, w.Body.String())
		}
		conformsToDocument(t, req, w.Code, w.Header(), w.Body.Bytes())
	}
	// Metrics are internal: not on the API's engine, only on the metrics
	// listener's handler.
	if res := r.do("GET", "/metrics", ""); res.status != 404 {
		t.Errorf("/metrics on the API engine: %d, want 404", res.status)
	}
	w := httptest.NewRecorder()
	r.Runtime.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "http_requests_total") {
		t.Errorf("metrics handler: %d %.80s", w.Code, w.Body.String())
	}
}

// TestAPIKeyVerification is GET /verify/apikey: a missing key is a 401, an
// unknown or disabled one a 403, the seeded one a 200, cached answers alike.
func TestAPIKeyVerification(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	disabled := "disabled-" + randomHex(8)
	if _, err := r.APIKeys.Create(t.Context(), disabled, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.APIKeys.Disable(t.Context(), disabled); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key string
		status    int
		message   string
	}{
		{"missing", "", 401, "permission denied: missing x-api-key header"},
		{"unknown", "wrong", 403, "permission denied: invalid x-api-key"},
		{"disabled", disabled, 403, "permission denied: invalid x-api-key"},
		{"seeded", s.apiKey, 200, "success"},
		{"seeded again (cached)", s.apiKey, 200, "success"},
		{"unknown again (cached)", "wrong", 403, "permission denied: invalid x-api-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.do("GET", "/verify/apikey", "", "x-api-key", tt.key)
			expect(t, res, tt.status, tt.message)
			if len(res.env.Data) > 0 {
				t.Errorf("unexpected data: %s", res.raw)
			}
		})
	}
	// Header names are case-insensitive.
	expect(t, r.do("GET", "/verify/apikey", "", "X-API-KEY", s.apiKey), 200, "success")
}

// TestSignUpSignInAndProfiles follows a user from sign-up through sign-in to
// the profile routes: response shapes and the token claims.
func TestSignUpSignInAndProfiles(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	email := uniqueEmail()
	res := r.do("POST", "/signup/basic", `{"email":"`+email+`","password":"secret1","name":"Learner One","profilePicUrl":"https://x.io/me.png"}`)
	expect(t, res, 200, "success")
	if strings.Contains(res.raw, "password") {
		t.Fatalf("password leaked: %s", res.raw)
	}
	user := res.data()["user"].(map[string]any)
	assertKeys(t, user, "_id", "email", "name", "profilePicUrl", "roles")
	if user["email"] != email || user["name"] != "Learner One" || user["profilePicUrl"] != "https://x.io/me.png" {
		t.Fatalf("user %v", user)
	}
	roles := user["roles"].([]any)
	if len(roles) != 1 || roles[0].(map[string]any)["code"] != "LEARNER" || !isOID(roles[0].(map[string]any)["_id"]) {
		t.Fatalf("roles %v", roles)
	}
	assertKeys(t, res.data()["tokens"].(map[string]any), "accessToken", "refreshToken")
	up := sessionOf(t, res, email, "secret1")
	checkClaims(t, up, r.Config.TokenIssuer, r.Config.TokenAudience)

	in := r.signIn(email, "secret1")
	if in.userID != up.userID || in.access == up.access {
		t.Fatal("sign-in must open a new session for the same user")
	}
	// Both sessions are valid at once.
	for _, sess := range []session{up, in} {
		res := r.do("GET", "/profile/mine", "", "Authorization", sess.bearer())
		expect(t, res, 200, "success")
		assertKeys(t, res.data(), "_id", "email", "name", "profilePicUrl", "roles")
		if res.data()["_id"] != up.userID || res.data()["email"] != email {
			t.Fatalf("profile %s", res.raw)
		}
	}
	res = r.do("GET", "/profile/id/"+up.userID, "")
	expect(t, res, 200, "success")
	assertKeys(t, res.data(), "_id", "name", "profilePicUrl")
	// Upper-case hex is the same id.
	expect(t, r.do("GET", "/profile/id/"+strings.ToUpper(up.userID), ""), 200, "success")

	admin := r.signIn("admin@unusualcode.org", "changeit")
	res = r.do("GET", "/profile/mine", "", "Authorization", admin.bearer())
	expect(t, res, 200, "success")
	codes := map[string]bool{}
	for _, role := range res.data()["roles"].([]any) {
		codes[role.(map[string]any)["code"].(string)] = true
	}
	for _, c := range []string{"LEARNER", "AUTHOR", "EDITOR", "ADMIN"} {
		if !codes[c] {
			t.Fatalf("admin lacks %s: %s", c, res.raw)
		}
	}
	if _, has := res.data()["profilePicUrl"]; has {
		t.Fatal("admin has no picture: profilePicUrl must be absent")
	}
}

// TestAuthenticatedRoutes covers the Authorization header rules, refresh and
// sign-out.
func TestAuthenticatedRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	a1 := r.signUp()
	admin := r.signIn("admin@unusualcode.org", "changeit")
	refreshBody := func(tok string) string { return `{"refreshToken":` + quoteJSON(tok) + `}` }
	tests := []struct {
		name, method, path, body, authorization string
		status                                  int
		message                                 string
	}{
		{"mine without header", "GET", "/profile/mine", "", "", 401, "permission denied: missing Authorization"},
		{"mine other scheme", "GET", "/profile/mine", "", "Token x", 401, "permission denied: invalid Authorization"},
		{"mine lower-case bearer", "GET", "/profile/mine", "", "bearer " + a1.access, 401, "permission denied: invalid Authorization"},
		{"mine bearer only", "GET", "/profile/mine", "", "Bearer ", 401, "permission denied: invalid Authorization"},
		{"mine garbage", "GET", "/profile/mine", "", "Bearer abc", 401, "token is malformed: token contains an invalid number of segments"},
		{"mine bad base64", "GET", "/profile/mine", "", "Bearer %%%.e30.sig", 401, "token is malformed"},
		{"mine refresh token", "GET", "/profile/mine", "", "Bearer " + a1.refresh, 401, "permission denied: invalid access token"},
		{"signout without header", "DELETE", "/signout", "", "", 401, "permission denied: missing Authorization"},
		{"refresh without header", "POST", "/token/refresh", refreshBody(a1.refresh), "", 401, "permission denied: missing Authorization"},
		{"refresh garbage access", "POST", "/token/refresh", refreshBody(a1.refresh), "Bearer abc", 401, "token is malformed: token contains an invalid number of segments"},
		{"refresh garbage refresh", "POST", "/token/refresh", refreshBody("abc"), a1.bearer(), 401, "token is malformed: token contains an invalid number of segments"},
		{"refresh with access as refresh", "POST", "/token/refresh", refreshBody(a1.access), a1.bearer(), 401, "permission denied: claims ids"},
		{"refresh other user's pair", "POST", "/token/refresh", refreshBody(admin.refresh), a1.bearer(), 401, "permission denied: access and refresh claims mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.authorization != "" {
				headers = []string{"Authorization", tt.authorization}
			}
			expect(t, r.do(tt.method, tt.path, tt.body, headers...), tt.status, tt.message)
		})
	}

	// Refresh once: a new pair; the old access token and the old pair die.
	res := r.do("POST", "/token/refresh", refreshBody(a1.refresh), "Authorization", a1.bearer())
	expect(t, res, 200, "success")
	assertKeys(t, res.data(), "accessToken", "refreshToken")
	a2 := session{userID: a1.userID, access: res.data()["accessToken"].(string), refresh: res.data()["refreshToken"].(string)}
	if a2.access == a1.access || a2.refresh == a1.refresh {
		t.Fatal("refresh must issue new tokens")
	}
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", a1.bearer()), 401, "permission denied: invalid access token")
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", a2.bearer()), 200, "success")

	// Sign out: the token is refused from now on, and so is its refresh.
	expect(t, r.do("DELETE", "/signout", "", "Authorization", a2.bearer()), 200, "signout success")
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", a2.bearer()), 401, "permission denied: invalid access token")
	expect(t, r.do("DELETE", "/signout", "", "Authorization", a2.bearer()), 401, "permission denied: invalid access token")
	expect(t, r.do("POST", "/token/refresh", refreshBody(a2.refresh), "Authorization", a2.bearer()), 401, "permission denied: claims ids")
	// The consumed first pair stays refused (presenting it again while a2
	// was live would have ended a2's session: see the reuse test).
	expect(t, r.do("POST", "/token/refresh", refreshBody(a1.refresh), "Authorization", a1.bearer()), 401, "permission denied: claims ids")
	// Other sessions of the same user are unaffected.
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", admin.bearer()), 200, "success")
}

// TestRateLimits: sign-in and sign-up have separate per-address budgets.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(map[string]string{"RATE_LIMIT_PER_MINUTE": "60", "RATE_LIMIT_BURST": "2"})
	for i := 0; i < 2; i++ {
		expect(t, r.do("POST", "/signin/basic", `{}`), 400, "email is required, password is required")
	}
	res := r.do("POST", "/signin/basic", `{}`)
	expect(t, res, 429, "too many requests")
	if res.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Sign-up still has its own budget.
	expect(t, r.do("POST", "/signup/basic", `{}`), 400, "email is required, password is required, name is required")
	// Other routes are not limited.
	for i := 0; i < 5; i++ {
		expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", s.apiKey), 200, "success")
	}
}

func assertKeys(t testing.TB, m map[string]any, keys ...string) {
	t.Helper()
	if len(m) != len(keys) {
		t.Fatalf("keys of %v, want exactly %v", m, keys)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("missing %q in %v", k, m)
		}
	}
}

func isOID(v any) bool {
	s, ok := v.(string)
	if !ok || len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkClaims decodes both tokens without verification and checks their
// RS256 header, the registered claims in the reference's order and values.
func checkClaims(t testing.TB, s session, issuer, audience string) {
	t.Helper()
	var jtis []string
	for i, tok := range []string{s.access, s.refresh} {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("token %d has %d segments", i, len(parts))
		}
		var header map[string]any
		decodeSegment(t, parts[0], &header)
		if header["alg"] != "RS256" || header["typ"] != "JWT" {
			t.Fatalf("header %v", header)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		// Registered claims only, in the reference's order.
		order := []string{`"iss"`, `"sub"`, `"aud"`, `"exp"`, `"nbf"`, `"iat"`, `"jti"`}
		last := -1
		for _, k := range order {
			i := strings.Index(string(payload), k)
			if i < last {
				t.Fatalf("claim order %s", payload)
			}
			last = i
		}
		var c struct {
			Iss           string   `json:"iss"`
			Sub           string   `json:"sub"`
			Aud           []string `json:"aud"`
			Exp, Nbf, Iat int64
			Jti           string `json:"jti"`
		}
		var all map[string]any
		_ = json.Unmarshal(payload, &all)
		if len(all) != 7 {
			t.Fatalf("claims %s", payload)
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		want := int64(172800)
		if i == 1 {
			want = 604800
		}
		if c.Iss != issuer || c.Sub != s.userID || len(c.Aud) != 1 || c.Aud[0] != audience || c.Nbf != c.Iat || c.Exp-c.Iat != want {
			t.Fatalf("claims %s", payload)
		}
		if len(c.Jti) != 64 || strings.ToLower(c.Jti) != c.Jti {
			t.Fatalf("jti %q", c.Jti)
		}
		if _, err := hex.DecodeString(c.Jti); err != nil {
			t.Fatalf("jti %q", c.Jti)
		}
		jtis = append(jtis, c.Jti)
	}
	if jtis[0] == jtis[1] {
		t.Fatal("access and refresh jti must differ")
	}
}

func decodeSegment(t testing.TB, seg string, dst any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		t.Fatal(err)
	}
}
