package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// claimsOf decodes a token we issued (no verification) into editable claims.
func claimsOf(t testing.TB, tok string) jwt.RegisteredClaims {
	t.Helper()
	var c jwt.RegisteredClaims
	decodeSegment(t, strings.Split(tok, ".")[1], &c)
	return c
}

func signWith(t testing.TB, method jwt.SigningMethod, key any, c jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWTRejections: every forged, foreign or out-of-time token is a 401 with
// a clean message, through HTTP and through NATS alike.
func TestJWTRejections(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	u := r.signUp()
	base := claimsOf(t, u.access) // real subject and jti: only the tampered part can fail
	own := s.keys.private
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := base
		edit(&c)
		return c
	}
	now := time.Now()
	signedOut := r.signUp()
	expect(t, r.do("DELETE", "/signout", "", "Authorization", signedOut.bearer()), 200, "signout success")

	tests := []struct {
		name, token, message string
	}{
		{"expired", signWith(t, jwt.SigningMethodRS256, own, with(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
		})), "token has invalid claims: token is expired"},
		{"not yet valid", signWith(t, jwt.SigningMethodRS256, own, with(func(c *jwt.RegisteredClaims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
		})), "token has invalid claims: token is not valid yet"},
		{"wrong issuer", signWith(t, jwt.SigningMethodRS256, own, with(func(c *jwt.RegisteredClaims) { c.Issuer = "evil.example" })),
			"token has invalid claims: token has invalid issuer"},
		{"wrong audience", signWith(t, jwt.SigningMethodRS256, own, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })),
			"token has invalid claims: token has invalid audience"},
		{"no expiry", signWith(t, jwt.SigningMethodRS256, own, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
			"permission denied: invalid claims"},
		{"subject not an id", signWith(t, jwt.SigningMethodRS256, own, with(func(c *jwt.RegisteredClaims) { c.Subject = "admin" })),
			"permission denied: invalid claims"},
		{"alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base), "token signature is invalid"},
		{"HS256 with the public key as secret", signWith(t, jwt.SigningMethodHS256, s.keys.publicPEM, base), "token signature is invalid"},
		{"RS512 with our key (alg pinned)", signWith(t, jwt.SigningMethodRS512, own, base), "token signature is invalid"},
		{"another RSA key", signWith(t, jwt.SigningMethodRS256, other, base), "token signature is invalid"},
		{"tampered payload", strings.Split(u.access, ".")[0] + "." + strings.Split(signWith(t, jwt.SigningMethodRS256, other, with(func(c *jwt.RegisteredClaims) { c.Subject = "000000000000000000000001" })), ".")[1] + "." + strings.Split(u.access, ".")[2],
			"token signature is invalid"},
		{"refresh token as access token", u.refresh, "permission denied: invalid access token"},
		{"signed-out token", signedOut.access, "permission denied: invalid access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, r.do("GET", "/profile/mine", "", "Authorization", "Bearer "+tt.token), 401, tt.message)
			data, errText := s.natsReply("auth.authentication", `{"data":{"value":`+quoteJSON("Bearer "+tt.token)+`}}`)
			if errText != "401:"+tt.message || data != nil {
				t.Fatalf("nats: data %v error %q, want 401:%s", data, errText, tt.message)
			}
		})
	}
	// The genuine token still works after all that.
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 200, "success")
}

// TestRefreshTokenChecks: the access token of a refresh may have expired but
// must carry our signature; the refresh token is checked fully.
func TestRefreshTokenChecks(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	own := s.keys.private
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	body := func(tok string) string { return `{"refreshToken":` + quoteJSON(tok) + `}` }
	expired := func(tok string) string {
		c := claimsOf(t, tok)
		// Beyond the clock leeway (30s) that verification grants.
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		return signWith(t, jwt.SigningMethodRS256, own, c)
	}

	u := r.signUp()
	t.Run("expired access token refreshes", func(t *testing.T) {
		res := r.do("POST", "/token/refresh", body(u.refresh), "Authorization", "Bearer "+expired(u.access))
		expect(t, res, 200, "success")
	})
	v := r.signUp()
	tests := []struct {
		name, access, refresh, message string
	}{
		{"access from another key", signWith(t, jwt.SigningMethodRS256, other, claimsOf(t, v.access)), v.refresh, "token signature is invalid"},
		{"access with alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsOf(t, v.access)), v.refresh, "token signature is invalid"},
		{"access with foreign issuer", func() string {
			c := claimsOf(t, v.access)
			c.Issuer = "evil"
			return signWith(t, jwt.SigningMethodRS256, own, c)
		}(), v.refresh, "permission denied: invalid access claims"},
		{"refresh expired", v.access, expired(v.refresh), "token has invalid claims: token is expired"},
		{"refresh from another key", v.access, signWith(t, jwt.SigningMethodRS256, other, claimsOf(t, v.refresh)), "token signature is invalid"},
		{"refresh with foreign audience", v.access, func() string {
			c := claimsOf(t, v.refresh)
			c.Audience = jwt.ClaimStrings{"x"}
			return signWith(t, jwt.SigningMethodRS256, own, c)
		}(), "token has invalid claims: token has invalid audience"},
		{"refresh without jti", v.access, func() string {
			c := claimsOf(t, v.refresh)
			c.ID = ""
			return signWith(t, jwt.SigningMethodRS256, own, c)
		}(), "permission denied: invalid refresh claims"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, r.do("POST", "/token/refresh", body(tt.refresh), "Authorization", "Bearer "+tt.access), 401, tt.message)
		})
	}
	// None of those consumed v's pair.
	expect(t, r.do("POST", "/token/refresh", body(v.refresh), "Authorization", v.bearer()), 200, "success")
}

// TestClockSkewWithinLeewayIsTolerated: a token whose exp or nbf is off by
// less than 30 s (replicas with slightly different clocks) is accepted over
// HTTP and NATS alike; beyond that it is refused.
func TestClockSkewWithinLeewayIsTolerated(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	u := r.signUp()
	now := time.Now()
	skewed := func(nbf, exp time.Duration) string {
		c := claimsOf(t, u.access)
		c.NotBefore = jwt.NewNumericDate(now.Add(nbf))
		c.ExpiresAt = jwt.NewNumericDate(now.Add(exp))
		return signWith(t, jwt.SigningMethodRS256, s.keys.private, c)
	}
	tests := []struct {
		name    string
		token   string
		status  int
		message string
	}{
		{"issued by a clock 20s ahead", skewed(20*time.Second, time.Hour), 200, "success"},
		{"issued by a clock 60s ahead", skewed(time.Minute, time.Hour), 401, "token has invalid claims: token is not valid yet"},
		{"expired 10s ago by this clock", skewed(-time.Hour, -10*time.Second), 200, "success"},
		{"expired 60s ago by this clock", skewed(-time.Hour, -time.Minute), 401, "token has invalid claims: token is expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, r.do("GET", "/profile/mine", "", "Authorization", "Bearer "+tt.token), tt.status, tt.message)
			_, errText := s.natsReply("auth.authentication", `{"data":{"value":"Bearer `+tt.token+`"}}`)
			if want := map[bool]string{true: "", false: "401:" + tt.message}[tt.status == 200]; errText != want {
				t.Fatalf("nats: %q, want %q", errText, want)
			}
		})
	}
}
