package token

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newTestSigner(t *testing.T, cacheSize int) (*Signer, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(k, &k.PublicKey, Options{Issuer: "iss", Audience: "aud", AccessValidity: time.Hour, RefreshValidity: 2 * time.Hour, CacheSize: cacheSize}), k
}

const (
	subject = "66a0c6b2f1e4d3c2b1a09f8e"
	pKey    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sKey    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestCachedVerificationRechecksTimes: a remembered signature check never
// extends a token's life.
func TestCachedVerificationRechecksTimes(t *testing.T) {
	s, _ := newTestSigner(t, 100)
	now := time.Now()
	pair, err := s.Sign(subject, pKey, sKey, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.VerifyAccess(pair.AccessToken, now)
	if err != nil || c.Subject != subject || c.ID != pKey {
		t.Fatalf("first verification: %+v %v", c, err)
	}
	if _, ok := s.verified.get(pair.AccessToken); !ok {
		t.Fatal("verified token not remembered")
	}
	tests := []struct {
		at   time.Time
		want error
	}{
		{now.Add(30 * time.Minute), nil},
		{now.Add(time.Hour + Leeway), ErrExpired}, // exp+leeway is exclusive
		{now.Add(-Leeway - time.Second), ErrNotValidYet},
	}
	for _, tt := range tests {
		if _, err := s.VerifyAccess(pair.AccessToken, tt.at); !errors.Is(err, tt.want) && err != tt.want {
			t.Errorf("at %v: %v, want %v", tt.at.Sub(now), err, tt.want)
		}
	}
}

// TestClockSkewWithinLeewayIsTolerated: a token whose exp or nbf is off by
// less than Leeway (a replica with a slightly different clock issued it, or
// checks it) verifies, on the first (uncached) check and on the refresh path;
// beyond the leeway it is refused.
func TestClockSkewWithinLeewayIsTolerated(t *testing.T) {
	s, k := newTestSigner(t, 100)
	now := time.Now()
	sign := func(nbf, exp time.Time) string {
		raw, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
			Issuer: "iss", Subject: subject, Audience: jwt.ClaimStrings{"aud"}, ID: pKey,
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(nbf), IssuedAt: jwt.NewNumericDate(nbf),
		}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name     string
		nbf, exp time.Time
		want     error
	}{
		{"expired 10s ago is accepted", now.Add(-time.Hour), now.Add(-10 * time.Second), nil},
		{"expired 40s ago is refused", now.Add(-time.Hour), now.Add(-40 * time.Second), ErrExpired},
		{"nbf 20s ahead is accepted", now.Add(20 * time.Second), now.Add(time.Hour), nil},
		{"nbf 40s ahead is refused", now.Add(40 * time.Second), now.Add(time.Hour), ErrNotValidYet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := sign(tt.nbf, tt.exp)
			if _, err := s.VerifyAccess(raw, now); !errors.Is(err, tt.want) && err != tt.want {
				t.Errorf("access: %v, want %v", err, tt.want)
			}
			if _, err := s.VerifyRefresh(raw, now); !errors.Is(err, tt.want) && err != tt.want {
				t.Errorf("refresh: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFailuresAreNotRemembered(t *testing.T) {
	s, k := newTestSigner(t, 100)
	expired, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: "iss", Subject: subject, Audience: jwt.ClaimStrings{"aud"}, ID: pKey,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute)), NotBefore: jwt.NewNumericDate(time.Now().Add(-time.Hour)),
	}).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"abc", "a.b.c", expired} {
		if _, err := s.VerifyAccess(raw, time.Now()); err == nil {
			t.Fatalf("%q verified", raw)
		}
		if _, ok := s.verified.get(raw); ok {
			t.Fatalf("failed token %q remembered", raw)
		}
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newVerifiedCache(32)
	for i := range 1000 {
		c.put(string(rune('a'+i%26))+time.Duration(i).String(), Claims{})
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n > 32 {
		t.Fatalf("%d entries, limit 32", n)
	}
}

func TestRefreshAndSignatureOnly(t *testing.T) {
	s, _ := newTestSigner(t, 100)
	past := time.Now().Add(-3 * time.Hour)
	pair, err := s.Sign(subject, pKey, sKey, past)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAccess(pair.AccessToken, time.Now()); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired access: %v", err)
	}
	if c, err := s.VerifySignature(pair.AccessToken); err != nil || c.ID != pKey {
		t.Fatalf("signature-only: %+v %v", c, err)
	}
	if _, err := s.VerifyRefresh(pair.RefreshToken, time.Now()); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired refresh: %v", err)
	}
	other, _ := newTestSigner(t, 100)
	if _, err := other.VerifySignature(pair.AccessToken); !errors.Is(err, ErrSignature) {
		t.Fatalf("foreign key: %v", err)
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub1, _ := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	pub2, _ := x509.MarshalPKIXPublicKey(&k2.PublicKey)
	priv1 := write("private.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k1)})
	if _, _, err := LoadKeys(priv1, write("public.pem", &pem.Block{Type: "PUBLIC KEY", Bytes: pub1})); err != nil {
		t.Fatalf("matching pair: %v", err)
	}
	if _, _, err := LoadKeys(priv1, write("other.pem", &pem.Block{Type: "PUBLIC KEY", Bytes: pub2})); err == nil {
		t.Fatal("mismatched pair accepted")
	}
	if _, _, err := LoadKeys(filepath.Join(dir, "missing.pem"), priv1); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, _, err := LoadKeys(write("garbage.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("x")}), priv1); err == nil {
		t.Fatal("garbage key accepted")
	}
}
