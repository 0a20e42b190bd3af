package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"blogplatform/tools/internal/platform"
)

const unknownID = "000000000000000000000001"

// TestUserJourney walks a user's whole journey in 55 numbered steps (the
// numbers in the comments below) through the gateway, with the answers of
// the README's "Differences from the reference" where they differ. Each
// group is a subtest; the journey stops at the first group that fails, since
// later groups use what earlier ones created.
func TestUserJourney(t *testing.T) {
	dumpLogsOnFailure(t)
	c := newClient(t)
	rnd := random(10)
	j := &journey{
		c:     c,
		rnd:   rnd,
		email: "learner-" + rnd + "@e2e.test",
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"01-06 api key and routing", j.apiKeyAndRouting},
		{"07-16 sign-up and sign-in", j.signUpAndSignIn},
		{"17-19 profile", j.profile},
		{"20-24 refresh and sign-out", j.refreshAndSignOut},
		{"25-27 role failures through NATS", j.roleFailures},
		{"28-35 author creates and updates", j.authorCreates},
		{"36-38 submit and withdraw", j.submitAndWithdraw},
		{"39-41 editor publishes", j.editorPublishes},
		{"42-47 public reads", j.publicReads},
		{"48-50 unpublish and delete", j.unpublishAndDelete},
		{"51-55 bad input and auth order", j.badInput},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			return
		}
	}
}

// journey carries what earlier steps created.
type journey struct {
	c     *client
	rnd   string
	email string

	userID                 string
	a1, r1                 string // E1's first token pair
	a2                     string // after refresh
	adminID                string
	adminAccess, adminRefr string
	learner                string // L: a LEARNER-only access token

	b1, s1 string // first blog id and slug
	b2, s2 string // second blog
}

const learnerPassword = "secret1"

func (j *journey) apiKeyAndRouting(t *testing.T) {
	c := j.c
	// 1–3
	expect(t, c.do(http.MethodGet, "/auth/verify/apikey", nil, noKey()), 401, "permission denied: missing x-api-key header")
	expect(t, c.do(http.MethodGet, "/auth/verify/apikey", nil, withKey("wrong")), 403, "permission denied: invalid x-api-key")
	requestID := "e2e-" + j.rnd
	r := c.do(http.MethodGet, "/auth/verify/apikey", nil, func(r *http.Request) { r.Header.Set("X-Request-ID", requestID) })
	expect(t, r, 200, "success")
	if _, ok := r.body["data"]; ok {
		t.Errorf("%v: no data key expected", r)
	}
	// A sane client request id travels through the gateway and comes back.
	if got := r.header.Get("X-Request-ID"); got != requestID {
		t.Errorf("%v: X-Request-ID %q, want the client's %q", r, got, requestID)
	}
	// 4: the plugin is global.
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=1&limit=10", nil, noKey()), 401, "permission denied: missing x-api-key header")
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=1&limit=10", nil, withKey("wrong")), 403, "permission denied: invalid x-api-key")
	// 5: unknown path 404; a wrong method on a known path 405 with Allow.
	expect(t, c.do(http.MethodGet, "/auth/does/not/exist", nil), 404, "url not found")
	r = c.do(http.MethodGet, "/auth/signup/basic", nil)
	expect(t, r, 405, "method not allowed")
	if !strings.Contains(r.header.Get("Allow"), http.MethodPost) {
		t.Errorf("%v: Allow %q should list POST", r, r.header.Get("Allow"))
	}
	// 6: no route: Kong's 404 message in the platform's envelope, with or
	// without a key.
	for _, opts := range [][]option{nil, {noKey()}} {
		r = c.do(http.MethodGet, "/nothing", nil, opts...)
		checkEnvelope(t, r)
		if r.status != 404 || str(r.body, "message") != "no Route matched with those values" {
			t.Errorf("%v: want the no-route 404", r)
		}
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("%v: Content-Type %q", r, r.header.Get("Content-Type"))
	}
	// Health through the gateway needs no key.
	for _, p := range []string{"/auth/health/live", "/auth/health/ready", "/blog/health/live", "/blog/health/ready"} {
		if r := c.do(http.MethodGet, p, nil, noKey()); r.status != 200 {
			t.Errorf("%v: health without a key", r)
		}
	}
}

