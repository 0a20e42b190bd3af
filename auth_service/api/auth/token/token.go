// Package token signs and verifies the RS256 JWT pair the reference issues:
// registered claims only (iss, sub, aud as an array, exp, nbf, iat, jti), the
// access token's jti being the keystore's pKey and the refresh token's its
// sKey. Verification pins RS256 and lets the library check issuer, audience
// and times; its errors are reduced to a fixed set of client-safe messages.
package token

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"blogplatform/chassis/mongox"
)

// Verification failures. The texts are the reference's where it had one and
// never carry library or crypto internals.
var (
	ErrSegments    = errors.New("token is malformed: token contains an invalid number of segments")
	ErrMalformed   = errors.New("token is malformed")
	ErrSignature   = errors.New("token signature is invalid")
	ErrExpired     = errors.New("token has invalid claims: token is expired")
	ErrNotValidYet = errors.New("token has invalid claims: token is not valid yet")
	ErrIssuer      = errors.New("token has invalid claims: token has invalid issuer")
	ErrAudience    = errors.New("token has invalid claims: token has invalid audience")
	// ErrClaims: a required claim is missing or malformed (the reference's
	// ValidateClaims); callers pick their own message for it.
	ErrClaims = errors.New("token has invalid claims")
)

// Leeway is how far exp and nbf may be off when they are checked: replicas
// whose clocks differ by a few seconds then agree on whether a token is
// valid (one issues a token, another sees its nbf "in the future"). Small
// against the token lifetimes, so it extends no token meaningfully.
const Leeway = 30 * time.Second

// Claims are the verified parts of a token that requests need.
type Claims struct {
	Subject   string // user id, 24 hex characters
	ID        string // jti: keystore pKey (access) or sKey (refresh)
	ExpiresAt time.Time
	NotBefore time.Time
}

// Pair is what sign-up, sign-in and refresh hand out.
type Pair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

// Options configure a Signer.
type Options struct {
	Issuer          string
	Audience        string
	AccessValidity  time.Duration
	RefreshValidity time.Duration
	// CacheSize bounds the cache of verified access tokens (default 10000).
	CacheSize int
}

// Signer issues and verifies tokens with one RSA key pair.
type Signer struct {
	private *rsa.PrivateKey
	opts    Options
	// strict checks everything: RS256, issuer, audience, exp (required), nbf.
	strict *jwt.Parser
	// signatureOnly checks RS256 and the signature but no claims: refresh
	// accepts an expired access token, like the reference.
	signatureOnly *jwt.Parser
	keyFunc       jwt.Keyfunc
	verified      *verifiedCache
}

func NewSigner(private *rsa.PrivateKey, public *rsa.PublicKey, o Options) *Signer {
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	methods := jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()})
	return &Signer{
		private: private,
		opts:    o,
		strict: jwt.NewParser(methods, jwt.WithIssuer(o.Issuer), jwt.WithAudience(o.Audience),
			jwt.WithExpirationRequired(), jwt.WithLeeway(Leeway)),
		signatureOnly: jwt.NewParser(methods, jwt.WithoutClaimsValidation()),
		// The key never depends on the token: alg is pinned above, so an
		// HS256 token "signed" with the public key cannot verify.
		keyFunc:  func(*jwt.Token) (any, error) { return public, nil },
		verified: newVerifiedCache(o.CacheSize),
	}
}

// AccessValidity is how long an access token of this signer lives.
func (s *Signer) AccessValidity() time.Duration { return s.opts.AccessValidity }

// Sign issues the access and refresh token of one keystore.
func (s *Signer) Sign(userID, pKey, sKey string, now time.Time) (Pair, error) {
	access, err := s.sign(userID, pKey, now, s.opts.AccessValidity)
	if err != nil {
		return Pair{}, err
	}
	refresh, err := s.sign(userID, sKey, now, s.opts.RefreshValidity)
	if err != nil {
		return Pair{}, err
	}
	return Pair{AccessToken: access, RefreshToken: refresh}, nil
}

