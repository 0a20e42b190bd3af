package natsx

import (
	"testing"
	"time"
)

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"auth.>", "auth.authentication", true},
		{"auth.>", "auth.profile.user", true},
		{"auth.>", "auth", false},
		{"auth.>", "blog.auth", false},
		{"auth.*", "auth.authorization", true},
		{"auth.*", "auth.profile.user", false},
		{"auth.*.user", "auth.profile.user", true},
		{"auth.authentication", "auth.authentication", true},
		{"auth.authentication", "auth.authenticationx", false},
		{"auth.authentication", "auth", false},
		{"auth", "auth.authentication", false},
		{">", "anything.at.all", true},
		{"auth.>", "", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}

// TestRetryBudget: extra messages are bounded by ratio × requests of the
// last ten seconds plus the floor, and the allowance comes back as the
// window moves on.
func TestRetryBudget(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := newRetryBudget(0.5, 1) // floor: 1 per second → 10 per window
	b.now = func() time.Time { return now }
	for range 40 {
		b.request()
	}
	if got := b.take(25); got != 25 {
		t.Fatalf("took %d of 25 (allowance 0.5×40+10 = 30)", got)
	}
	if got := b.take(8); got != 5 {
		t.Fatalf("took %d of 8 with 5 left", got)
	}
	if got := b.take(1); got != 0 {
		t.Fatalf("took %d with nothing left", got)
	}
	now = now.Add(5 * time.Second) // same window: still spent
	if got := b.take(1); got != 0 {
		t.Fatalf("took %d five seconds later", got)
	}
	now = now.Add(5 * time.Second) // the requests and extras have left the window
	if got := b.take(20); got != 10 {
		t.Fatalf("took %d in a fresh window, want the floor of 10", got)
	}
}
