package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"blogplatform/tools/internal/kongconf"
)

// repoFixture is the gateway with the repository's own load-balanced Kong
// file; each replica records the request line it received and auth's
// replicas also answer the key check.
type repoFixture struct {
	url  string
	mu   sync.Mutex
	seen []string // "<replica> <method> <request URI>"
}

func newRepoFixture(t *testing.T) *repoFixture {
	t.Helper()
	f := &repoFixture{}
	addrs := map[string]string{}
	for _, name := range []string{"auth1", "auth2", "blog1", "blog2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/verify/apikey" {
				if r.Header.Get("x-api-key") != goodKey {
					w.WriteHeader(http.StatusForbidden)
					fmt.Fprint(w, `{"code":"10001","status":403,"message":"permission denied: invalid x-api-key"}`)
					return
				}
				fmt.Fprint(w, `{"code":"10000","status":200,"message":"success"}`)
				return
			}
			if r.Header.Get("X-Real-IP") == "" {
				return // the gateway's own readiness probe
			}
			f.mu.Lock()
			f.seen = append(f.seen, name[:4]+" "+r.Method+" "+r.RequestURI)
			f.mu.Unlock()
			fmt.Fprint(w, `{"code":"10000","status":200,"message":"ok"}`)
		}))
		t.Cleanup(srv.Close)
		addrs[name] = srv.Listener.Addr().String()
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "kong", "kong-load-balanced.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kongconf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(Options{Kong: cfg, Resolve: func(host string, port int) ([]Endpoint, error) {
		addr, ok := addrs[host]
		if !ok || port != 8000 {
			return nil, fmt.Errorf("unknown host %s:%d", host, port)
		}
		return []Endpoint{{Name: host, Addr: addr}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	f.url = srv.URL
	return f
}

// send writes the request line as given (no client-side cleaning) and
// returns the status, the remaining sign-in budget header and what reached
// a replica ("" for nothing).
func (f *repoFixture) send(t *testing.T, method, target string) (status int, remaining, reached string) {
	t.Helper()
	f.mu.Lock()
	before := len(f.seen)
	f.mu.Unlock()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: gateway.test\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", method, target, goodKey)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) > before {
		reached = f.seen[len(f.seen)-1]
	}
	return resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining-Minute"), reached
}

// However a client spells sign-in, the gateway routes, limits and forwards
// one path: each variant draws on the same sign-in budget, and the replica
// receives /signin/basic. A spelling that Kong does not route to auth is
// the 404 route, never an unlimited way to sign-in.
func TestEncodedPathsAreRoutedLimitedAndForwardedAsOnePath(t *testing.T) {
	f := newRepoFixture(t)
	budget := 120 // the repo file's per_minute for sign-in
	for _, target := range []string{
		"/auth/signin/basic",
		"/auth/%73ignin/basic",
		"/auth//signin/basic",
		"/auth/./signin/basic",
		"/%61uth/signin/basic",
		"/%61%75%74%68/%73%69%67%6e%69%6e/basic",
		"//auth/signin/basic",
		"/auth/x/../signin/basic",
		"/blog/../auth/signin/basic",
		"/blog/%2e%2e/auth/signin/basic",
		"/auth/signin/basic?x=1",
	} {
		status, remaining, reached := f.send(t, http.MethodPost, target)
		budget--
		wantURI := "/signin/basic"
		if strings.Contains(target, "?") {
			wantURI += "?x=1"
		}
		if status != 200 || remaining != fmt.Sprint(budget) || reached != "auth POST "+wantURI {
			t.Errorf("POST %s: status %d remaining %q reached %q; want 200, remaining %d, auth POST %s", target, status, remaining, reached, budget, wantURI)
		}
	}
	// An encoded slash stays encoded (as in Kong), and the limit, which
	// decodes everything, still counts it: a service that decodes %2F
	// would route it to sign-in.
	status, remaining, reached := f.send(t, http.MethodPost, "/auth/signin%2Fbasic")
	budget--
	if status != 200 || remaining != fmt.Sprint(budget) || reached != "auth POST /signin%2Fbasic" {
		t.Errorf("POST /auth/signin%%2Fbasic: status %d remaining %q reached %q", status, remaining, reached)
	}
	// Kong would match a bare /auth prefix here and drop the "./" after
	// it; the repo's prefixes end in "/", so these are the 404 route.
	for _, target := range []string{"/auth./signin/basic", "/auth../signin/basic", "/auth"} {
		if status, _, reached := f.send(t, http.MethodPost, target); status != 404 || reached != "" {
			t.Errorf("POST %s: status %d reached %q, want the 404 route", target, status, reached)
		}
	}
	// A malformed escape is refused before routing.
	if status, _, reached := f.send(t, http.MethodPost, "/auth/%73ignin/basic%zz"); status != 400 || reached != "" {
		t.Errorf("malformed escape: status %d reached %q, want 400", status, reached)
	}
	// Characters that must not travel raw are escaped again upstream.
	if _, _, reached := f.send(t, http.MethodGet, "/blog/slug/a%20b%C3%A9%7e"); reached != "blog GET /slug/a%20b%C3%A9~" {
		t.Errorf("escaped again: reached %q", reached)
	}
}
