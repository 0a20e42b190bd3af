package e2e

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/tools/internal/platform"
)

// forge builds a JWT with the given header alg and claims, signed by sign
// (nil: no signature, as alg "none" has).
func forge(t *testing.T, alg string, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig := ""
	if sign != nil {
		sig = enc.EncodeToString(sign([]byte(input)))
	}
	return input + "." + sig
}

func rs256(key *rsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		return sig
	}
}

func readPEM(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(keysDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// JWT attacks through the gateway, on auth's own route and on a blog route
// that asks auth over NATS: each is a 401, never a 5xx, never accepted.
func TestJWTAttacksThroughTheGateway(t *testing.T) {
	dumpLogsOnFailure(t)
	c := newClient(t)
	admin := signInAdmin(t, c)
	var adminClaims map[string]any
	parts := strings.Split(admin, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(raw, &adminClaims); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	claims := func(changes map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range adminClaims {
			m[k] = v
		}
		for k, v := range changes {
			m[k] = v
		}
		return m
	}
	block, _ := pem.Decode(readPEM(t, "private.pem"))
	realKey, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	publicPEM := readPEM(t, "public.pem")
	attacks := map[string]string{
		"alg none":              forge(t, "none", claims(nil), nil),
		"HS256 with public key": forge(t, "HS256", claims(nil), func(in []byte) []byte { m := hmac.New(sha256.New, publicPEM); m.Write(in); return m.Sum(nil) }),
		"another RSA key":       forge(t, "RS256", claims(nil), rs256(otherKey)),
		"expired":               forge(t, "RS256", claims(map[string]any{"exp": now - 60, "nbf": now - 120, "iat": now - 120}), rs256(realKey)),
		"not yet valid":         forge(t, "RS256", claims(map[string]any{"nbf": now + 3600}), rs256(realKey)),
		"wrong issuer":          forge(t, "RS256", claims(map[string]any{"iss": "evil.example"}), rs256(realKey)),
		"wrong audience":        forge(t, "RS256", claims(map[string]any{"aud": []string{"evil.example"}}), rs256(realKey)),
		"unknown session":       forge(t, "RS256", claims(map[string]any{"jti": strings.Repeat("ab", 32)}), rs256(realKey)),
		"tampered payload":      parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"000000000000000000000001"}`)) + "." + parts[2],
	}
	// The genuine token works, so the 401s below are the attacks' doing.
	expectStatus(t, c.do(http.MethodGet, "/auth/profile/mine", nil, bearer(admin)), 200)
	expectStatus(t, c.do(http.MethodGet, "/blog/author/drafts?page=1&limit=1", nil, bearer(admin)), 200)
	for name, token := range attacks {
		for _, path := range []string{"/auth/profile/mine", "/blog/author/drafts?page=1&limit=1", "/blog/editor/submitted?page=1&limit=1"} {
			r := c.do(http.MethodGet, path, nil, bearer(token))
			if r.status != 401 {
				t.Errorf("%s on %s: %v", name, path, r)
			}
		}
	}
}

// An API key with status false is refused by the gateway everywhere.
func TestDisabledAPIKeyIsRejected(t *testing.T) {
	dumpLogsOnFailure(t)
	client, err := mongo.Connect(options.Client().ApplyURI(stack.Info().StoreURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	key := "disabled-" + strings.ToUpper(randomSuffix())
	_, err = client.Database("auth-dev-db").Collection("api_keys").InsertOne(context.Background(), bson.M{
		"key": key, "version": 1, "permissions": []string{"GENERAL"}, "comments": []string{"disabled"},
		"status": false, "createdAt": time.Now(), "updatedAt": time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	for _, path := range []string{"/auth/verify/apikey", "/blog/list/latest?page=1&limit=1", "/auth/profile/id/000000000000000000000001"} {
		expect(t, c.do(http.MethodGet, path, nil, withKey(key)), 403, "permission denied: invalid x-api-key")
	}
}

// Operator objects in any body field, and operator-looking query keys, are
// a 400 with nothing stored; every response carries nosniff and no server
// version.
func TestNoSQLInjectionAndHeaders(t *testing.T) {
	dumpLogsOnFailure(t)
	c := newClient(t)
	admin := signInAdmin(t, c)
	op := map[string]any{"$ne": nil}
	blogBody := map[string]any{"title": "Injection Probe", "description": "desc text", "draftText": "body",
		"slug": "injection-" + randomSuffix(), "imgUrl": "https://x.io/a.png", "tags": []string{"SAFE"}}
	routes := []struct {
		method, path string
		body         map[string]any
		token        string
	}{
		{http.MethodPost, "/auth/signup/basic", map[string]any{"email": "inj@example.com", "password": "secret1", "name": "Inj", "profilePicUrl": "https://x.io/p.png"}, ""},
		{http.MethodPost, "/auth/signin/basic", map[string]any{"email": platform.DevAdminEmail, "password": platform.DevAdminPassword}, ""},
		{http.MethodPost, "/auth/token/refresh", map[string]any{"refreshToken": "x"}, admin},
		{http.MethodPost, "/blog/author", blogBody, admin},
		{http.MethodPut, "/blog/author", map[string]any{"_id": "000000000000000000000001", "title": "Injection Probe"}, admin},
	}
	for _, rt := range routes {
		for field := range rt.body {
			body := map[string]any{}
			for k, v := range rt.body {
				body[k] = v
			}
			body[field] = op
			opts := []option{}
			if rt.token != "" {
				opts = append(opts, bearer(rt.token))
			}
			r := c.do(rt.method, rt.path, body, opts...)
			if r.status != 400 {
				t.Errorf("%s %s with %s=%v: %v", rt.method, rt.path, field, op, r)
			}
			checkHeaders(t, r)
		}
	}
	for _, path := range []string{"/blog/list/latest?page[$ne]=1&limit=10", "/blog/list/latest?page=1&limit[$gt]=0",
		"/blog/id/%7B%22$ne%22:null%7D", "/blog/list/tag/%7B$ne%7D?page=1&limit=1"} {
		r := c.do(http.MethodGet, path, nil)
		if r.status != 400 {
			t.Errorf("GET %s: %v", path, r)
		}
		checkHeaders(t, r)
	}
	// Nothing was created by the probes.
	r := c.do(http.MethodGet, "/blog/slug/"+blogBody["slug"].(string), nil)
	expect(t, r, 404, "blog not found")
	for _, r := range []reply{c.do(http.MethodGet, "/auth/nope", nil), c.do(http.MethodGet, "/auth/signup/basic", nil)} {
		checkHeaders(t, r)
	}
}

func checkHeaders(t *testing.T, r reply) {
	t.Helper()
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%v: no X-Content-Type-Options: nosniff", r)
	}
	if s := r.header.Get("Server"); s != "" {
		t.Errorf("%v: Server header %q reveals software", r, s)
	}
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.ToLower(base64.RawURLEncoding.EncodeToString(b))
}