func (j *journey) signUpAndSignIn(t *testing.T) {
	c := j.c
	// 7–9
	expect(t, c.do(http.MethodPost, "/auth/signup/basic", map[string]any{}), 400,
		"email is required, password is required, name is required")
	expect(t, c.do(http.MethodPost, "/auth/signup/basic", map[string]any{"email": "bad", "password": "123", "name": "x"}), 400,
		"email is not a valid email, password must be at least 6 characters, name must be at least 2 characters")
	expect(t, c.do(http.MethodPost, "/auth/signup/basic", map[string]any{
		"email": "pic-" + j.rnd + "@e2e.test", "password": learnerPassword, "name": "Pic Test", "profilePicUrl": "notaurl",
	}), 400, "profilePicUrl is not a valid URL")

	// 10
	r := c.do(http.MethodPost, "/auth/signup/basic", map[string]any{"email": j.email, "password": learnerPassword, "name": "Learner One"})
	data := mustOK(t, r, "success")
	j.userID = str(data, "user", "_id")
	if !oidPattern.MatchString(j.userID) || str(data, "user", "email") != j.email || str(data, "user", "name") != "Learner One" {
		t.Errorf("%v: user", r)
	}
	checkRoles(t, r, get(data, "user", "roles"), []string{"LEARNER"}, true)
	if strings.Contains(strings.ToLower(string(r.raw)), "password") {
		t.Errorf("%v: the password (or its hash) must not appear", r)
	}
	access, refresh := str(data, "tokens", "accessToken"), str(data, "tokens", "refreshToken")
	// 11
	checkTokenPair(t, access, refresh, j.userID)

	// 12
	expect(t, c.do(http.MethodPost, "/auth/signup/basic", map[string]any{"email": j.email, "password": learnerPassword, "name": "Learner One"}),
		400, "user already registered")
	// 13–14
	expect(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{}), 400, "email is required, password is required")
	expect(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": "nobody-" + j.rnd + "@e2e.test", "password": learnerPassword}),
		404, "user not registered")
	expect(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": j.email, "password": "wrong-password"}),
		401, "wrong password")
	// 15
	r = c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": j.email, "password": learnerPassword})
	data = mustOK(t, r, "success")
	if str(data, "user", "_id") != j.userID {
		t.Errorf("%v: signed in as someone else", r)
	}
	checkRoles(t, r, get(data, "user", "roles"), []string{"LEARNER"}, true)
	j.a1, j.r1 = str(data, "tokens", "accessToken"), str(data, "tokens", "refreshToken")
	checkTokenPair(t, j.a1, j.r1, j.userID)
	// 16
	r = c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": platform.DevAdminEmail, "password": platform.DevAdminPassword})
	data = mustOK(t, r, "success")
	j.adminID = str(data, "user", "_id")
	checkRoles(t, r, get(data, "user", "roles"), []string{"LEARNER", "AUTHOR", "EDITOR", "ADMIN"}, false)
	j.adminAccess, j.adminRefr = str(data, "tokens", "accessToken"), str(data, "tokens", "refreshToken")
	if j.adminAccess == "" || j.adminRefr == "" {
		t.Fatalf("%v: admin tokens", r)
	}
}

// checkRoles checks a roles array of {_id, code}; exact means exactly codes.
func checkRoles(t *testing.T, r reply, roles any, codes []string, exact bool) {
	t.Helper()
	list, ok := roles.([]any)
	if !ok {
		t.Errorf("%v: roles is not an array", r)
		return
	}
	var got []string
	for _, role := range list {
		if !oidPattern.MatchString(str(role, "_id")) {
			t.Errorf("%v: role without an id: %v", r, role)
		}
		if len(keys(role)) != 2 {
			t.Errorf("%v: role keys %v, want _id and code", r, keys(role))
		}
		got = append(got, str(role, "code"))
	}
	for _, code := range codes {
		if !slices.Contains(got, code) {
			t.Errorf("%v: roles %v lack %s", r, got, code)
		}
	}
	if exact && len(got) != len(codes) {
		t.Errorf("%v: roles %v, want exactly %v", r, got, codes)
	}
}

