// Package wait lets tests wait for a condition instead of sleeping for a
// fixed time. A fixed sleep is either longer than needed (slow tests) or,
// on a loaded machine (-race, two cores shared with other jobs), shorter
// than needed (flaky tests); polling with a generous deadline is neither.
package wait

import (
	"testing"
	"time"
)

// Polling starts fast, so a condition that is almost met costs about a
// millisecond, and backs off to maxInterval, so a slow one (a restart, an
// expiry) is not hammered with requests.
const (
	firstInterval = time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

// For reports whether cond held within timeout. cond is checked at once,
// then at growing intervals, and once more at the deadline.
func For(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(interval, left))
		<-t.C
		interval = min(2*interval, maxInterval)
	}
}

// Eventually fails the test at once when cond does not hold within timeout;
// what names the condition in the failure message.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !For(timeout, cond) {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
