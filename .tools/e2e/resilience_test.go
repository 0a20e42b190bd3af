package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/devkit/wait"
	"blogplatform/tools/internal/gateway"
	"blogplatform/tools/internal/platform"
)

// requireAllReady makes sure every replica runs and the gateway sees every
// target ready and up, so each test starts from the full platform.
func requireAllReady(t *testing.T) {
	t.Helper()
	restartStopped(t)
	if !wait.For(20*time.Second, func() bool {
		for _, s := range stack.GatewayStats() {
			if !s.Ready || s.Down {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("gateway targets not all ready: %+v", stack.GatewayStats())
	}
}

// restartStopped restarts every replica that is not running.
func restartStopped(t *testing.T) {
	t.Helper()
	for _, r := range stack.Replicas() {
		if r.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := r.Restart(ctx, stack.StopGrace())
		cancel()
		if err != nil {
			t.Fatalf("restarting %s: %v", r.Name, err)
		}
	}
}

// restoreAfter restarts, when the test ends, the replicas it stopped.
func restoreAfter(t *testing.T) {
	t.Cleanup(func() { restartStopped(t) })
}

func statsByName() map[string]gateway.TargetStats {
	out := map[string]gateway.TargetStats{}
	for _, s := range stack.GatewayStats() {
		out[s.Name] = s
	}
	return out
}

func signInAdmin(t *testing.T, c *client) string {
	t.Helper()
	r := c.do(http.MethodPost, "/auth/signin/basic", map[string]any{"email": platform.DevAdminEmail, "password": platform.DevAdminPassword})
	token := str(mustOK(t, r, "success"), "tokens", "accessToken")
	if token == "" {
		t.Fatalf("%v: no access token", r)
	}
	return token
}

// publishedBlog creates, submits and publishes a blog as the admin.
func publishedBlog(t *testing.T, c *client, admin string) (id, slug string) {
	t.Helper()
	rnd := random(10)
	r := c.do(http.MethodPost, "/blog/author/", map[string]any{
		"title": "Load Test " + rnd, "description": "load test blog", "draftText": "load test body",
		"slug": "load-" + rnd, "imgUrl": "https://x.io/l.png", "tags": []string{"LOAD"},
	}, bearer(admin))
	data := mustOK(t, r, "blog created successfully")
	id, slug = str(data, "_id"), str(data, "slug")
	mustOK(t, c.do(http.MethodPut, "/blog/author/submit/id/"+id, nil, bearer(admin)), "blog submitted successfully")
	mustOK(t, c.do(http.MethodPut, "/blog/editor/publish/id/"+id, nil, bearer(admin)), "blog published successfully")
	return id, slug
}

// loadResult counts the answers of runLoad.
type loadResult struct {
	ok       int64
	failures []string
}

type loadRequest struct {
	path string
	opts []option
	// status is the expected answer; 0 means 200 with code 10000.
	status int
}

// runLoad sends total GET requests from workers goroutines, cycling through
// requests; each answer must have its expected status. pace > 0 spaces each
// worker's requests. progress is called with the number of requests finished
// so far after each one.
func runLoad(c *client, total, workers int, pace time.Duration, requests []loadRequest, progress func(done int64)) loadResult {
	var next, done, ok atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				req := requests[int(i)%len(requests)]
				r, err := c.try(http.MethodGet, req.path, nil, req.opts...)
				switch {
				case err != nil:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("#%d GET %s: %v", i, req.path, err))
					mu.Unlock()
				case req.status != 0 && r.status != req.status,
					req.status == 0 && (r.status != http.StatusOK || str(r.body, "code") != "10000"):
					mu.Lock()
					failures = append(failures, fmt.Sprintf("#%d %v", i, r))
					mu.Unlock()
				default:
					ok.Add(1)
				}
				if progress != nil {
					progress(done.Add(1))
				}
				if pace > 0 {
					time.Sleep(pace)
				}
			}
		})
	}
	wg.Wait()
	return loadResult{ok: ok.Load(), failures: failures}
}

