package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"blogplatform/tools/internal/admincli"
	"blogplatform/tools/internal/kongconf"
	"blogplatform/tools/internal/platform"
)

// cliResult is one run of the admin command line.
type cliResult struct {
	code           int
	stdout, stderr string
}

// adminCLI runs the operators' command line (its real code, in process)
// against the platform's gateway, from its own client address so that its
// sign-ins do not spend other tests' sign-in budget. Every answer the CLI
// receives is checked against the services' OpenAPI documents.
type adminCLI struct {
	t         *testing.T
	transport http.RoundTripper
}

func newAdminCLI(t *testing.T) *adminCLI {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 2}
	t.Cleanup(tr.CloseIdleConnections)
	return &adminCLI{t: t, transport: &specCheckingTransport{t: t, next: tr}}
}

func (a *adminCLI) run(args ...string) cliResult {
	a.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := admincli.Run(ctx, append([]string{"-gateway", stack.GatewayURL()}, args...), admincli.Env{
		Getenv: func(string) string { return "" }, // the defaults: the local platform's seeded admin and key
		Stdout: &out, Stderr: &errOut, Transport: a.transport,
	})
	res := cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
	a.t.Logf("admin %s -> %d\n%s%s", strings.Join(args, " "), code, res.stdout, res.stderr)
	return res
}

// ok runs a command that must succeed and returns its output.
func (a *adminCLI) ok(args ...string) string {
	a.t.Helper()
	res := a.run(args...)
	if res.code != admincli.ExitOK || res.stderr != "" {
		a.t.Fatalf("admin %v: exit %d, stderr %q", args, res.code, res.stderr)
	}
	return res.stdout
}

// specCheckingTransport validates every answer against the OpenAPI
// documents, as the other end-to-end clients do.
type specCheckingTransport struct {
	t    *testing.T
	next http.RoundTripper
}

func (s *specCheckingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	validateAgainstSpec(s.t, reply{method: req.Method, path: req.URL.RequestURI(), status: resp.StatusCode, header: resp.Header, raw: raw})
	return resp, nil
}

// gatewayKeyCacheTTL is how long the gateway's API-key plugin accepts a key
// again without asking auth (cache_ttl_seconds of the Kong file the
// platform runs): the bound on a revoked key's remaining life.
func gatewayKeyCacheTTL(t *testing.T) time.Duration {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := platform.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kongconf.Load(filepath.Join(root, platform.DefaultKongFile))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.GlobalPlugins["apikey-auth-plugin"]
	if !ok {
		t.Fatal("no global apikey-auth-plugin in the Kong file")
	}
	var settings kongconf.APIKeyConfig
	if err := p.DecodeConfig(&settings); err != nil {
		t.Fatal(err)
	}
	if settings.CacheTTLSeconds <= 0 {
		t.Fatalf("the Kong file's API-key cache is off (cache_ttl_seconds %d): nothing to bound", settings.CacheTTLSeconds)
	}
	return time.Duration(settings.CacheTTLSeconds) * time.Second
}

var shownKey = regexp.MustCompile(`(?m)^([0-9a-f]{64})$`)