// checkTokenPair is item 11.
func checkTokenPair(t *testing.T, access, refresh, userID string) {
	t.Helper()
	var jtis []string
	for _, tc := range []struct {
		token    string
		validity float64
	}{{access, 172800}, {refresh, 604800}} {
		header, claims := decodeJWT(t, tc.token)
		if header["alg"] != "RS256" {
			t.Errorf("alg %v", header["alg"])
		}
		if claims["iss"] != "api.goserve.unusualcode.org" || claims["sub"] != userID {
			t.Errorf("claims %v", claims)
		}
		if aud, ok := claims["aud"].([]any); !ok || len(aud) != 1 || aud[0] != "goserve.unusualcode.org" {
			t.Errorf("aud %v, want [\"goserve.unusualcode.org\"]", claims["aud"])
		}
		iat, _ := claims["iat"].(float64)
		if claims["nbf"] != iat || claims["exp"].(float64)-iat != tc.validity {
			t.Errorf("times: iat %v nbf %v exp %v, want nbf = iat and a validity of %v", iat, claims["nbf"], claims["exp"], tc.validity)
		}
		jti, _ := claims["jti"].(string)
		if !hex64.MatchString(jti) {
			t.Errorf("jti %q", jti)
		}
		jtis = append(jtis, jti)
	}
	if jtis[0] == jtis[1] {
		t.Error("access and refresh tokens share a jti")
	}
}

func (j *journey) profile(t *testing.T) {
	c := j.c
	// 17
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil), 401, "permission denied: missing Authorization")
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, authorization("Token x")), 401, "permission denied: invalid Authorization")
	// A malformed token is a 401 with a clean message, never a 500; the
	// wording is the service's.
	expectStatus(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer("abc")), 401)
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(j.r1)), 401, "permission denied: invalid access token")
	// 18
	r := c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(j.a1))
	data := mustOK(t, r, "success")
	if str(data, "_id") != j.userID || str(data, "email") != j.email || str(data, "name") != "Learner One" {
		t.Errorf("%v: profile", r)
	}
	checkRoles(t, r, get(data, "roles"), []string{"LEARNER"}, true)
	// 19
	r = c.do(http.MethodGet, "/auth/profile/id/"+j.userID, nil)
	data = mustOK(t, r, "success")
	if str(data, "_id") != j.userID || str(data, "name") != "Learner One" {
		t.Errorf("%v: public profile", r)
	}
	for _, k := range keys(data) {
		if k != "_id" && k != "name" && k != "profilePicUrl" {
			t.Errorf("%v: public profile must not carry %q", r, k)
		}
	}
	expect(t, c.do(http.MethodGet, "/auth/profile/id/abc", nil), 400, "id must be of length 24")
	expect(t, c.do(http.MethodGet, "/auth/profile/id/"+unknownID, nil), 404, "user does not exist")
	// 24 characters that are not hex are a 400, not a silent zero id.
	expect(t, c.do(http.MethodGet, "/auth/profile/id/zzzzzzzzzzzzzzzzzzzzzzzz", nil), 400, "id must be a valid id")
}

func (j *journey) refreshAndSignOut(t *testing.T) {
	c := j.c
	// 20
	expect(t, c.do(http.MethodPost, "/auth/token/refresh", map[string]any{}, bearer(j.a1)), 400, "refreshToken is required")
	r := c.do(http.MethodPost, "/auth/token/refresh", map[string]any{"refreshToken": j.r1}, bearer(j.a1))
	data := mustOK(t, r, "success")
	a2, r2 := str(data, "accessToken"), str(data, "refreshToken")
	if a2 == "" || r2 == "" || a2 == j.a1 || r2 == j.r1 {
		t.Fatalf("%v: a new, different pair expected", r)
	}
	j.a2 = a2
	// 21: the old pair is gone (refreshing it again is a 401, and once the
	// reuse grace period is over it also ends a2's session, so that is
	// checked after a2's last use below).
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(j.a1)), 401, "permission denied: invalid access token")
	mustOK(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(a2)), "success")
	// 22: someone else's refresh token.
	expectStatus(t, c.do(http.MethodPost, "/auth/token/refresh", map[string]any{"refreshToken": j.adminRefr}, bearer(a2)), 401)
	// Refresh misuse: garbage refresh token, and a refresh without an access token.
	expectStatus(t, c.do(http.MethodPost, "/auth/token/refresh", map[string]any{"refreshToken": "garbage"}, bearer(a2)), 401)
	expectStatus(t, c.do(http.MethodPost, "/auth/token/refresh", map[string]any{"refreshToken": r2}), 401)
	// 23
	expect(t, c.do(http.MethodDelete, "/auth/signout", nil), 401, "permission denied: missing Authorization")
	r = c.do(http.MethodDelete, "/auth/signout", nil, bearer(a2))
	expect(t, r, 200, "signout success")
	if _, ok := r.body["data"]; ok {
		t.Errorf("%v: no data expected", r)
	}
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(a2)), 401, "permission denied: invalid access token")
	expectStatus(t, c.do(http.MethodPost, "/auth/token/refresh", map[string]any{"refreshToken": j.r1}, bearer(j.a1)), 401)
	// 24
	r = c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": j.email, "password": learnerPassword})
	j.learner = str(mustOK(t, r, "success"), "tokens", "accessToken")
}

