package tests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/internal/testkit"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

// privateApp runs an app on its own infrastructure, so a test can break
// auth or NATS without touching other tests.
func privateApp(t *testing.T, settings testkit.Settings) (*testkit.App, *testinfra.Env) {
	t.Helper()
	penv := testinfra.NewEnv(t)
	return testkit.NewApp(t, penv, testkit.NewRedisDBs(), settings), penv
}

// TestAuthErrorWithoutStatus: a well-formed error reply without a "NNN:"
// prefix is auth's answer, not an outage: authentication refused, so 401
// with auth's text (the reference's blog answers any authentication error
// with 401), and public reads are unaffected.
func TestAuthErrorWithoutStatus(t *testing.T) {
	app, penv := privateApp(t, nil)
	testkit.StartFakeAuth(t, penv.NATSURL(), testkit.ErrorWithoutStatus, 0)
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/author"},
		{http.MethodGet, "/author/drafts?page=1&limit=10"},
		{http.MethodPut, "/editor/publish/id/" + unknownID},
	} {
		app.Do(t, r.method, r.path, testkit.AuthorToken, `{}`).Want(t, 401, "garbage without status")
	}
	app.Do(t, http.MethodGet, "/list/latest?page=1&limit=10", "", nil).Want(t, 200, "success")
}

// TestAuthUnavailable: when auth_service cannot give a usable answer,
// protected routes answer 503 within the NATS timeout, never 401/403.
func TestAuthUnavailable(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T, env *testinfra.Env)
	}{
		{"no responders", func(*testing.T, *testinfra.Env) {}},
		{"reply not JSON", func(t *testing.T, env *testinfra.Env) {
			testkit.StartFakeAuth(t, env.NATSURL(), testkit.NotJSON, 0)
		}},
		{"reply after the timeout", func(t *testing.T, env *testinfra.Env) {
			testkit.StartFakeAuth(t, env.NATSURL(), testkit.Slow, 3*testkit.AuthTimeout)
		}},
		{"NATS down", func(t *testing.T, env *testinfra.Env) {
			testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
			env.NATS.Shutdown()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app, penv := privateApp(t, nil)
			c.start(t, penv)
			for _, r := range []struct{ method, path string }{
				{http.MethodPost, "/author"},
				{http.MethodGet, "/author/drafts?page=1&limit=10"},
				{http.MethodPut, "/editor/publish/id/" + unknownID},
			} {
				app.Do(t, r.method, r.path, testkit.AuthorToken, `{}`).Want(t, 503, authclient.UnavailableMessage)
			}
			// Public reads do not need auth.
			app.Do(t, http.MethodGet, "/list/latest?page=1&limit=10", "", nil).Want(t, 200, "success")
		})
	}
}

// TestBreakerOpensAndRecovers: once BREAKER_MIN_REQUESTS requests were
// unavailable (a failure ratio of 1) the circuit opens (503 without asking
// NATS); once auth is back and the open timeout has passed, the trial
// requests succeed and it closes again.
func TestBreakerOpensAndRecovers(t *testing.T) {
	app, penv := privateApp(t, testkit.Settings{"BREAKER_MIN_REQUESTS": "2", "BREAKER_OPEN_TIMEOUT": "200ms",
		"BREAKER_HALF_OPEN_REQUESTS": "1"})
	drafts := "/author/drafts?page=1&limit=10"
	for i := 0; i < 3; i++ {
		app.Do(t, http.MethodGet, drafts, testkit.AuthorToken, nil).Want(t, 503, authclient.UnavailableMessage)
	}
	auth := testkit.StartFakeAuth(t, penv.NATSURL(), testkit.Normal, 0)
	app.Do(t, http.MethodGet, drafts, testkit.AuthorToken, nil).Want(t, 503, authclient.UnavailableMessage)
	if n := auth.TotalCalls(); n != 0 {
		t.Errorf("open circuit still sent %d requests", n)
	}
	var last testkit.Response
	if !wait.For(10*time.Second, func() bool {
		last = app.Do(t, http.MethodGet, drafts, testkit.AuthorToken, nil)
		return last.Status == 200
	}) {
		t.Fatalf("circuit never closed: last answer %d %q", last.Status, last.Message)
	}
}

// TestAuthCallsCarryRequestContext: a client that goes away stops the wait
// for auth_service (here the NATS timeout is far longer than the test).
func TestAuthCallsCarryRequestContext(t *testing.T) {
	app, penv := privateApp(t, testkit.Settings{"NATS_REQUEST_TIMEOUT": "60s"})
	testkit.StartFakeAuth(t, penv.NATSURL(), testkit.Slow, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/author/drafts?page=1&limit=10", nil).WithContext(ctx)
	req.Header.Set("Authorization", testkit.AuthorToken)
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		app.Engine.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("status %d after the client went away", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the handler kept waiting for auth after its request was cancelled")
	}
}

// TestPublicReadsWithoutAuth: blog by id and slug, and every public list,
// answer from the store (and cache) with auth_service gone and with NATS
// itself down; nothing public ever asks auth.
func TestPublicReadsWithoutAuth(t *testing.T) {
	app, penv := privateApp(t, nil)
	auth := testkit.StartFakeAuth(t, penv.NATSURL(), testkit.Normal, 0)
	b := app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("pub"))
	app.Publish(t, testkit.AuthorToken, b.ID)
	before := auth.TotalCalls()

	paths := []string{"/id/" + b.ID, "/slug/" + b.Slug, "/list/latest?page=1&limit=10",
		"/list/tag/SCIENCE?page=1&limit=10", "/list/similar/id/" + b.ID}
	read := func(stage string) {
		t.Helper()
		for _, p := range paths {
			r := app.Do(t, http.MethodGet, p, "", nil)
			if r.Status != 200 {
				t.Errorf("%s: GET %s = %d %q", stage, p, r.Status, r.Message)
			}
		}
	}
	read("auth up")
	if n := auth.TotalCalls() - before; n != 0 {
		t.Errorf("public reads sent %d requests to auth", n)
	}
	auth.Stop()
	read("auth down")
	penv.NATS.Shutdown()
	read("NATS down")
	// Cold reads (empty cache) too.
	if err := app.Redis.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	read("NATS down, cache empty")
	app.Do(t, http.MethodGet, "/author/drafts?page=1&limit=10", testkit.AuthorToken, nil).Want(t, 503, authclient.UnavailableMessage)
}

// TestAuthorizationRoles: each group requires its role, and auth's own
// answers (status and bare message) reach the client unchanged.
func TestAuthorizationRoles(t *testing.T) {
	app, _ := newApp(t)
	for _, c := range []struct {
		token, path string
		status      int
		message     string
	}{
		{testkit.AuthorToken, "/author/drafts?page=1&limit=1", 200, "success"},
		{testkit.EditorToken, "/editor/submitted?page=1&limit=1", 200, "success"},
		{testkit.EditorToken, "/author/drafts?page=1&limit=1", 403, "permission denied: does not have sufficient role"},
		{testkit.AuthorToken, "/editor/submitted?page=1&limit=1", 403, "permission denied: does not have sufficient role"},
		{testkit.LearnerToken, "/author/drafts?page=1&limit=1", 403, "permission denied: does not have sufficient role"},
		{"Token x", "/author/drafts?page=1&limit=1", 401, "permission denied: invalid access token"},
	} {
		app.Do(t, http.MethodGet, c.path, c.token, nil).Want(t, c.status, c.message)
	}
}
