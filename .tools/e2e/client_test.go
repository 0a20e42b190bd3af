package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"blogplatform/tools/internal/platform"
)

// apiKey is K of the reference checklist: the key auth_service seeds.
const apiKey = platform.DevAPIKey

var (
	oidPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)
	hex64      = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// client talks to the gateway only, like an API user.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T) *client {
	return &client{t: t, base: stack.GatewayURL(), http: &http.Client{Timeout: 30 * time.Second}}
}

// reply is one response, read in full.
type reply struct {
	method, path string
	status       int
	header       http.Header
	raw          []byte
	body         map[string]any // nil when the body is not a JSON object
}

func (r reply) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.method, r.path, r.status, truncate(string(r.raw), 600))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// request options
type option func(*http.Request)

// noKey sends no x-api-key at all.
func noKey() option { return func(r *http.Request) { r.Header.Del("x-api-key") } }

func withKey(k string) option { return func(r *http.Request) { r.Header.Set("x-api-key", k) } }

func bearer(token string) option {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func authorization(v string) option {
	return func(r *http.Request) { r.Header.Set("Authorization", v) }
}

// do sends a request with K and, for a non-nil body, a JSON body. A string
// body is sent as is (malformed JSON tests); anything else is marshalled.
func (c *client) do(method, path string, body any, opts ...option) reply {
	c.t.Helper()
	r, err := c.try(method, path, body, opts...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	validateAgainstSpec(c.t, r)
	return r
}

// try is do without failing the test on a transport error (load tests count
// those).
func (c *client) try(method, path string, body any, opts ...option) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("x-api-key", apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{method: method, path: path, status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r, nil
}

// checkEnvelope checks what every response must be: JSON content type, an
// object with string code, numeric status equal to the HTTP status and
// string message, code 10000 for 2xx and 10001 otherwise, and an
// X-Request-ID header.
func checkEnvelope(t *testing.T, r reply) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%v: Content-Type %q", r, ct)
	}
	if r.header.Get("X-Request-ID") == "" {
		t.Errorf("%v: no X-Request-ID", r)
	}
	if r.body == nil {
		t.Errorf("%v: body is not a JSON object", r)
		return
	}
	code, okCode := r.body["code"].(string)
	status, okStatus := r.body["status"].(float64)
	_, okMessage := r.body["message"].(string)
	if !okCode || !okStatus || !okMessage {
		t.Errorf("%v: envelope needs string code, numeric status and string message", r)
		return
	}
	if int(status) != r.status {
		t.Errorf("%v: envelope status %v differs from the HTTP status", r, status)
	}
	want := "10001"
	if r.status >= 200 && r.status < 300 {
		want = "10000"
	}
	if code != want {
		t.Errorf("%v: code %q, want %q", r, code, want)
	}
}

// expect checks the status, the exact message and the envelope.
func expect(t *testing.T, r reply, status int, message string) {
	t.Helper()
	checkEnvelope(t, r)
	if r.status != status {
		t.Errorf("%v: status %d, want %d", r, r.status, status)
	}
	if got, _ := r.body["message"].(string); got != message {
		t.Errorf("%v: message %q, want %q", r, got, message)
	}
}

// expectStatus checks the status and the envelope, for answers whose exact
// wording the contract leaves open.
func expectStatus(t *testing.T, r reply, status int) {
	t.Helper()
	checkEnvelope(t, r)
	if r.status != status {
		t.Errorf("%v: status %d, want %d", r, r.status, status)
	}
}

// mustOK checks a 200 with the message and returns the data.
func mustOK(t *testing.T, r reply, message string) any {
	t.Helper()
	expect(t, r, http.StatusOK, message)
	if r.status != http.StatusOK {
		t.FailNow()
	}
	return r.body["data"]
}

// get navigates decoded JSON: get(v, "user", "roles", 0, "code").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// random returns n hex characters for fresh emails, slugs and titles.
func random(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// listContains pages through a list endpoint (limit 1000; the author and
// editor lists have no order) and reports whether an item with id is there.
func listContains(t *testing.T, c *client, path, id string, opts ...option) (bool, map[string]any) {
	t.Helper()
	for page := 1; page <= 50; page++ {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := c.do(http.MethodGet, path+sep+"page="+strconv.Itoa(page)+"&limit=1000", nil, opts...)
		data, ok := mustOK(t, r, "success").([]any)
		if !ok {
			t.Fatalf("%v: data is not an array", r)
		}
		for _, item := range data {
			if str(item, "_id") == id {
				return true, item.(map[string]any)
			}
		}
		if len(data) < 1000 {
			return false, nil
		}
	}
	return false, nil
}

// decodeJWT returns a token's header and claims without verifying it.
func decodeJWT(t *testing.T, token string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments", token, len(parts))
	}
	decode := func(s string) map[string]any {
		data, err := base64URLDecode(s)
		if err != nil {
			t.Fatalf("token segment %q: %v", s, err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("token segment %q: %v", data, err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}

func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
