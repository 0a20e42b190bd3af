package wait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	tests := []struct {
		name      string
		trueAfter int32 // calls that return false first; -1: never true
		timeout   time.Duration
		want      bool
		minCalls  int32
	}{
		{"true at once is one call", 0, time.Second, true, 1},
		{"true after a few checks", 5, 5 * time.Second, true, 6},
		{"never true gives up at the deadline", -1, 30 * time.Millisecond, false, 2},
		{"a zero timeout still checks once", -1, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			start := time.Now()
			got := For(tt.timeout, func() bool {
				n := calls.Add(1)
				return tt.trueAfter >= 0 && n > tt.trueAfter
			})
			if got != tt.want {
				t.Errorf("For = %v, want %v", got, tt.want)
			}
			if n := calls.Load(); n < tt.minCalls || (tt.want && n != tt.trueAfter+1) {
				t.Errorf("%d calls", n)
			}
			if !tt.want && time.Since(start) < tt.timeout {
				t.Errorf("gave up after %s, before the %s deadline", time.Since(start), tt.timeout)
			}
		})
	}
}

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestEventually(t *testing.T) {
	ok := &fakeT{}
	Eventually(ok, time.Second, "ready", func() bool { return true })
	if ok.failed != "" {
		t.Errorf("a condition that holds failed the test: %s", ok.failed)
	}
	never := &fakeT{}
	Eventually(never, 10*time.Millisecond, "ready", func() bool { return false })
	if never.failed == "" {
		t.Error("a condition that never holds did not fail the test")
	}
}
