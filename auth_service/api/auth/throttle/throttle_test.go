package throttle

import (
	"strconv"
	"testing"
	"time"
)

// TestWindowCounterCountsAttemptsPerWindow: the in-process fallback allows
// limit attempts per window, gives back successful ones, opens again when
// the window ends and never holds more accounts than its size.
func TestWindowCounterCountsAttemptsPerWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newWindowCounter(3, time.Minute, 50)
	w.now = func() time.Time { return now }
	steps := []struct {
		name    string
		act     func() (bool, time.Duration)
		allowed bool
		wait    time.Duration
	}{
		{"first attempt", func() (bool, time.Duration) { return w.begin("a") }, true, 0},
		{"second attempt", func() (bool, time.Duration) { return w.begin("a") }, true, 0},
		{"a success is given back", func() (bool, time.Duration) { w.undo("a"); return w.begin("a") }, true, 0},
		{"third attempt", func() (bool, time.Duration) { now = now.Add(10 * time.Second); return w.begin("a") }, true, 0},
		{"over the limit", func() (bool, time.Duration) { return w.begin("a") }, false, 50 * time.Second},
		{"another account is separate", func() (bool, time.Duration) { return w.begin("b") }, true, 0},
		{"a new window", func() (bool, time.Duration) { now = now.Add(50 * time.Second); return w.begin("a") }, true, 0},
	}
	for _, st := range steps {
		ok, wait := st.act()
		if ok != st.allowed || wait != st.wait {
			t.Fatalf("%s: allowed %v wait %s, want %v %s", st.name, ok, wait, st.allowed, st.wait)
		}
	}
	for i := range 1000 {
		w.begin(strconv.Itoa(i))
		if len(w.m) > 50 {
			t.Fatalf("%d accounts held, limit 50", len(w.m))
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {15 * time.Minute, "900"}} {
		if got := RetryAfterSeconds(tt.wait); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.wait, got, tt.want)
		}
	}
}
