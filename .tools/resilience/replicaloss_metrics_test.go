package resilience

import (
	"slices"
	"testing"
	"time"
)

// series is n buckets of rate, with some overwritten from index at.
func series(n, rate int, at int, over ...int) []int {
	b := slices.Repeat([]int{rate}, n)
	copy(b[at:], over)
	return b
}

func TestLossRecovery(t *testing.T) {
	const fault = time.Second // bucket 10 of 60
	tests := []struct {
		name    string
		buckets []int
		want    time.Duration
		ok      bool
	}{
		{"no dip", series(60, 100, 0), 0, true},
		{"one slow bucket is not an outage", series(60, 100, 30, 40), 0, true},
		{"300 ms at half the rate is not an outage", series(60, 100, 30, 50, 50, 50), 0, true},
		{"a 300 ms stall right after the fault", series(60, 100, 10, 0, 0, 0), 300 * time.Millisecond, true},
		{"a 3 s stall", series(60, 100, 10, slices.Repeat([]int{0}, 30)...), 3 * time.Second, true},
		{"a late 300 ms stall counts", series(60, 100, 40, 0, 0, 0), 3300 * time.Millisecond, true},
		{"settling at 70 % after losing a replica", series(60, 100, 10, slices.Repeat([]int{70}, 50)...), 0, true},
		{"settling below half never recovered", series(60, 100, 10, slices.Repeat([]int{40}, 50)...), 0, false},
		{"still stalled at the end", series(60, 100, 55, 0, 0, 0, 0, 0), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, _, _ := recovery(tt.buckets, fault)
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("recovery = %s, %v; want %s, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLossAnalyse(t *testing.T) {
	var samples []lossSample
	for i := range 200 {
		at := time.Duration(i) * 10 * time.Millisecond
		s := lossSample{start: at, end: at + 5*time.Millisecond, status: 200}
		switch i {
		case 50:
			s.end, s.status, s.failure, s.clear = at+2*time.Second, 502, "502 bad gateway", true
		case 60:
			s.failure = "transport error: EOF"
		}
		samples = append(samples, s)
	}
	st := analyse(samples, 2*time.Second, 500*time.Millisecond, 0)
	if st.requests != 200 || st.failed != 2 || st.badEnvelopes != 1 {
		t.Errorf("requests %d failed %d bad envelopes %d; want 200, 2, 1", st.requests, st.failed, st.badEnvelopes)
	}
	if st.max != 2*time.Second || st.maxAt != 500*time.Millisecond || st.p99 != 5*time.Millisecond {
		t.Errorf("p99 %s, max %s sent at %s; want 5ms, and 2s sent at 500ms", st.p99, st.max, st.maxAt)
	}
	if sum(st.buckets) != 198 || len(st.buckets) != 20 {
		t.Errorf("buckets %v: %d successes in %d buckets, want 198 in 20", st.buckets, sum(st.buckets), len(st.buckets))
	}
}

func sum(bs []int) int {
	n := 0
	for _, b := range bs {
		n += b
	}
	return n
}

// For a frozen replica the recovery is judged over the freeze only, and
// the dip after SIGCONT is reported apart, as the lowest 1 s share of the
// rate before the fault.
func TestLossFreezeAndThaw(t *testing.T) {
	// 6 s of 100 ms buckets: 10 before the fault, a 0.5 s stall, the rest
	// of the freeze at full rate, then a dip to half for 1 s after the thaw
	// at 4 s.
	buckets := make([]int, 60)
	for b := range buckets {
		switch {
		case b >= 10 && b < 15:
			buckets[b] = 0
		case b >= 45 && b < 55:
			buckets[b] = 50
		default:
			buckets[b] = 100
		}
	}
	var samples []lossSample
	for b, n := range buckets {
		for i := range n {
			at := time.Duration(b)*lossBucket + time.Duration(i)*lossBucket/time.Duration(max(n, 1))
			samples = append(samples, lossSample{start: at, end: at, status: 200})
		}
	}
	frozen := analyse(samples, 6*time.Second, time.Second, 4*time.Second)
	if !frozen.recovered || frozen.recovery != 500*time.Millisecond {
		t.Errorf("freeze: back after %s (recovered %v), want 500ms", frozen.recovery, frozen.recovered)
	}
	if frozen.thawLow < 0.49 || frozen.thawLow > 0.51 {
		t.Errorf("after the thaw: lowest share %.2f, want 0.50", frozen.thawLow)
	}
	// Judged over the whole run, the thaw's dip would count against the
	// loss itself.
	whole := analyse(samples, 6*time.Second, time.Second, 0)
	if whole.recovered && whole.recovery <= 2*time.Second {
		t.Errorf("whole run: back after %s, want the dip after 4 s to count", whole.recovery)
	}
	if whole.thawLow != 0 {
		t.Errorf("no thaw, yet thawLow %.2f", whole.thawLow)
	}
}
