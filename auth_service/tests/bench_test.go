package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchClients is the number of concurrent clients of every benchmark.
const benchClients = 16

// measure runs op from benchClients goroutines for b.N operations in total
// and reports throughput and latency percentiles. Allocations are reported
// per operation and include the client's side (HTTP client, NATS request).
func measure(b *testing.B, op func() error) {
	b.Helper()
	b.ReportAllocs()
	b.SetParallelism((benchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	var all []time.Duration
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if err := op(); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)].Microseconds()), "p99-µs")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "GOMAXPROCS")
}

// benchReplica is a replica that does not log each request (as in
// production at LOG_LEVEL=warn), on the shared embedded store and Redis.
func benchReplica(b *testing.B) (*stack, *replica) {
	s := newStack(b)
	return s, s.replica(map[string]string{"LOG_LEVEL": "warn"})
}

// BenchmarkAuthenticationNATS: auth.authentication over the real NATS
// server, as blog_service calls it for every protected request.
func BenchmarkAuthenticationNATS(b *testing.B) {
	s, r := benchReplica(b)
	u := r.signUp()
	payload := []byte(`{"data":{"value":"` + u.bearer() + `"}}`)
	want := []byte(`"_id":"` + u.userID + `"`)
	b.Run("clients=16", func(b *testing.B) {
		measure(b, func() error {
			msg, err := s.nc.Request("auth.authentication", payload, 5*time.Second)
			if err != nil {
				return err
			}
			if !bytes.Contains(msg.Data, want) {
				return fmt.Errorf("reply %s", msg.Data)
			}
			return nil
		})
	})
}

// BenchmarkVerifyApiKey: GET /verify/apikey through a real HTTP server with
// keep-alive connections, as the gateway calls it for every request.
func BenchmarkVerifyApiKey(b *testing.B) {
	s, r := benchReplica(b)
	benchHTTP(b, r, "/verify/apikey", "x-api-key", s.apiKey)
}

// BenchmarkProfileMine: GET /profile/mine (authentication middleware plus
// the private profile) through a real HTTP server.
func BenchmarkProfileMine(b *testing.B) {
	_, r := benchReplica(b)
	u := r.signUp()
	benchHTTP(b, r, "/profile/mine", "Authorization", u.bearer())
}

func benchHTTP(b *testing.B, r *replica, path, header, value string) {
	srv := httptest.NewServer(r.Engine)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients * 2}, Timeout: 5 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	b.Run("clients=16", func(b *testing.B) {
		measure(b, func() error {
			req, err := http.NewRequest("GET", srv.URL+path, nil)
			if err != nil {
				return err
			}
			req.Header.Set(header, value)
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				return fmt.Errorf("status %d", res.StatusCode)
			}
			return nil
		})
	})
}