func (j *journey) roleFailures(t *testing.T) {
	c := j.c
	body := j.blogBody("Role Check", "role check")
	// 25: auth's error through blog is the bare message, no "401:" prefix.
	expect(t, c.do(http.MethodPost, "/blog/author/", body), 401, "permission denied: missing Authorization")
	// 26–27
	expect(t, c.do(http.MethodPost, "/blog/author/", body, bearer(j.learner)), 403, "permission denied: does not have sufficient role")
	expect(t, c.do(http.MethodGet, "/blog/editor/submitted?page=1&limit=10", nil, bearer(j.learner)), 403, "permission denied: does not have sufficient role")
}

// blogBody is a valid creation body; slugText gets the run's suffix.
func (j *journey) blogBody(title, slugText string) map[string]any {
	return map[string]any{
		"title":       title + " " + j.rnd,
		"description": "desc text",
		"draftText":   "draft body",
		"slug":        slugText + " " + j.rnd,
		"imgUrl":      "https://x.io/a.png",
		"tags":        []string{"SCIENCE", "GARDEN"},
	}
}

func (j *journey) authorCreates(t *testing.T) {
	c := j.c
	admin := bearer(j.adminAccess)
	// 28–29
	expect(t, c.do(http.MethodPost, "/blog/author/", map[string]any{}, admin), 400,
		"title is required, description is required, draftText is required, slug is required, imgUrl is required, tags is required")
	expect(t, c.do(http.MethodPost, "/blog/author/", map[string]any{
		"title": "ab", "description": "ab", "draftText": "", "slug": "ab", "imgUrl": "not a uri", "tags": []string{},
	}, admin), 400,
		"title must be at least 3 size, description must be at least 3 size, draftText is required, slug must be at least 3 size, imgUrl must be a valid URI, tags must be at least 1 size")
	lower := j.blogBody("Lower Tags", "lower tags")
	lower["tags"] = []string{"go"}
	expect(t, c.do(http.MethodPost, "/blog/author/", lower, admin), 400, "tags[0] must be uppercase")

	// 30: without the trailing slash it works like with it (no 307).
	r := c.do(http.MethodPost, "/blog/author", j.blogBody("No Slash Post", "no slash"), admin)
	data := mustOK(t, r, "blog created successfully")
	if str(data, "slug") != "noslash"+j.rnd {
		t.Errorf("%v: slug", r)
	}

	// 31
	body := j.blogBody("Quantum Gardening Basics", "qg basics")
	r = c.do(http.MethodPost, "/blog/author/", body, admin)
	data = mustOK(t, r, "blog created successfully")
	j.b1, j.s1 = str(data, "_id"), str(data, "slug")
	if !oidPattern.MatchString(j.b1) || j.s1 != "qgbasics"+j.rnd {
		t.Fatalf("%v: id %q slug %q", r, j.b1, j.s1)
	}
	if get(data, "drafted") != true || get(data, "submitted") != false || get(data, "published") != false || get(data, "score") != 0.01 {
		t.Errorf("%v: state flags or score", r)
	}
	if tags, _ := get(data, "tags").([]any); len(tags) != 2 || tags[0] != "SCIENCE" || tags[1] != "GARDEN" {
		t.Errorf("%v: tags", r)
	}
	if str(data, "author", "_id") != j.adminID || str(data, "author", "name") == "" || get(data, "author", "email") != nil {
		t.Errorf("%v: author must be {_id, name} of the admin", r)
	}
	if get(data, "createdAt") == nil || get(data, "updatedAt") == nil || get(data, "text") != nil || get(data, "publishedAt") != nil {
		t.Errorf("%v: timestamps / text", r)
	}
	// imgUrl given at creation is stored.
	if str(data, "imgUrl") != "https://x.io/a.png" {
		t.Errorf("%v: imgUrl not stored", r)
	}
	// 32
	expect(t, c.do(http.MethodPost, "/blog/author/", body, admin), 400, "Blog with slug: "+j.s1+" already exists")

	// 33 (PUT without the slash too)
	expect(t, c.do(http.MethodPut, "/blog/author/", map[string]any{}, admin), 400, "_id is required")
	expect(t, c.do(http.MethodPut, "/blog/author", map[string]any{"_id": unknownID}, admin), 404, "Blog with id: "+unknownID+" does not exist")
	r = c.do(http.MethodPut, "/blog/author/", map[string]any{
		"_id": j.b1, "title": "Quantum Gardening Advanced " + j.rnd, "imgUrl": "https://x.io/b.png", "draftText": "final body",
	}, admin)
	data = mustOK(t, r, "blog updated successfully")
	if str(data, "title") != "Quantum Gardening Advanced "+j.rnd || str(data, "imgUrl") != "https://x.io/b.png" || str(data, "draftText") != "final body" {
		t.Errorf("%v: update not applied", r)
	}

	// 34
	r = c.do(http.MethodGet, "/blog/author/id/"+j.b1, nil, admin)
	if str(mustOK(t, r, "success"), "_id") != j.b1 {
		t.Errorf("%v", r)
	}
	expect(t, c.do(http.MethodGet, "/blog/author/id/"+unknownID, nil, admin), 404, unknownID+" not found")
	expect(t, c.do(http.MethodGet, "/blog/author/id/abc", nil, admin), 400, "id must be of length 24")
	expect(t, c.do(http.MethodGet, "/blog/author/id/zzzzzzzzzzzzzzzzzzzzzzzz", nil, admin), 400, "id must be a valid id")

	// 35
	found, item := listContains(t, c, "/blog/author/drafts", j.b1, admin)
	if !found {
		t.Errorf("B1 not among the drafts")
	}
	allowed := []string{"_id", "title", "description", "slug", "imgUrl", "score", "tags"}
	for _, k := range keys(item) {
		if !slices.Contains(allowed, k) {
			t.Errorf("draft list item has %q (allowed %v)", k, allowed)
		}
	}
	expect(t, c.do(http.MethodGet, "/blog/author/drafts", nil, admin), 400, "page is required, limit is required")
}