// TestAdminCommandsRevokeAKeyAtTheGateway: a key created with the CLI works
// through the gateway at once; revoked with the CLI it is refused by the
// gateway within the plugin's cache TTL (plus one second for the polling
// and the verification round trip), never later.
func TestAdminCommandsRevokeAKeyAtTheGateway(t *testing.T) {
	dumpLogsOnFailure(t)
	cli := newAdminCLI(t)
	c := newClient(t)
	ttl := gatewayKeyCacheTTL(t)

	out := cli.ok("apikeys", "create", "-comment", "e2e "+random(6), "-comment", "second comment")
	m := shownKey.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "shown once") {
		t.Fatalf("no key shown in %q", out)
	}
	key := m[1]
	idLine := regexp.MustCompile(`API key created: ([0-9a-f]{24})`).FindStringSubmatch(out)
	if idLine == nil {
		t.Fatalf("no key id in %q", out)
	}
	keyID := idLine[1]

	// The new key works at once (the gateway has never seen it), and the
	// gateway now holds it as accepted.
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=1&limit=1", nil, withKey(key)), 200, "success")

	list := cli.ok("apikeys", "list")
	row := regexp.MustCompile(`(?m)^` + keyID + `\s+active\s+` + key[60:] + `\s`).FindString(list)
	if row == "" || strings.Contains(list, key) {
		t.Fatalf("key %s not listed as active with suffix %s (or its value shown):\n%s", keyID, key[60:], list)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(cli.ok("-json", "apikeys", "list")), &listed); err != nil || len(listed) == 0 {
		t.Fatalf("-json apikeys list: %v", err)
	}

	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=1&limit=1", nil, withKey(key)), 200, "success")
	if out := cli.ok("apikeys", "revoke", keyID); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke said %q", out)
	}
	revoked := time.Now()
	bound := ttl + time.Second
	var last reply
	for {
		last = c.do(http.MethodGet, "/blog/list/latest?page=1&limit=1", nil, withKey(key))
		if last.status == http.StatusForbidden {
			break
		}
		if time.Since(revoked) > bound {
			t.Fatalf("the revoked key is still accepted %v after its revocation (bound: the gateway's cache TTL %v + 1s): %v",
				time.Since(revoked).Round(time.Millisecond), ttl, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	expect(t, last, 403, "permission denied: invalid x-api-key")
	t.Logf("the gateway refused the revoked key %v after its revocation (cache TTL %v)", time.Since(revoked).Round(time.Millisecond), ttl)
	// Auth itself refuses it at once, and keeps refusing it.
	expect(t, c.do(http.MethodGet, "/auth/verify/apikey", nil, withKey(key)), 403, "permission denied: invalid x-api-key")
	expect(t, c.do(http.MethodGet, "/blog/list/latest?page=1&limit=1", nil), 200, "success") // the seeded key is untouched
}

// TestAdminCommandsOnUsers: roles granted and revoked with the CLI count at
// once in blog_service; a disabled user's token is refused at once by every
// auth replica and through the gateway; sessions are listed and ended.
// Refusals are clear and exit non-zero.
func TestAdminCommandsOnUsers(t *testing.T) {
	dumpLogsOnFailure(t)
	cli := newAdminCLI(t)
	c := newClient(t)
	email, password := "ops-"+random(8)+"@e2e.test", "secret1"
	data := mustOK(t, c.do(http.MethodPost, "/auth/signup/basic", map[string]any{"email": email, "password": password, "name": "Ops Target"}), "success")
	userID, token := str(data, "user", "_id"), str(data, "tokens", "accessToken")
	draft := func() map[string]any {
		rnd := random(8)
		return map[string]any{"title": "Ops " + rnd, "description": "admin commands", "draftText": "body",
			"slug": "ops-" + rnd, "imgUrl": "https://x.io/o.png", "tags": []string{"OPS"}}
	}

	// Roles: AUTHOR lets the user write drafts, at once.
	expect(t, c.do(http.MethodPost, "/blog/author/", draft(), bearer(token)), 403, "permission denied: does not have sufficient role")
	if out := cli.ok("users", "roles", "grant", email, "author"); !strings.Contains(out, "Role AUTHOR granted") || !strings.Contains(out, "LEARNER,AUTHOR") {
		t.Fatalf("grant said %q", out)
	}
	mustOK(t, c.do(http.MethodPost, "/blog/author/", draft(), bearer(token)), "blog created successfully")
	cli.ok("users", "roles", "revoke", userID, "AUTHOR")
	expect(t, c.do(http.MethodPost, "/blog/author/", draft(), bearer(token)), 403, "permission denied: does not have sufficient role")
	if out := cli.ok("users", "show", email); !regexp.MustCompile(userID + `\s+` + email + `\s+Ops Target\s+enabled\s+LEARNER\n`).MatchString(out) {
		t.Fatalf("show said %q", out)
	}

	// Sessions: two more sign-ins, one ended by id, then all.
	second := str(mustOK(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": email, "password": password}), "success"), "tokens", "accessToken")
	third := str(mustOK(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": email, "password": password}), "success"), "tokens", "accessToken")
	var sessions []struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal([]byte(cli.ok("-json", "sessions", "list", email)), &sessions); err != nil || len(sessions) != 3 {
		t.Fatalf("sessions: %v %v", err, sessions)
	}
	if out := cli.ok("sessions", "list", email); !strings.HasPrefix(out, "SESSION") || !strings.Contains(out, sessions[0].ID) {
		t.Fatalf("sessions list said %q", out)
	}
	cli.ok("sessions", "end", email, sessions[0].ID) // the newest: the third sign-in
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(third)), 401, "permission denied: invalid access token")
	mustOK(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(second)), "success")
	if out := cli.ok("sessions", "end", "-all", email); !strings.Contains(out, "2 session(s) ended") {
		t.Fatalf("sessions end -all said %q", out)
	}
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(second)), 401, "permission denied: invalid access token")

	// Disable: the token of a fresh session is refused at once (no retry)
	// by every auth replica, directly and through the gateway, and by blog.
	fresh := str(mustOK(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": email, "password": password}), "success"), "tokens", "accessToken")
	replicas := authReplicas(t)
	for _, addr := range replicas { // every replica holds the session and the user
		if status := direct(t, addr, fresh); status != http.StatusOK {
			t.Fatalf("%s: profile before disable: %d", addr, status)
		}
	}
	if out := cli.ok("users", "disable", email); !strings.Contains(out, "User disabled; 1 session(s) ended.") || !strings.Contains(out, "disabled") {
		t.Fatalf("disable said %q", out)
	}
	for _, addr := range replicas {
		if status := direct(t, addr, fresh); status != http.StatusUnauthorized {
			t.Errorf("%s answered %d to a disabled user's token right after the disable", addr, status)
		}
	}
	expect(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(fresh)), 401, "permission denied: claims subject does not exist")
	expect(t, c.do(http.MethodPost, "/blog/author/", draft(), bearer(fresh)), 401, "permission denied: claims subject does not exist")
	expect(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": email, "password": password}), 404, "user not registered")
	cli.ok("users", "enable", email)
	mustOK(t, c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": email, "password": password}), "success")

	// Refusals: exit status 1 with the platform's message; usage errors 2.
	failures := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"users", "roles", "grant", email, "WIZARD"}, 1, "400 role must be one of LEARNER, AUTHOR, EDITOR, ADMIN"},
		{[]string{"users", "show", "nobody-" + random(6) + "@e2e.test"}, 1, "404 user does not exist"},
		{[]string{"apikeys", "revoke", "000000000000000000000001"}, 1, "404 api key does not exist"},
		{[]string{"-email", email, "-password", password, "apikeys", "list"}, 1, "403 permission denied: does not have sufficient role"},
		{[]string{"-password", "wrong-password", "apikeys", "list"}, 1, "sign-in as " + platform.DevAdminEmail + ": 401 wrong password"},
		{[]string{"-api-key", "wrong", "apikeys", "list"}, 1, "403 permission denied: invalid x-api-key"},
		{[]string{"users", "disable", platform.DevAdminEmail}, 1, "400 an administrator cannot disable their own account"},
		{[]string{"sessions", "end", email}, 2, "sessions end needs USER SESSION_ID, or USER -all"},
	}
	for _, f := range failures {
		res := cli.run(f.args...)
		if res.code != f.code || !strings.Contains(res.stderr, f.stderr) {
			t.Errorf("admin %v: exit %d, stderr %q; want %d and %q", f.args, res.code, res.stderr, f.code, f.stderr)
		}
	}
}

// authReplicas are the addresses of the platform's auth replicas.
func authReplicas(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range stack.Replicas() {
		if r.Service == "auth" {
			out = append(out, r.Addr)
		}
	}
	if len(out) < 2 {
		t.Fatalf("%d auth replicas; the test needs every replica of several", len(out))
	}
	return out
}

// direct asks one auth replica (no gateway) for the token's profile.
func direct(t *testing.T, addr, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/profile/mine", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
