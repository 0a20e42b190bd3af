package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// What the gateway, as the platform's edge, promises clients: internal
// endpoints stay internal, a client cannot choose the address it is limited
// under, and every error the gateway itself gives is the platform envelope.

// TestMetricsAreNotReachableThroughTheGateway: the services' metrics live on
// an internal listener that no gateway route reaches.
func TestMetricsAreNotReachableThroughTheGateway(t *testing.T) {
	dumpLogsOnFailure(t)
	c := newClient(t)
	for _, path := range []string{"/auth/metrics", "/blog/metrics", "/auth/metrics/", "/blog/metrics?x=1"} {
		r := c.do("GET", path, nil)
		expect(t, r, http.StatusNotFound, "url not found")
	}
	// They are still served, on each replica's internal listener.
	for _, rep := range stack.Replicas() {
		res, err := http.Get("http://" + rep.MetricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("%s metrics listener: %v", rep.Name, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s metrics listener: %d", rep.Name, res.StatusCode)
		}
	}
}

// clientFrom is a client whose connections come from the given loopback
// address (all of 127.0.0.0/8 reaches the gateway on Linux), so a test can
// act as a client of its own without sharing 127.0.0.1's rate-limit budget
// with every other test.
func clientFrom(t *testing.T, ip string) *client {
	c := newClient(t)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 4,
	}}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

// TestForgedForwardedForDoesNotEscapeTheSignInLimit: a client that sends a
// new X-Forwarded-For (and X-Real-IP, Forwarded) with every sign-in is still
// limited under the address it really connects from, and another client is
// not. Were the forged header believed anywhere (the gateway's limit or the
// service's), every request would count for a new address and all of them
// would be answered.
func TestForgedForwardedForDoesNotEscapeTheSignInLimit(t *testing.T) {
	dumpLogsOnFailure(t)
	attacker := clientFrom(t, "127.0.0.2")
	const (
		budget  = 120 // sign-in requests per minute per client address
		attempt = 2 * budget
	)
	res := signInFlood(t, attempt, func(i int) (reply, error) {
		forged := fmt.Sprintf("203.0.113.%d, 198.51.100.%d", i%250+1, i%250+1)
		// A new email each time: the per-account limit must not be what
		// stops this client.
		body := map[string]any{"email": fmt.Sprintf("nobody-%d-%s@example.com", i, random(6)), "password": "wrong-password"}
		return attacker.try("POST", "/auth/signin/basic", body, func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", forged)
			r.Header.Set("X-Real-IP", fmt.Sprintf("198.51.100.%d", i%250+1))
			r.Header.Set("Forwarded", fmt.Sprintf("for=192.0.2.%d", i%250+1))
		})
	})
	answered, refused, limited := res.answered, res.refused, res.limited
	t.Logf("%d sign-ins with forged addresses: %d answered, %d refused with 429", attempt, answered, refused)
	if limited.status != http.StatusTooManyRequests || answered > budget {
		t.Fatalf("%d of %d sign-ins with forged X-Forwarded-For were answered; the budget is %d per minute", answered, attempt, budget)
	}
	checkEnvelope(t, limited)
	if limited.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", limited)
	}
	// Another real client is not affected.
	other := clientFrom(t, "127.0.0.3")
	body := map[string]any{"email": "nobody-other-" + random(6) + "@example.com", "password": "wrong-password"}
	expect(t, other.do("POST", "/auth/signin/basic", body), http.StatusNotFound, "user not registered")
}

// TestGatewayErrorsAreEnvelopes: the gateway's own denials (no key, a wrong
// key, too many requests, no verifier reachable) use the platform's
// envelope, like the services' answers.
func TestGatewayErrorsAreEnvelopes(t *testing.T) {
	dumpLogsOnFailure(t)
	requireAllReady(t)
	c := clientFrom(t, "127.0.0.4")

	r := c.do("GET", "/blog/list/latest", nil, noKey())
	checkEnvelope(t, r)
	expectStatus(t, r, http.StatusUnauthorized)

	r = c.do("GET", "/blog/list/latest", nil, withKey("not-a-key-"+random(8)))
	checkEnvelope(t, r)
	expectStatus(t, r, http.StatusForbidden)

	body := map[string]any{"email": "nobody-" + random(6) + "@example.com", "password": "wrong-password"}
	for i := 0; ; i++ {
		r = c.do("POST", "/auth/signup/basic", map[string]any{"email": body["email"], "password": "pw"}, withKey("not-a-key-"+random(8)))
		if r.status == http.StatusTooManyRequests || i > 200 {
			break
		}
	}
	checkEnvelope(t, r)
	expectStatus(t, r, http.StatusTooManyRequests)

	// No verifier answers (both auth replicas frozen) and the key was never
	// seen: 503 in the envelope, within the plugin's timeouts.
	restoreAfter(t)
	var frozen []int
	for _, rep := range stack.Replicas() {
		if rep.Service == "auth" {
			if err := rep.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			frozen = append(frozen, rep.Pid())
		}
	}
	t.Cleanup(func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, rep := range stack.Replicas() {
			if err := rep.WaitReady(ctx); err != nil {
				t.Errorf("%s not ready after SIGCONT: %v", rep.Name, err)
			}
		}
	})
	start := time.Now()
	r = c.do("GET", "/blog/list/latest", nil, withKey("unseen-key-"+random(8)))
	checkEnvelope(t, r)
	expectStatus(t, r, http.StatusServiceUnavailable)
	t.Logf("503 after %v with every auth replica frozen", time.Since(start).Round(time.Millisecond))
	if got := r.header.Get("X-Request-ID"); got == "" {
		t.Errorf("503 without X-Request-ID")
	}
}

// floodResult counts the answers of signInFlood.
type floodResult struct {
	answered, refused int   // sign-in's own answer (404 unknown user), 429
	limited           reply // the first 429
}

// signInFlood sends n sign-in attempts, 8 at a time (so the run stays well
// inside one minute); send makes attempt i. Any answer but the unknown
// user's 404 or a 429 fails the test.
func signInFlood(t *testing.T, n int, send func(i int) (reply, error)) floodResult {
	t.Helper()
	var (
		mu  sync.Mutex
		res floodResult
		wg  sync.WaitGroup
	)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range n {
			next <- i
		}
	}()
	for range 8 {
		wg.Go(func() {
			for i := range next {
				r, err := send(i)
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("sign-in %d: %v", i, err)
				case r.status == http.StatusTooManyRequests:
					res.refused++
					if res.limited.status == 0 {
						res.limited = r
					}
				case r.status == http.StatusNotFound && str(r.body, "message") == "user not registered":
					res.answered++
				default:
					t.Errorf("sign-in %d: %v", i, r)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}
