package ratelimit

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock lets windows pass without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(at time.Time) *fakeClock { return &fakeClock{now: at} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// minuteStart is a clock-aligned window start, so tests can place requests
// at known offsets into a window.
var minuteStart = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func newLimiter(t *testing.T, clock *fakeClock, perMinute int, paths ...string) *Limiter {
	t.Helper()
	l, err := New([]Rule{{Paths: paths, PerMinute: perMinute}}, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// spend sends n requests and fails unless all are allowed.
func spend(t *testing.T, l *Limiter, client, path string, n int) {
	t.Helper()
	for i := range n {
		if r := l.Allow(client, path); !r.Allowed {
			t.Fatalf("request %d of %d by %s to %s denied: %+v", i+1, n, client, path, r)
		}
	}
}

func TestNewValidatesRules(t *testing.T) {
	tests := []struct {
		name    string
		rules   []Rule
		wantErr string // "" means valid
	}{
		{name: "no rules", rules: nil},
		{name: "one rule", rules: []Rule{{Paths: []string{"/auth/signin/basic", "/auth/signup/basic"}, PerMinute: 120}}},
		{name: "per_minute zero (absent)", rules: []Rule{{Paths: []string{"/a"}}}, wantErr: "per_minute 0"},
		{name: "per_minute negative", rules: []Rule{{Paths: []string{"/a"}, PerMinute: -1}}, wantErr: "per_minute -1"},
		{name: "per_minute too large", rules: []Rule{{Paths: []string{"/a"}, PerMinute: MaxPerMinute + 1}}, wantErr: "per_minute"},
		{name: "no paths", rules: []Rule{{PerMinute: 5}}, wantErr: "paths is empty"},
		{name: "relative path", rules: []Rule{{Paths: []string{"auth/signin"}, PerMinute: 5}}, wantErr: `"auth/signin" does not start with /`},
		{name: "second rule named", rules: []Rule{{Paths: []string{"/a"}, PerMinute: 1}, {Paths: []string{""}, PerMinute: 1}}, wantErr: "rate_limits[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.rules, Options{})
			if tc.wantErr == "" {
				if err != nil || l == nil {
					t.Fatalf("New = %v, %v; want a limiter", l, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAllowCountsDownThenDenies(t *testing.T) {
	clock := newClock(minuteStart.Add(10 * time.Second))
	l := newLimiter(t, clock, 3, "/auth/signin/basic")

	for i, wantRemaining := range []int{2, 1, 0} {
		r := l.Allow("10.0.0.1", "/auth/signin/basic")
		if !r.Allowed || !r.Limited || r.Limit != 3 || r.Remaining != wantRemaining {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, r, wantRemaining)
		}
		h := r.Header()
		if h.Get(HeaderLimit) != "3" || h.Get(HeaderRemaining) != fmt.Sprint(wantRemaining) || h.Get(HeaderRetryAfter) != "" {
			t.Errorf("request %d headers = %v", i+1, h)
		}
	}
	r := l.Allow("10.0.0.1", "/auth/signin/basic")
	if r.Allowed || !r.Limited || r.Remaining != 0 {
		t.Fatalf("4th request: %+v, want denied", r)
	}
	// 3 requests in this window, none before: room again only once the
	// sliding window has let go of one of them, 50 s + 60/3 s from now.
	if want := 70 * time.Second; r.RetryAfter != want {
		t.Errorf("RetryAfter = %v, want %v", r.RetryAfter, want)
	}
	if h := r.Header(); h.Get(HeaderRetryAfter) != "70" || h.Get(HeaderRemaining) != "0" || h.Get(HeaderLimit) != "3" {
		t.Errorf("denial headers = %v, want Retry-After 70 s, remaining 0, limit 3", h)
	}
}

func TestRetryAfterIsExact(t *testing.T) {
	tests := []struct {
		name      string
		perMinute int
		prevAt    time.Duration // offset into the previous window of the earlier requests; <0: none
		prev      int
		curAt     time.Duration // offset into the current window of the current requests
		cur       int
	}{
		{name: "budget spent in this window", perMinute: 10, prevAt: -1, curAt: 5 * time.Second, cur: 10},
		{name: "budget spent in the previous window", perMinute: 10, prevAt: 50 * time.Second, prev: 10, curAt: 1 * time.Second, cur: 0},
		{name: "spread over both windows", perMinute: 10, prevAt: 30 * time.Second, prev: 8, curAt: 20 * time.Second, cur: 4},
		{name: "limit one", perMinute: 1, prevAt: -1, curAt: 59 * time.Second, cur: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock(minuteStart)
			l := newLimiter(t, clock, tc.perMinute, "/p")
			if tc.prevAt >= 0 {
				clock.Advance(tc.prevAt)
				spend(t, l, "c", "/p", tc.prev)
				clock.Advance(Window - tc.prevAt)
			}
			clock.Advance(tc.curAt)
			spend(t, l, "c", "/p", tc.cur)
			r := l.Allow("c", "/p")
			if r.Allowed {
				t.Fatalf("not over budget: %+v", r)
			}
			// Just before Retry-After the client is still denied; at it, one
			// request fits.
			clock.Advance(r.RetryAfter - 50*time.Millisecond)
			if r2 := l.Allow("c", "/p"); r2.Allowed {
				t.Fatalf("allowed %v before Retry-After %v", 50*time.Millisecond, r.RetryAfter)
			}
			clock.Advance(50 * time.Millisecond)
			if r2 := l.Allow("c", "/p"); !r2.Allowed {
				t.Fatalf("still denied at Retry-After %v: %+v", r.RetryAfter, r2)
			}
		})
	}
}

func TestMinuteBoundaryDoesNotRefillTheBudget(t *testing.T) {
	clock := newClock(minuteStart.Add(59 * time.Second))
	l := newLimiter(t, clock, 10, "/p")
	spend(t, l, "c", "/p", 10)
	clock.Advance(2 * time.Second) // 1 s into the next clock minute
	if r := l.Allow("c", "/p"); r.Allowed {
		t.Fatalf("a fixed window would refill at :00; the sliding window must not: %+v", r)
	}
	// Half a minute later half the old requests have slid out.
	clock.Advance(29 * time.Second) // 30 s into the window: prev weight 0.5
	spend(t, l, "c", "/p", 5)
	if r := l.Allow("c", "/p"); r.Allowed {
		t.Fatalf("allowed more than the sliding budget: %+v", r)
	}
	// Two minutes of silence forget everything.
	clock.Advance(2 * Window)
	spend(t, l, "c", "/p", 10)
}

func TestDeniedRequestsAreNotCounted(t *testing.T) {
	clock := newClock(minuteStart)
	l := newLimiter(t, clock, 2, "/p")
	spend(t, l, "c", "/p", 2)
	for range 50 {
		if l.Allow("c", "/p").Allowed {
			t.Fatal("over budget but allowed")
		}
	}
	clock.Advance(2 * Window) // both windows empty: all denied retries forgotten
	spend(t, l, "c", "/p", 2)
}

func TestBudgetsArePerClientAndPerPrefix(t *testing.T) {
	clock := newClock(minuteStart)
	l, err := New([]Rule{
		{Paths: []string{"/auth/signin/basic", "/auth/signup/basic"}, PerMinute: 2},
		{Paths: []string{"/auth/"}, PerMinute: 5},
	}, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	spend(t, l, "a", "/auth/signin/basic", 2)
	if l.Allow("a", "/auth/signin/basic").Allowed {
		t.Fatal("a over the sign-in budget but allowed")
	}
	// Another prefix of the same rule has its own budget, so has another client.
	spend(t, l, "a", "/auth/signup/basic", 2)
	spend(t, l, "b", "/auth/signin/basic", 2)
	// The first matching rule applies: the sign-in rule, not /auth/.
	if r := l.Allow("a", "/auth/signin/basic/x"); r.Allowed || r.Limit != 2 {
		t.Fatalf("sign-in sub-path: %+v, want denied by the first rule", r)
	}
	if r := l.Allow("a", "/auth/verify/apikey"); !r.Allowed || r.Limit != 5 {
		t.Fatalf("other /auth/ path: %+v, want the second rule", r)
	}
	if !l.Covers("/auth/signup/basic") || !l.Covers("/auth/x") || l.Covers("/blog/list/latest") || l.Covers("/") {
		t.Error("Covers disagrees with the rules")
	}
	// An unlimited path is always allowed and carries no headers.
	for range 10 {
		r := l.Allow("a", "/blog/list/latest")
		if !r.Allowed || r.Limited || r.Header() != nil {
			t.Fatalf("unlimited path: %+v", r)
		}
	}
}

func TestPathVariantsShareTheBudget(t *testing.T) {
	clock := newClock(minuteStart)
	l := newLimiter(t, clock, 5, "/auth/signin/basic")
	for _, p := range []string{"/auth/signin/basic", "/auth//signin/basic", "/auth/./signin/basic", "/auth/x/../signin/basic/", "/auth/%73ignin/basic"} {
		if r := l.Allow("c", p); !r.Allowed || !r.Limited {
			t.Fatalf("%s: %+v, want counted", p, r)
		}
	}
	if r := l.Allow("c", "//auth/signin/basic"); r.Allowed || !r.Limited {
		t.Fatalf("budget of 5 spent through variants, 6th allowed: %+v", r)
	}
}

// A malformed triplet elsewhere in the path does not stop the others from
// being decoded: an upstream that decodes leniently would see sign-in.
func TestMalformedEscapeDoesNotHideAPrefix(t *testing.T) {
	l := newLimiter(t, newClock(minuteStart), 5, "/auth/signin/basic")
	for _, p := range []string{"/auth/%73ignin/basic%zz", "/auth/signin%2Fbasic", "/%61uth/signin/basic/%"} {
		if !l.Covers(p) {
			t.Errorf("%s is not covered", p)
		}
	}
}

func TestNilAndEmptyLimitersLimitNothing(t *testing.T) {
	var nilLimiter *Limiter
	empty, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Limiter{nilLimiter, empty} {
		for range 3 {
			if r := l.Allow("c", "/auth/signin/basic"); !r.Allowed || r.Limited {
				t.Fatalf("%+v", r)
			}
		}
		if l.Len() != 0 || l.Covers("/auth/signin/basic") {
			t.Fatalf("Len = %d, Covers %v", l.Len(), l.Covers("/auth/signin/basic"))
		}
	}
}

func TestIdleClientsAreEvicted(t *testing.T) {
	clock := newClock(minuteStart)
	l := newLimiter(t, clock, 10, "/p")
	for i := range 100 {
		spend(t, l, fmt.Sprintf("10.0.0.%d", i), "/p", 1)
	}
	if l.Len() != 100 {
		t.Fatalf("Len = %d, want 100", l.Len())
	}
	// Two windows later those counts no longer matter; the next new client
	// triggers the once-per-window sweep.
	clock.Advance(2 * Window)
	spend(t, l, "newcomer", "/p", 1)
	if l.Len() != 1 {
		t.Fatalf("Len = %d after the idle ones expired, want 1", l.Len())
	}
}

func TestTrackedClientsAreCapped(t *testing.T) {
	clock := newClock(minuteStart)
	l, err := New([]Rule{{Paths: []string{"/p"}, PerMinute: 1}}, Options{Now: clock.Now, MaxClients: 50})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		spend(t, l, fmt.Sprintf("c%d", i), "/p", 1)
		if n := l.Len(); n > 50 {
			t.Fatalf("after %d clients Len = %d, over the cap of 50", i+1, n)
		}
	}
	// A client still tracked keeps its count.
	if l.Allow("c999", "/p").Allowed {
		t.Fatal("most recent client lost its count")
	}
}

func TestAllowIsSafeForConcurrentUse(t *testing.T) {
	clock := newClock(minuteStart)
	const limit = 100
	l := newLimiter(t, clock, limit, "/p")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				if l.Allow("shared", "/p").Allowed {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("own%d", g), "/p")
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != limit {
		t.Fatalf("%d of 400 concurrent requests allowed, want exactly %d", got, limit)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 70 * time.Second: 70} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
	if h := (Result{Limited: true, Limit: 5, RetryAfter: 1500 * time.Millisecond}).Header(); h.Get(HeaderRetryAfter) != "2" || h.Get("x-ratelimit-remaining-minute") != "0" {
		t.Errorf("denial header = %v", h)
	}
}

func TestMatchOfANormalPathDoesNotAllocate(t *testing.T) {
	l, err := New([]Rule{{Paths: []string{"/auth/signin/basic"}, PerMinute: 10}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/blog/id/6b0cd7684892e30caf421ebf", "/blog/list/latest/", "/auth/verify/apikey"} {
		if n := testing.AllocsPerRun(100, func() { l.Allow("127.0.0.1", p) }); n != 0 {
			t.Errorf("Allow(%q) allocates %v times per call, want 0", p, n)
		}
	}
}