func (j *journey) submitAndWithdraw(t *testing.T) {
	c := j.c
	admin := bearer(j.adminAccess)
	// 36
	expect(t, c.do(http.MethodPut, "/blog/editor/publish/id/"+j.b1, nil, admin), 400, "blog for _id "+j.b1+" is not submitted")
	// 37
	expect(t, c.do(http.MethodPut, "/blog/author/submit/id/"+j.b1, nil, admin), 200, "blog submitted successfully")
	for _, list := range []string{"/blog/author/submitted", "/blog/editor/submitted"} {
		if found, _ := listContains(t, c, list, j.b1, admin); !found {
			t.Errorf("B1 not in %s after submit", list)
		}
	}
	// 38
	expect(t, c.do(http.MethodPut, "/blog/author/withdraw/id/"+j.b1, nil, admin), 200, "blog withdrawn successfully")
	if found, _ := listContains(t, c, "/blog/editor/submitted", j.b1, admin); found {
		t.Error("B1 still in /blog/editor/submitted after withdraw")
	}
	expect(t, c.do(http.MethodPut, "/blog/author/submit/id/"+j.b1, nil, admin), 200, "blog submitted successfully")
	expect(t, c.do(http.MethodPut, "/blog/author/submit/id/"+unknownID, nil, admin), 404, "blog not found")
}

