package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"blogplatform/tools/internal/kongconf"
)

// perfKong routes /blog to one upstream target behind the API-key plugin,
// with the verdict cache on, as the repo's files do.
const perfKong = `
_format_version: "3.0"
services:
  - name: blog-read
    url: http://blog_upstream
    routes:
      - {name: blog-read, paths: [/blog], methods: [GET, HEAD, OPTIONS], strip_path: true}
upstreams:
  - name: blog_upstream
    targets:
      - {target: "blog1:8000", weight: 100}
plugins:
  - name: apikey-auth-plugin
    config:
      verification_urls: [http://verifier:8000/verify/apikey]
      cache_ttl_seconds: 5
      rate_limits:
        - {paths: [/auth/signin/basic], per_minute: 3}
`

// perfBody is about the size of a cached blog answer.
var perfBody = []byte(`{"code":"10000","status":200,"message":"success","data":{"text":"` + strings.Repeat("Lorem ipsum dolor sit amet. ", 80) + `"}}`)

type perfSetup struct {
	url         string
	upstreamNew atomic.Int64 // connections the upstream accepted
	verifies    atomic.Int64 // calls to the verifier
}

// newPerfSetup starts an upstream that counts its connections (and calls
// gate, when set, before each answer), a verifier that takes verifyDelay to
// accept goodKey, and the gateway in front.
func newPerfSetup(tb testing.TB, verifyDelay time.Duration, gate func()) *perfSetup {
	tb.Helper()
	s := &perfSetup{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate != nil {
			gate()
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(perfBody)
	}))
	up.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.upstreamNew.Add(1)
		}
	}
	up.Start()
	tb.Cleanup(up.Close)
	verifier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.verifies.Add(1)
		time.Sleep(verifyDelay)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("x-api-key") != goodKey {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"10001","status":401,"message":"permission denied: invalid x-api-key"}`)
			return
		}
		fmt.Fprint(w, `{"code":"10000","status":200,"message":"success"}`)
	}))
	tb.Cleanup(verifier.Close)

	cfg, err := kongconf.Parse([]byte(perfKong))
	if err != nil {
		tb.Fatal(err)
	}
	gw, err := New(Options{Kong: cfg, Resolve: func(host string, _ int) ([]Endpoint, error) {
		switch host {
		case "blog1":
			return []Endpoint{{Name: host, Addr: up.Listener.Addr().String()}}, nil
		case "verifier":
			return []Endpoint{{Name: host, Addr: verifier.Listener.Addr().String()}}, nil
		}
		return nil, fmt.Errorf("unknown host %s", host)
	}})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw)
	srv.Config = NewServer(gw, nil)
	srv.Start()
	tb.Cleanup(func() { srv.Close(); gw.Close() })
	s.url = srv.URL
	return s
}

// get sends GET path with goodKey and reads the whole answer.
func (s *perfSetup) get(client *http.Client, path string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("x-api-key", goodKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func keepAliveClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

// runClients has clients goroutines send n requests each and fails on any
// answer but 200.
func runClients(tb testing.TB, s *perfSetup, client *http.Client, clients, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	for range clients {
		wg.Go(func() {
			for range n {
				status, err := s.get(client, "/blog/id/1")
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("status %d", status)
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
}

func TestUpstreamConnectionsAreReused(t *testing.T) {
	// Waves of clients all in flight at once, more of them than the 64
	// idle connections per target the gateway used to keep: after each
	// wave the surplus was closed, and the next wave dialled it again.
	const clients, waves = 96, 3
	var mu sync.Mutex
	arrived, wave := 0, make(chan struct{})
	gate := func() { // holds each request until the whole wave is in flight
		mu.Lock()
		arrived++
		ch := wave
		if arrived == clients {
			close(wave)
			arrived, wave = 0, make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
		}
	}
	s := newPerfSetup(t, 0, gate)
	client := keepAliveClient(clients)
	for range waves {
		runClients(t, s, client, clients, 1)
	}
	// Each client connection holds one upstream connection at a time; with
	// enough idle connections kept, none is opened again.
	if got := s.upstreamNew.Load(); got > clients {
		t.Errorf("%d waves of %d concurrent requests opened %d upstream connections, want at most %d",
			waves, clients, got, clients)
	}
}

func TestConcurrentFirstRequestsWithOneKeyVerifyOnce(t *testing.T) {
	const clients = 32
	// The verifier is slow enough for every first request to arrive while
	// the key is being verified.
	s := newPerfSetup(t, 200*time.Millisecond, nil)
	runClients(t, s, keepAliveClient(clients), clients, 1)
	if got := s.verifies.Load(); got != 1 {
		t.Errorf("%d concurrent first requests with one key made %d verification calls, want 1", clients, got)
	}
}

// BenchmarkGatewayProxy measures a cached-key GET through the gateway (the
// client, the gateway and the upstream share the machine).
func BenchmarkGatewayProxy(b *testing.B) {
	s := newPerfSetup(b, 0, nil)
	client := keepAliveClient(16)
	if _, err := s.get(client, "/blog/id/1"); err != nil { // the key is cached from here on
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if status, err := s.get(client, "/blog/id/1"); err != nil || status != http.StatusOK {
				b.Errorf("status %d, error %v", status, err)
				return
			}
		}
	})
}