func reportFailures(t *testing.T, res loadResult, total int) {
	t.Helper()
	if len(res.failures) == 0 {
		return
	}
	shown := res.failures
	if len(shown) > 10 {
		shown = shown[:10]
	}
	t.Errorf("%d of %d requests failed; first ones:\n%s", len(res.failures), total, strings.Join(shown, "\n"))
}

func TestLoadSpreadsOverEveryReplica(t *testing.T) {
	dumpLogsOnFailure(t)
	requireAllReady(t)
	c := newClient(t)
	id, slug := publishedBlog(t, c, signInAdmin(t, c))

	before := statsByName()
	const total = 240
	res := runLoad(c, total, 4, 0, []loadRequest{
		{path: "/blog/id/" + id},
		{path: "/auth/verify/apikey"},
		{path: "/blog/list/latest?page=1&limit=10"},
		{path: "/auth/verify/apikey"},
		{path: "/blog/slug/" + slug},
		{path: "/auth/verify/apikey"},
	}, nil)
	reportFailures(t, res, total)

	after := statsByName()
	served := map[string]int64{}
	perService := map[string]int64{}
	for name, s := range after {
		served[name] = s.Served - before[name].Served
		perService[strings.TrimRight(name, "0123456789")] += served[name]
	}
	t.Logf("requests served per replica: %v", served)
	for _, r := range stack.Replicas() {
		total := perService[r.Service]
		if total == 0 {
			t.Fatalf("no %s request was served", r.Service)
		}
		// Round robin over two replicas: each serves about half; a quarter
		// leaves room for retries and health blips while proving the spread.
		if share := float64(served[r.Name]) / float64(total); share < 0.25 {
			t.Errorf("%s served %d of %d %s requests (%.0f%%)", r.Name, served[r.Name], total, r.Service, share*100)
		}
	}
}

func TestFailoverWhenReplicasAreKilled(t *testing.T) {
	dumpLogsOnFailure(t)
	requireAllReady(t)
	restoreAfter(t)
	c := newClient(t)
	admin := signInAdmin(t, c)
	id, slug := publishedBlog(t, c, admin)

	victims := []*platform.Replica{stack.Replica("auth1"), stack.Replica("blog1")}
	var killOnce sync.Once
	killed := make(chan struct{})
	kill := func() {
		for _, r := range victims {
			if err := r.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("SIGKILL %s: %v", r.Name, err)
			}
		}
		close(killed)
	}

	const total = 500
	res := runLoad(c, total, 4, 0, []loadRequest{
		{path: "/blog/id/" + id},
		{path: "/auth/profile/mine", opts: []option{bearer(admin)}},
		{path: "/blog/list/latest?page=1&limit=10"},
		{path: "/auth/profile/mine", opts: []option{bearer(admin)}},
		{path: "/blog/slug/" + slug},
		// A rejected key is never cached by the plugin, so every one of
		// these asks a verifier: they must keep getting auth's 403 (not a
		// 503) while auth1 is dead.
		{path: "/auth/verify/apikey", opts: []option{withKey("not-a-key")}, status: http.StatusForbidden},
	}, func(done int64) {
		if done == 100 {
			killOnce.Do(kill)
		}
	})
	select {
	case <-killed:
	default:
		t.Fatal("the replicas were never killed")
	}
	for _, r := range victims {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.Wait(ctx)
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s should have died of SIGKILL, got %v", r.Name, err)
		}
	}
	reportFailures(t, res, total)
	t.Logf("%d of %d requests succeeded; gateway targets: %s", res.ok, total, describeStats())
}