func (s *Signer) sign(subject, id string, now time.Time, validity time.Duration) (string, error) {
	now = now.Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		Issuer:    s.opts.Issuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{s.opts.Audience},
		ExpiresAt: jwt.NewNumericDate(now.Add(validity)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ID:        id,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(s.private)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// VerifyAccess fully verifies a token presented as an access token. The
// signature check of a token seen before is answered from memory (it is
// deterministic); the times are checked on every call.
func (s *Signer) VerifyAccess(raw string, now time.Time) (Claims, error) {
	if c, ok := s.verified.get(raw); ok {
		return c, checkTimes(c, now)
	}
	c, err := s.verify(s.strict, raw)
	if err != nil {
		return Claims{}, err
	}
	if err := checkTimes(c, now); err != nil {
		return Claims{}, err
	}
	s.verified.put(raw, c)
	return c, nil
}

// VerifyRefresh fully verifies a refresh token (not cached: each one is used
// once).
func (s *Signer) VerifyRefresh(raw string, now time.Time) (Claims, error) {
	c, err := s.verify(s.strict, raw)
	if err != nil {
		return Claims{}, err
	}
	return c, checkTimes(c, now)
}

// VerifySignature checks that we signed the token and that its claims are
// well formed, ignoring exp and nbf: the access token of a refresh may have
// expired.
func (s *Signer) VerifySignature(raw string) (Claims, error) {
	c, err := s.verify(s.signatureOnly, raw)
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

func (s *Signer) verify(p *jwt.Parser, raw string) (Claims, error) {
	var rc jwt.RegisteredClaims
	if _, err := p.ParseWithClaims(raw, &rc, s.keyFunc); err != nil {
		return Claims{}, classify(err)
	}
	return s.validClaims(&rc)
}

// validClaims is the reference's ValidateClaims: issuer, a hex subject, the
// audience as first element, exp, nbf and jti present. The strict parser has
// checked issuer and audience already; the signature-only one has not.
func (s *Signer) validClaims(rc *jwt.RegisteredClaims) (Claims, error) {
	if rc.Issuer != s.opts.Issuer || len(rc.Audience) == 0 || rc.Audience[0] != s.opts.Audience ||
		!mongox.IsObjectIDHex(rc.Subject) || rc.ID == "" || rc.ExpiresAt == nil || rc.NotBefore == nil {
		return Claims{}, ErrClaims
	}
	return Claims{Subject: strings.ToLower(rc.Subject), ID: rc.ID, ExpiresAt: rc.ExpiresAt.Time, NotBefore: rc.NotBefore.Time}, nil
}

// checkTimes mirrors the library's rules with the same Leeway: valid from
// nbf-Leeway inclusive until exp+Leeway exclusive.
func checkTimes(c Claims, now time.Time) error {
	if !now.Before(c.ExpiresAt.Add(Leeway)) {
		return ErrExpired
	}
	if now.Before(c.NotBefore.Add(-Leeway)) {
		return ErrNotValidYet
	}
	return nil
}

// classify maps a jwt error to one of the package's messages. Order matters:
// a library error can wrap several sentinels.
func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		if strings.Contains(err.Error(), "invalid number of segments") {
			return ErrSegments
		}
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotValidYet
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudience
	}
	return ErrClaims
}

// LoadKeys reads the PEM pair: the private key as PKCS#1 "RSA PRIVATE KEY"
// (PKCS#8 is accepted too) and the public key as PKIX "PUBLIC KEY". It
// checks that the two belong together, so a mismatched deployment fails at
// start instead of issuing tokens nobody can verify.
func LoadKeys(privatePath, publicPath string) (*rsa.PrivateKey, *rsa.PublicKey, error) {
	priv, err := readPEM(privatePath)
	if err != nil {
		return nil, nil, err
	}
	pub, err := readPEM(publicPath)
	if err != nil {
		return nil, nil, err
	}
	privateKey, err := parsePrivate(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("RSA private key %s: %w", privatePath, err)
	}
	parsed, err := x509.ParsePKIXPublicKey(pub.Bytes)
	if err != nil {
		if k, err1 := x509.ParsePKCS1PublicKey(pub.Bytes); err1 == nil {
			parsed = k
		} else {
			return nil, nil, fmt.Errorf("RSA public key %s: %w", publicPath, err)
		}
	}
	publicKey, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("RSA public key %s: not an RSA key", publicPath)
	}
	if !publicKey.Equal(&privateKey.PublicKey) {
		return nil, nil, fmt.Errorf("RSA keys %s and %s do not belong together", privatePath, publicPath)
	}
	return privateKey, publicKey, nil
}

func readPEM(path string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("key %s: no PEM block", path)
	}
	return block, nil
}

func parsePrivate(block *pem.Block) (*rsa.PrivateKey, error) {
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS#1 or PKCS#8 RSA private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key")
	}
	return rk, nil
}