func (j *journey) editorPublishes(t *testing.T) {
	c := j.c
	admin := bearer(j.adminAccess)
	// 39
	r := c.do(http.MethodGet, "/blog/editor/id/"+j.b1, nil, admin)
	if get(mustOK(t, r, "success"), "submitted") != true {
		t.Errorf("%v: submitted should be true", r)
	}
	expect(t, c.do(http.MethodGet, "/blog/editor/id/"+unknownID, nil, admin), 404, unknownID+" not found")
	// 40
	expect(t, c.do(http.MethodGet, "/blog/id/"+j.b1, nil), 404, "blog not found")
	// 41
	expect(t, c.do(http.MethodPut, "/blog/editor/publish/id/"+j.b1, nil, admin), 200, "blog published successfully")
	expect(t, c.do(http.MethodPut, "/blog/editor/publish/id/"+j.b1, nil, admin), 400, "blog for _id "+j.b1+" is already published")
	expect(t, c.do(http.MethodPut, "/blog/editor/publish/id/"+unknownID, nil, admin), 404, "blog for _id "+unknownID+" not found")
}

func (j *journey) publicReads(t *testing.T) {
	c := j.c
	admin := bearer(j.adminAccess)
	// 42 (key only, no Authorization)
	r := c.do(http.MethodGet, "/blog/id/"+j.b1, nil)
	data := mustOK(t, r, "success")
	if str(data, "text") != "final body" || get(data, "publishedAt") == nil || get(data, "score") != 0.01 {
		t.Errorf("%v: text, publishedAt or score", r)
	}
	if len(keys(get(data, "author"))) != 2 || str(data, "author", "_id") != j.adminID || str(data, "author", "name") == "" {
		t.Errorf("%v: author must be {_id, name}", r)
	}
	for _, k := range []string{"draftText", "drafted", "submitted", "published", "createdAt"} {
		if get(data, k) != nil {
			t.Errorf("%v: a public blog must not carry %s", r, k)
		}
	}
	if tags, _ := get(data, "tags").([]any); len(tags) != 2 || tags[0] != "SCIENCE" || tags[1] != "GARDEN" {
		t.Errorf("%v: tags", r)
	}
	if str(data, "imgUrl") != "https://x.io/b.png" {
		t.Errorf("%v: imgUrl", r)
	}
	// 43
	r = c.do(http.MethodGet, "/blog/slug/"+j.s1, nil)
	if str(mustOK(t, r, "success"), "_id") != j.b1 {
		t.Errorf("%v: slug lookup", r)
	}
	expect(t, c.do(http.MethodGet, "/blog/slug/ab", nil), 400, "slug must be at least 3 characters")
	expect(t, c.do(http.MethodGet, "/blog/slug/no-such-slug-"+j.rnd, nil), 404, "blog not found")
	expect(t, c.do(http.MethodGet, "/blog/id/"+unknownID, nil), 404, "blog not found")
	// 44
	if found, _ := listContains(t, c, "/blog/list/latest", j.b1); !found {
		t.Error("B1 not in the latest list")
	}
	expect(t, c.do(http.MethodGet, "/blog/list/latest", nil), 400, "page is required, limit is required")
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=0&limit=10", nil), 400, "page is required")
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=-1&limit=10", nil), 400, "page must be min 1")
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=1&limit=1001", nil), 400, "limit must be at most 1000")
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=abc&limit=1", nil), 400, "page must be an integer")
	// 45
	if found, _ := listContains(t, c, "/blog/list/tag/SCIENCE", j.b1); !found {
		t.Error("B1 not in the SCIENCE list")
	}
	expect(t, c.do(http.MethodGet, "/blog/list/tag/science?page=1&limit=10", nil), 400, "tag must be uppercase")
	r = c.do(http.MethodGet, "/blog/list/tag/NOSUCHTAG"+strings.ToUpper(j.rnd)+"?page=1&limit=10", nil)
	if data, ok := mustOK(t, r, "success").([]any); !ok || len(data) != 0 {
		t.Errorf("%v: want data []", r)
	}
	// 46: B2 shares title terms with B1, so it is similar.
	r = c.do(http.MethodPost, "/blog/author/", map[string]any{
		"title": "Quantum Gardening Tools " + j.rnd, "description": "desc text", "draftText": "tools body",
		"slug": "qg tools " + j.rnd, "imgUrl": "https://x.io/c.png", "tags": []string{"SCIENCE"},
	}, admin)
	data = mustOK(t, r, "blog created successfully")
	j.b2, j.s2 = str(data, "_id"), str(data, "slug")
	expect(t, c.do(http.MethodPut, "/blog/author/submit/id/"+j.b2, nil, admin), 200, "blog submitted successfully")
	expect(t, c.do(http.MethodPut, "/blog/editor/publish/id/"+j.b2, nil, admin), 200, "blog published successfully")
	r = c.do(http.MethodGet, "/blog/list/similar/id/"+j.b1, nil)
	similar, _ := mustOK(t, r, "success").([]any)
	var ids []string
	for _, item := range similar {
		ids = append(ids, str(item, "_id"))
	}
	if len(similar) > 6 || !slices.Contains(ids, j.b2) || slices.Contains(ids, j.b1) {
		t.Errorf("%v: similar must hold B2, not B1, at most 6", r)
	}
	expect(t, c.do(http.MethodGet, "/blog/list/similar/id/"+unknownID, nil), 404, "blog not found")
	// 47
	for _, list := range []string{"/blog/editor/published", "/blog/author/published"} {
		if found, _ := listContains(t, c, list, j.b1, admin); !found {
			t.Errorf("B1 not in %s", list)
		}
	}
}

