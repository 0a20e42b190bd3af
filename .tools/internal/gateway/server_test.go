package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewServerBoundsSlowClients(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), nil)
	if srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || srv.IdleTimeout != DefaultIdleTimeout || srv.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Errorf("server %+v, want the gateway's header, idle and size limits", srv)
	}
	// No whole-request ReadTimeout: it would cancel requests whose upstream
	// answers slowly (see NewServer).
	if srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("ReadTimeout %v WriteTimeout %v, want none", srv.ReadTimeout, srv.WriteTimeout)
	}
}

// dialGateway opens a raw connection to the fixture's listener.
func dialGateway(t *testing.T, f *fixture) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A client that sends part of its body and stalls gets a 408 once the body
// deadline passes, and the upstream is never called; a slow upstream
// answer to a request whose body arrived is not cut by that deadline.
func TestSlowBodyIsCutOffAndNeverProxied(t *testing.T) {
	const bodyTimeout = 200 * time.Millisecond
	f := newFixture(t, fixtureOptions{bodyReadTimeout: bodyTimeout})
	conn := dialGateway(t, f)
	start := time.Now()
	fmt.Fprintf(conn, "POST /blog/writer HTTP/1.1\r\nHost: gw\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":", goodKey)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "Request timeout") {
		t.Errorf("stalled body: %d %s, want 408", resp.StatusCode, body)
	}
	if took < bodyTimeout || took > bodyTimeout+time.Second {
		t.Errorf("answered after %v, want about %v", took, bodyTimeout)
	}
	if n := f.backends["blog1"].arrivals.Load() + f.backends["blog2"].arrivals.Load(); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
	// The connection is closed at once, not kept for another slow request
	// nor left waiting for the rest of the body.
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("after the 408 the connection is not closed: %v", err)
	}

	// The deadline only covers the body: an upstream slower than it still
	// answers (the write route's read_timeout is longer).
	for _, name := range []string{"blog1", "blog2"} {
		f.backends[name].answer = func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * bodyTimeout)
			fmt.Fprint(w, `{"code":"10000","status":200,"message":"slow"}`)
		}
	}
	if a := f.do(t, http.MethodPost, "/blog/writer", nil, `{"title":"x"}`); a.status != 200 {
		t.Errorf("slow upstream after a prompt body: %d %s", a.status, a.raw)
	}
}

// A client that never finishes its headers is disconnected after the
// server's ReadHeaderTimeout (a short one here; NewServer's in production).
func TestSlowHeadersAreCutOff(t *testing.T) {
	const headerTimeout = 200 * time.Millisecond
	f := newFixture(t, fixtureOptions{readHeaderTimeout: headerTimeout})
	conn := dialGateway(t, f)
	start := time.Now()
	fmt.Fprint(conn, "GET /blog/x HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(conn) // until the server closes the connection
	if took := time.Since(start); took > headerTimeout+time.Second {
		t.Errorf("connection held for %v with unfinished headers", took)
	}
}

// Like Kong with KONG_HEADERS=X-Kong-Request-Id, the gateway names no
// software or version: neither its own answers nor proxied ones carry
// Server or Via.
func TestNoServerOrViaHeaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/blog/x"}, {http.MethodGet, "/nothing"}, {http.MethodPost, "/auth/signin/basic"},
	} {
		a := f.do(t, c.method, c.path, nil, "{}")
		if a.header.Get("Server") != "" || a.header.Get("Via") != "" {
			t.Errorf("%s %s: Server %q Via %q", c.method, c.path, a.header.Get("Server"), a.header.Get("Via"))
		}
	}
}
