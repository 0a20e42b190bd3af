package tests

import (
	"slices"
	"testing"
	"time"
)

// Sign-in must not reveal which emails are registered through its timing:
// an unknown email costs a bcrypt comparison against a dummy hash, like a
// wrong password does. With bcrypt cost 10 one comparison is tens of
// milliseconds, so skipping it would make the unknown-email answer more than
// ten times faster; the medians must stay within a factor of two.
func TestSignInTimingDoesNotRevealRegisteredEmails(t *testing.T) {
	s := newStack(t)
	r := s.replica(map[string]string{"BCRYPT_COST": "10"})
	known := r.signUp()

	// The two kinds of sign-in alternate, so both see the same load on a
	// shared machine; the medians are compared.
	signIn := func(email, password string, status int) time.Duration {
		body := `{"email":"` + email + `","password":"` + password + `"}`
		start := time.Now()
		res := r.do("POST", "/signin/basic", body)
		took := time.Since(start)
		if res.status != status {
			t.Fatalf("sign-in %s: %d %s", email, res.status, res.message())
		}
		return took
	}
	var unknowns, wrongs []time.Duration
	stranger := uniqueEmail()
	for range 7 {
		unknowns = append(unknowns, signIn(stranger, "whatever1", 404))
		wrongs = append(wrongs, signIn(known.email, "wrong-password", 401))
	}
	median := func(times []time.Duration) time.Duration {
		slices.Sort(times)
		return times[len(times)/2]
	}
	unknown, wrong := median(unknowns), median(wrongs)
	ratio := float64(unknown) / float64(wrong)
	t.Logf("median sign-in: unknown email %s, wrong password %s (ratio %.2f)", unknown, wrong, ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Fatalf("unknown email %s vs wrong password %s: timing reveals whether an email is registered", unknown, wrong)
	}
}