func (j *journey) unpublishAndDelete(t *testing.T) {
	c := j.c
	admin := bearer(j.adminAccess)
	// 48
	expect(t, c.do(http.MethodPut, "/blog/editor/unpublish/id/"+j.b2, nil, admin), 200, "blog unpublished successfully")
	expect(t, c.do(http.MethodPut, "/blog/editor/unpublish/id/"+j.b2, nil, admin), 400, "blog for _id "+j.b2+" is not published")
	r := c.do(http.MethodGet, "/blog/author/id/"+j.b2, nil, admin)
	data := mustOK(t, r, "success")
	if get(data, "drafted") != true || get(data, "published") != false || str(data, "text") == "" {
		t.Errorf("%v: after unpublish: drafted true, published false, text kept", r)
	}
	// 49: no stale public answers after a write (every cached view of the
	// blog is invalidated before the write returns). B1 was read
	// by id and slug above, so it was cached.
	expect(t, c.do(http.MethodGet, "/blog/slug/"+j.s2, nil), 404, "blog not found")
	expect(t, c.do(http.MethodPut, "/blog/editor/unpublish/id/"+j.b1, nil, admin), 200, "blog unpublished successfully")
	expect(t, c.do(http.MethodGet, "/blog/id/"+j.b1, nil), 404, "blog not found")
	expect(t, c.do(http.MethodGet, "/blog/slug/"+j.s1, nil), 404, "blog not found")
	// 50
	expect(t, c.do(http.MethodDelete, "/blog/author/id/"+j.b2, nil, admin), 200, "blog deleted successfully")
	expect(t, c.do(http.MethodDelete, "/blog/author/id/"+j.b2, nil, admin), 404, "blog not found")
	expect(t, c.do(http.MethodGet, "/blog/author/id/"+j.b2, nil, admin), 404, j.b2+" not found")
	expectStatus(t, c.do(http.MethodGet, "/blog/editor/id/"+j.b2, nil, admin), 404)
	reuse := j.blogBody("Slug Reuse", "x")
	reuse["slug"] = j.s2
	expect(t, c.do(http.MethodPost, "/blog/author/", reuse, admin), 400, "Blog with slug: "+j.s2+" already exists")
}

func (j *journey) badInput(t *testing.T) {
	c := j.c
	admin := bearer(j.adminAccess)
	// 51
	expectStatus(t, c.do(http.MethodPut, "/blog/author/", map[string]any{"_id": "xyz"}, admin), 400)
	// 52
	expectStatus(t, c.do(http.MethodPost, "/auth/signin/basic", `{"email": "a@b.c", "password": `), 400)
	// 53
	expectStatus(t, c.do(http.MethodPost, "/auth/signup/basic", ""), 400)
	// 54: an expired or garbage token is a 401 with the bare message.
	r := c.do(http.MethodGet, "/blog/author/drafts?page=1&limit=10", nil, bearer("garbage.token.value"))
	expectStatus(t, r, 401)
	if strings.HasPrefix(str(r.body, "message"), "401:") {
		t.Errorf("%v: auth's error must carry the bare message, no \"401:\" prefix", r)
	}
	// 55: authentication runs before validation.
	expect(t, c.do(http.MethodPost, "/blog/author/", map[string]any{"title": 1}), 401, "permission denied: missing Authorization")
}
