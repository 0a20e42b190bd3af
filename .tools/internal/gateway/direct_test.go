package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// directSetup is a gateway routing / to one upstream whose connections are
// counted.
func directSetup(t *testing.T, handler http.HandlerFunc, tune func(*http.Server)) (url string, conns *atomic.Int64, gw *Gateway) {
	t.Helper()
	conns = new(atomic.Int64)
	up := httptest.NewUnstartedServer(handler)
	up.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	if tune != nil {
		tune(up.Config)
	}
	up.Start()
	t.Cleanup(up.Close)
	gw = newTestGateway(t, `
services:
  - {name: s, url: "http://up", read_timeout: 2000, retries: 1, routes: [{name: r, paths: [/]}]}
upstreams:
  - {name: up, targets: [{target: "t1:8000"}]}
`, map[string]string{"t1": up.Listener.Addr().String()}, nil)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return srv.URL, conns, gw
}

func TestDirectPathReusesConnectionsForEveryKindOfAnswer(t *testing.T) {
	url, conns, _ := directSetup(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush() // no Content-Length: chunked
			w.Write([]byte("part two"))
		default:
			fmt.Fprint(w, "plain")
		}
	}, nil)
	tests := []struct{ method, path, want string }{
		{http.MethodGet, "/plain", "plain"},
		{http.MethodHead, "/plain", ""},
		{http.MethodGet, "/empty", ""},
		{http.MethodGet, "/chunked", "part one, part two"},
		{http.MethodDelete, "/plain", "plain"},
	}
	for round := range 3 {
		for _, tc := range tests {
			req, _ := http.NewRequest(tc.method, url+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != tc.want {
				t.Fatalf("round %d %s %s: body %q (%v), want %q", round, tc.method, tc.path, body, err, tc.want)
			}
		}
	}
	// One client at a time: every answer handed its connection back.
	if got := conns.Load(); got != 1 {
		t.Errorf("sequential requests opened %d upstream connections, want 1", got)
	}
}

func TestDirectPathResendsOnAConnectionTheTargetClosedWhileIdle(t *testing.T) {
	url, conns, gw := directSetup(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	for i := range 3 {
		resp, err := http.Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200 although the kept connection was closed", i, resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond) // the target closes the idle connection
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("upstream connections = %d, want 3 (a new one after each idle close)", got)
	}
	// A closed idle connection is no failure of the target.
	if s := gw.Stats()[0]; s.Failures != 0 || s.Served != 3 {
		t.Errorf("target stats %+v, want 3 served and no failure", s)
	}
}

func TestDirectPathConnectTimeoutIsRetriedOnAnotherTarget(t *testing.T) {
	healthy := newBackend(t, "t2")
	gw := newTestGateway(t, `
services:
  - {name: s, url: "http://up", connect_timeout: 100, read_timeout: 2000, retries: 1, routes: [{name: r, paths: [/]}]}
upstreams:
  - name: up
    healthchecks: {passive: {unhealthy: {tcp_failures: 0, timeouts: 2}}}
    targets: [{target: "t1:8000"}, {target: "t2:8000"}]
`, map[string]string{"t1": blackholeAddr(t), "t2": healthy.addr()}, nil)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodGet, http.MethodHead} {
		start := time.Now()
		req, _ := http.NewRequest(method, srv.URL+"/x", nil) // no body: the direct path
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != 200 || took > time.Second {
			t.Errorf("%s: %d after %v, want 200 from t2 after at most one connect_timeout", method, resp.StatusCode, took)
		}
	}
	var t1 TargetStats
	for _, s := range gw.Stats() {
		if s.Name == "t1" {
			t1 = s
		}
	}
	// Ejection after two proves both failed attempts were timeouts.
	if t1.Failures != 2 || !t1.Down || healthy.arrivals.Load() != 4 {
		t.Errorf("t1 %+v, t2 got %d requests: want t1 ejected after 2 connect timeouts and every request on t2", t1, healthy.arrivals.Load())
	}
}
