package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"blogplatform/chassis/metrics"
	"blogplatform/chassis/natsx"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/wait"
)

// These tests run against the embedded nats-server the platform uses, with
// responders in queue group "q" like auth_service's.

const subj = "auth.echo"

func startEmbedded(t *testing.T) *embedded.NATS {
	t.Helper()
	n, err := embedded.StartNATS(embedded.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// responder is one queue member of subj on its own connection.
type responder struct {
	nc    *nats.Conn
	sub   *nats.Subscription
	calls atomic.Int32
}

// addResponder subscribes a member that answers {"data":{"echo":"ok"}} after
// delay, each message in its own goroutine (a live member answers
// concurrently). With frozen set it never answers: the subscription's
// handler blocks until the test ends, like a SIGSTOPped process whose socket
// the server still writes to.
func addResponder(t *testing.T, url string, delay time.Duration, frozen bool) *responder {
	t.Helper()
	r := &responder{nc: connect(t, url)}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var err error
	r.sub, err = r.nc.QueueSubscribe(subj, "q", func(m *nats.Msg) {
		r.calls.Add(1)
		if frozen {
			<-release
			return
		}
		go func() {
			time.Sleep(delay)
			_ = m.Respond([]byte(`{"data":{"echo":"ok"}}`))
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func retryingClient(t *testing.T, url string, m *metrics.Metrics, o natsx.ClientOptions) *natsx.Client {
	t.Helper()
	return retryingClientOn(t, connect(t, url), m, o)
}

// retryingClientOn is retryingClient on a connection the test keeps (to read
// its message counters).
func retryingClientOn(t *testing.T, nc *nats.Conn, m *metrics.Metrics, o natsx.ClientOptions) *natsx.Client {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	o.Metrics = m
	o.Name = "auth"
	if o.Retry.Idempotent == nil {
		o.Retry.Idempotent = []string{"auth.>"}
	}
	return natsx.NewClient(nc, o)
}

func attemptsOf(m *metrics.Metrics, kind string) float64 {
	return testutil.ToFloat64(m.NATSAttempts.WithLabelValues(subj, kind))
}

// run sends n requests from workers goroutines and returns every error and
// the slowest request.
func run(c *natsx.Client, n, workers int) (errs []error, slowest time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int32{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= n {
				start := time.Now()
				var out echoResp
				err := c.Request(context.Background(), subj, echoReq{Value: "v"}, &out)
				if err == nil && out.Echo != "ok" {
					err = errors.New("wrong reply " + out.Echo)
				}
				d := time.Since(start)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				slowest = max(slowest, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs, slowest
}

// TestFrozenMemberCostsOneAttemptTimeout: one of two members never answers.
// Every request still succeeds, hedged to the live member, none takes more
// than a few attempt timeouts, and the breaker stays closed.
func TestFrozenMemberCostsOneAttemptTimeout(t *testing.T) {
	n := startEmbedded(t)
	live := addResponder(t, n.ClientURL(), 0, false)
	frozen := addResponder(t, n.ClientURL(), 0, true)
	m := metrics.New("test")
	const attempt = 200 * time.Millisecond
	// The most sensitive breaker there is: any request counted as failed
	// would open it. A lost message that a hedge made up for is no failure.
	// The frozen member here is never dropped (it still answers the
	// server's pings), so every request of the run needs ~1.6 extra
	// messages, more than the default budget grants a 2 s burst of
	// requests with no history before it; the budget has its own test.
	c := retryingClient(t, n.ClientURL(), m, natsx.ClientOptions{
		Breaker: natsx.BreakerOptions{MinRequests: 1, FailureRatio: 0.001},
		Retry:   natsx.RetryOptions{AttemptTimeout: attempt, Budget: 4},
	})

	const requests = 500
	errs, slowest := run(c, requests, 32)
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed, first: %v (%v hedges)", len(errs), requests, errs[0], attemptsOf(m, "hedge"))
	}
	// Rounds go out at 0, 1, 2 and 3 attempt timeouts; one more for the
	// scheduling noise of a busy test machine.
	if slowest > 5*attempt {
		t.Errorf("slowest request took %s, want at most %s", slowest, 5*attempt)
	}
	if c.BreakerState() != "closed" {
		t.Errorf("breaker %s", c.BreakerState())
	}
	// The frozen member's handler is stuck in its first message, so only the
	// live member's count tells where the other messages went.
	hedges := attemptsOf(m, "hedge")
	if frozen.calls.Load() == 0 || hedges == 0 {
		t.Errorf("frozen member got %d messages, %v hedges: the test did not exercise hedging", frozen.calls.Load(), hedges)
	}
	if got := attemptsOf(m, "first"); got != requests {
		t.Errorf("%v first messages, want %d", got, requests)
	}
	if ok := testutil.ToFloat64(m.NATSRequests.WithLabelValues(subj, "client", "ok")); ok != requests {
		t.Errorf("%v requests counted ok, want %d", ok, requests)
	}
	t.Logf("slowest %s; %d requests, %v hedges, %d answered by the live member", slowest, requests, hedges, live.calls.Load())
}

// TestSlowMemberStillAnswers: the only member answers after 300 ms, later
// than the attempt timeout. Hedges go out, but the reply to the first
// message, which comes first, is taken: a live but slow member is not
// abandoned.
func TestSlowMemberStillAnswers(t *testing.T) {
	n := startEmbedded(t)
	// The member numbers the messages of each request (each request sends
	// its own value) in the order it receives them and answers each, 300 ms
	// later, with its number; a late hedge of one request cannot shift the
	// numbers of the next.
	nc := connect(t, n.ClientURL())
	var mu sync.Mutex
	received := map[string]int{}
	if _, err := nc.QueueSubscribe(subj, "q", func(m *nats.Msg) {
		mu.Lock()
		received[string(m.Data)]++
		ordinal := received[string(m.Data)]
		mu.Unlock()
		go func() {
			time.Sleep(300 * time.Millisecond)
			_ = m.Respond(fmt.Appendf(nil, `{"data":{"echo":"%d"}}`, ordinal))
		}()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	m := metrics.New("test")
	c := retryingClient(t, n.ClientURL(), m, natsx.ClientOptions{})
	for i := range 3 {
		start := time.Now()
		var out echoResp
		if err := c.Request(context.Background(), subj, echoReq{Value: strconv.Itoa(i)}, &out); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if out.Echo != "1" {
			t.Errorf("request %d: reply to message %s, want the first one (1)", i, out.Echo)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("request %d took %s, less than the member's delay", i, d)
		}
	}
	if got := attemptsOf(m, "hedge"); got < 3*2 {
		t.Errorf("%v hedge messages, want at least one round of 2 per request", got)
	}
}

// TestNoRespondersIsRetried: "no responders" is retried after a short pause
// until a member appears, within the deadline.
func TestNoRespondersIsRetried(t *testing.T) {
	n := startEmbedded(t)
	m := metrics.New("test")
	nc := connect(t, n.ClientURL())
	c := retryingClientOn(t, nc, m, natsx.ClientOptions{Retry: natsx.RetryOptions{MaxAttempts: 100}})
	done := make(chan error, 1)
	go func() {
		var out echoResp
		done <- c.Request(context.Background(), subj, echoReq{Value: "v"}, &out)
	}()
	// The member appears once the first message and two retries went out.
	wait.Eventually(t, 5*time.Second, "two retries sent", func() bool { return nc.Stats().OutMsgs >= 3 })
	addResponder(t, n.ClientURL(), 0, false)
	if err := <-done; err != nil {
		t.Fatalf("request failed although a member appeared: %v", err)
	}
	// Pauses are 25 to 50 ms: a few retries while the member subscribes,
	// not a spin.
	if got := attemptsOf(m, "retry"); got < 2 || got > 8 {
		t.Errorf("%v retries", got)
	}
}

// TestNonIdempotentSentOnce: a subject not listed as idempotent is sent
// exactly once, whatever happens to it.
func TestNonIdempotentSentOnce(t *testing.T) {
	n := startEmbedded(t)
	frozen := addResponder(t, n.ClientURL(), 0, true)
	m := metrics.New("test")
	c := retryingClient(t, n.ClientURL(), m, natsx.ClientOptions{
		Timeout: 600 * time.Millisecond,
		Retry:   natsx.RetryOptions{Idempotent: []string{"auth.profile.>"}, AttemptTimeout: 50 * time.Millisecond},
	})
	var out echoResp
	if err := c.Request(context.Background(), subj, echoReq{Value: "v"}, &out); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable from a frozen member, got %v", err)
	}
	if got := frozen.calls.Load(); got != 1 {
		t.Errorf("non-idempotent request delivered %d times", got)
	}
	if _ = frozen.sub.Unsubscribe(); frozen.nc.Flush() != nil {
		t.Fatal("flush")
	}
	start := time.Now()
	if err := c.Request(context.Background(), subj, echoReq{Value: "v"}, &out); !errors.Is(err, natsx.ErrUnavailable) ||
		time.Since(start) > 100*time.Millisecond {
		t.Errorf("no responders: %v after %s, want ErrUnavailable at once", err, time.Since(start))
	}
	if got := attemptsOf(m, "hedge") + attemptsOf(m, "retry"); got != 0 {
		t.Errorf("%v extra messages for a non-idempotent subject", got)
	}
}

// TestAllMembersGone: with nobody answering, requests fail with
// ErrUnavailable within the deadline; the breaker opens only once the
// failure ratio over at least MinRequests is reached, then half-open trial
// requests close it when the members are back.
func TestAllMembersGone(t *testing.T) {
	n := startEmbedded(t)
	m := metrics.New("test")
	c := retryingClient(t, n.ClientURL(), m, natsx.ClientOptions{
		Timeout: 300 * time.Millisecond,
		Breaker: natsx.BreakerOptions{MinRequests: 10, FailureRatio: 0.5, Window: 5 * time.Second, OpenTimeout: 300 * time.Millisecond, HalfOpenRequests: 3},
		Retry:   natsx.RetryOptions{AttemptTimeout: 50 * time.Millisecond, MaxAttempts: 3},
	})
	var out echoResp
	request := func() error { return c.Request(context.Background(), subj, echoReq{Value: "v"}, &out) }

	// Six successes, then failures: the ratio reaches 50 % at the 6th failure
	// (12 requests), not before.
	live := addResponder(t, n.ClientURL(), 0, false)
	for i := range 6 {
		if err := request(); err != nil {
			t.Fatalf("success %d: %v", i, err)
		}
	}
	_ = live.sub.Unsubscribe()
	if err := live.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	frozen := addResponder(t, n.ClientURL(), 0, true) // half the failures are timeouts
	for i := range 6 {
		if i == 3 {
			_ = frozen.sub.Unsubscribe() // and half "no responders"
			_ = frozen.nc.Flush()
		}
		if c.BreakerState() != "closed" {
			t.Fatalf("breaker %s after %d failures of %d requests", c.BreakerState(), i, 6+i)
		}
		start := time.Now()
		if err := request(); !errors.Is(err, natsx.ErrUnavailable) {
			t.Fatalf("failure %d: %v", i, err)
		}
		if d := time.Since(start); d > 300*time.Millisecond+100*time.Millisecond {
			t.Errorf("failure %d took %s, past the 300 ms deadline", i, d)
		}
	}
	if c.BreakerState() != "open" {
		t.Fatalf("breaker %s after 6 failures of 12", c.BreakerState())
	}
	if err := request(); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("open breaker: %v", err)
	}
	if got := testutil.ToFloat64(m.NATSRequests.WithLabelValues(subj, "client", "breaker_open")); got != 1 {
		t.Errorf("%v breaker_open outcomes", got)
	}
	if got := testutil.ToFloat64(m.BreakerState.WithLabelValues("auth")); got != 2 {
		t.Errorf("breaker gauge %v, want 2 (open)", got)
	}

	addResponder(t, n.ClientURL(), 0, false)
	wait.Eventually(t, 5*time.Second, "breaker half-open", func() bool { return c.BreakerState() == "half-open" })
	for i := range 3 {
		if err := request(); err != nil {
			t.Fatalf("half-open trial %d: %v", i, err)
		}
		want := "half-open"
		if i == 2 {
			want = "closed"
		}
		if c.BreakerState() != want {
			t.Fatalf("breaker %s after %d trials, want %s", c.BreakerState(), i+1, want)
		}
	}
}

// TestOneMembersFailuresDoNotOpenBreaker: a burst of failures smaller than
// the ratio (a member's in-flight requests lost at once) leaves the breaker
// closed while the other member answers.
func TestOneMembersFailuresDoNotOpenBreaker(t *testing.T) {
	n := startEmbedded(t)
	addResponder(t, n.ClientURL(), 0, false)
	m := metrics.New("test")
	c := retryingClient(t, n.ClientURL(), m, natsx.ClientOptions{Timeout: time.Second, Retry: natsx.RetryOptions{MaxAttempts: 2}})
	for range 30 {
		if err := c.Request(context.Background(), subj, echoReq{Value: "v"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Twenty requests in a row fail (a subject nobody serves stands in for
	// the lost member): 20 of 50 is under half.
	for range 20 {
		if err := c.Request(context.Background(), "auth.gone", echoReq{Value: "v"}, nil); !errors.Is(err, natsx.ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if c.BreakerState() != "closed" {
		t.Fatalf("breaker %s after 20 failures among 50 requests", c.BreakerState())
	}
}

// TestCallerCancelStopsEverything: cancelling the caller's context ends the
// request at once, hedges included, and is not a failure for the breaker.
func TestCallerCancelStopsEverything(t *testing.T) {
	n := startEmbedded(t)
	addResponder(t, n.ClientURL(), 0, true)
	// A plain subscription sees every message sent to the subject (the
	// frozen member handles only its first one), so it counts what the
	// client sends.
	observer, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(observer.Close)
	var seen atomic.Int64
	if _, err := observer.Subscribe(subj, func(*nats.Msg) { seen.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := observer.Flush(); err != nil {
		t.Fatal(err)
	}
	m := metrics.New("test")
	c := retryingClient(t, n.ClientURL(), m, natsx.ClientOptions{
		Timeout: 10 * time.Second,
		Breaker: natsx.BreakerOptions{MinRequests: 1},
		Retry:   natsx.RetryOptions{AttemptTimeout: 20 * time.Millisecond},
	})
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := c.Request(ctx, subj, echoReq{Value: "v"}, nil)
		if d := time.Since(start); !errors.Is(err, natsx.ErrUnavailable) || d > 200*time.Millisecond {
			t.Fatalf("request %d: %v after %s, want ErrUnavailable soon after the cancel", i, err, d)
		}
	}
	// Messages published before the last request returned may still be on
	// their way: take the count once it has been still for 50 ms, then
	// watch for longer than the hedge schedule's next round.
	var sent int64
	wait.Eventually(t, 2*time.Second, "messages in flight to arrive", func() bool {
		before := seen.Load()
		time.Sleep(50 * time.Millisecond)
		sent = seen.Load()
		return sent == before
	})
	if sent < 3 {
		t.Fatalf("observer saw %d messages, want at least one per request", sent)
	}
	time.Sleep(500 * time.Millisecond)
	if later := seen.Load(); later != sent {
		t.Errorf("%d messages sent after the caller went away", later-sent)
	}
	if c.BreakerState() != "closed" {
		t.Errorf("cancelled requests opened the breaker")
	}
	if got := testutil.ToFloat64(m.NATSRequests.WithLabelValues(subj, "client", "cancelled")); got != 3 {
		t.Errorf("%v cancelled outcomes, want 3", got)
	}
}