// TestGracefulShutdownLosesNoRequest is issue 5's shutdown test: SIGTERM a
// blog replica while a client sends 300 requests through the gateway. The
// replica's readiness turns 503 first (SHUTDOWN_DRAIN_DELAY), the gateway's
// readiness poll moves traffic away, in-flight requests finish, and not one
// request fails.
func TestGracefulShutdownLosesNoRequest(t *testing.T) {
	dumpLogsOnFailure(t)
	requireAllReady(t)
	restoreAfter(t)
	c := newClient(t)
	id, slug := publishedBlog(t, c, signInAdmin(t, c))
	victim := stack.Replica("blog1")

	// Watch the victim's own readiness from the moment of SIGTERM until it
	// stops answering.
	saw503 := make(chan bool, 1)
	var once sync.Once
	terminate := func() {
		if err := victim.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM: %v", err)
			saw503 <- false
			return
		}
		go func() { saw503 <- watchReadiness(victim.Addr) }()
	}

	const total = 300
	start := time.Now()
	// 4 workers, 60 ms apart: about 4.5 s of traffic, so the drain delay and
	// the shutdown happen in the middle of it.
	res := runLoad(c, total, 4, 60*time.Millisecond, []loadRequest{
		{path: "/blog/id/" + id},
		{path: "/blog/list/latest?page=1&limit=10"},
		{path: "/blog/slug/" + slug},
	}, func(done int64) {
		if done == 50 {
			once.Do(terminate)
		}
	})
	t.Logf("300 requests in %v", time.Since(start).Round(time.Millisecond))
	reportFailures(t, res, total)

	if !<-saw503 {
		t.Error("blog1's /health/ready never answered 503 between SIGTERM and closing its listener (readiness must turn 503 first)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), stack.StopGrace())
	defer cancel()
	if err := victim.Wait(ctx); err != nil {
		t.Errorf("blog1 after SIGTERM: %v (want a clean exit, status 0)", err)
	}
	t.Logf("gateway targets: %s", describeStats())
}

// watchReadiness polls addr's /health/ready until the connection is refused
// and reports whether it answered 503 in between.
func watchReadiness(addr string) bool {
	client := &http.Client{Timeout: time.Second}
	saw503 := false
	wait.For(30*time.Second, func() bool {
		resp, err := client.Get("http://" + addr + "/health/ready")
		if err != nil {
			return true // the listener is closed: nothing more to see
		}
		resp.Body.Close()
		saw503 = resp.StatusCode == http.StatusServiceUnavailable
		return saw503
	})
	return saw503
}

func describeStats() string {
	var parts []string
	for _, s := range stack.GatewayStats() {
		parts = append(parts, fmt.Sprintf("%s served=%d failures=%d ready=%v", s.Name, s.Served, s.Failures, s.Ready))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// TestOnlyAuthMayServeAuthSubjects checks the local platform's NATS users:
// blog's credentials cannot subscribe to auth's request subjects, so no
// process with them can answer in auth's place, while auth's can.
func TestOnlyAuthMayServeAuthSubjects(t *testing.T) {
	permErrs := make(chan error, 4)
	connect := func(service string) *nats.Conn {
		user, password := stack.NATSCredentials(service)
		nc, err := nats.Connect(stack.NATSURL(), nats.UserInfo(user, password),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { permErrs <- err }))
		if err != nil {
			t.Fatalf("%s credentials: %v", service, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}

	blog := connect("blog")
	if _, err := blog.SubscribeSync("auth.authentication"); err != nil {
		t.Fatal(err)
	}
	if err := blog.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-permErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("want a permissions violation, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("blog's credentials subscribed to auth.authentication without a permissions violation")
	}

	auth := connect("auth")
	sub, err := auth.SubscribeSync("auth.e2e-permission-probe")
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Flush(); err != nil {
		t.Fatal(err)
	}
	// blog may send requests on auth.>, and auth receives them.
	if err := blog.Publish("auth.e2e-permission-probe", []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Errorf("auth did not receive blog's message on auth.>: %v", err)
	}
	select {
	case err := <-permErrs:
		t.Errorf("unexpected NATS error: %v", err)
	default:
	}

	if _, err := nats.Connect(stack.NATSURL(), nats.UserInfo("intruder", "guess")); err == nil {
		t.Error("unknown credentials were accepted")
	}
}
