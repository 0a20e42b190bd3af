package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/devkit/loadtest"
)

// Benchmarks behind the numbers in the report (nothing asserts timings):
//
//	go test ./tests/ -run '^$' -bench 'HTTP|Engine' -benchtime 60000x
//	go test ./tests/ -run '^$' -bench Latency -benchtime 8x
//
// Each HTTP benchmark serves the App on a real loopback listener and drives
// it with 16 concurrent keep-alive clients (devkit/loadtest); b.N is the
// number of requests, so ns/op is the inverse of throughput, and req/s, p50
// and p99 are reported as metrics. allocs/op counts the whole process
// (server, Redis client and HTTP client).

const (
	benchClients  = 16
	benchBlogs    = 200
	benchBlogSize = 3600
)

type httpBench struct {
	app    *testkit.App
	server *httptest.Server
	client *http.Client
}

func newHTTPBench(b *testing.B, published bool) (*httpBench, []string) {
	b.Helper()
	testkit.StartFakeAuth(b, env.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(b, env, redisDBs, testkit.Settings{"NATS_REQUEST_TIMEOUT": "2s"})
	ids := testkit.Seed(b, app, benchBlogs, published, benchBlogSize)
	srv := httptest.NewServer(app.Engine)
	b.Cleanup(srv.Close)
	hex := make([]string, len(ids))
	for i, id := range ids {
		hex[i] = id.Hex()
	}
	return &httpBench{app: app, server: srv, client: loadtest.HTTPClient(benchClients)}, hex
}

func (h *httpBench) run(b *testing.B, name, path, authorization string) {
	b.Helper()
	header := http.Header{}
	if authorization != "" {
		header.Set("Authorization", authorization)
	}
	get := loadtest.Get(h.client, h.server.URL+path, header, http.StatusOK)
	// Warm the cache (and the connections) outside the measurement.
	for i := 0; i < benchClients; i++ {
		if err := get(context.Background(), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	res := loadtest.Run(context.Background(), loadtest.Options{Name: name, Clients: benchClients, MaxRequests: int64(b.N)}, get)
	b.StopTimer()
	if res.Errors > 0 {
		b.Fatalf("%d errors", res.Errors)
	}
	b.ReportMetric(res.RequestsPerSecond(), "req/s")
	b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
	b.Logf("%s (GOMAXPROCS=%d)", res, runtime.GOMAXPROCS(0))
}

// BenchmarkHTTP covers the three speed targets: a cached blog by id, the
// first page of the latest list, and an author's drafts (two NATS round
// trips to the fake auth, then the cached page).
func BenchmarkHTTP(b *testing.B) {
	b.Run("GET_id_cached", func(b *testing.B) {
		h, ids := newHTTPBench(b, true)
		h.run(b, "GET /id/:id (cached)", "/id/"+ids[0], "")
	})
	b.Run("GET_list_latest", func(b *testing.B) {
		h, _ := newHTTPBench(b, true)
		h.run(b, "GET /list/latest?page=1&limit=10", "/list/latest?page=1&limit=10", "")
	})
	b.Run("GET_author_drafts", func(b *testing.B) {
		h, _ := newHTTPBench(b, false)
		h.run(b, "GET /author/drafts?page=1&limit=10", "/author/drafts?page=1&limit=10", testkit.AuthorToken)
	})
}

// BenchmarkEngine measures the server side alone: requests go straight to
// the engine (no sockets, no HTTP client), from GOMAXPROCS goroutines.
func BenchmarkEngine(b *testing.B) {
	b.Run("GET_id_cached", func(b *testing.B) {
		h, ids := newHTTPBench(b, true)
		path := "/id/" + ids[0]
		h.app.Do(b, http.MethodGet, path, "", nil)
		b.ReportAllocs()
		b.SetParallelism(benchClients / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				h.app.Engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	})
}

// BenchmarkHTTPBaseline is the same harness on GET /health/live (no Redis,
// tiny body): the ceiling of HTTP on the machine at the time, to read the
// other numbers against (the machine is shared, and its load varies).
func BenchmarkHTTPBaseline(b *testing.B) {
	h, _ := newHTTPBench(b, true)
	h.run(b, "GET /health/live", "/health/live", "")
}

// BenchmarkLatency shows list and similar-blog latency on larger corpora:
// cold is a cache miss (the cache is emptied before each request, outside
// the timing), warm a hit. Requests go straight to the engine, one at a
// time, so the numbers are the server's latency alone.
//
//	go test ./tests/ -run '^$' -bench Latency -benchtime 8x
//	BENCH_LATENCY_SIZES=100000 go test ./tests/ -run '^$' -bench 'Latency/(latest|similar)' -benchtime 2x -timeout 60m
func BenchmarkLatency(b *testing.B) {
	sizes := []int{1_000, 10_000}
	if v := os.Getenv("BENCH_LATENCY_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("BENCH_LATENCY_SIZES=%q: want comma-separated blog counts", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, size := range sizes {
		testkit.StartFakeAuth(b, env.NATSURL(), testkit.Normal, 0)
		app := testkit.NewApp(b, env, redisDBs, testkit.Settings{"NATS_REQUEST_TIMEOUT": "2s", "DB_QUERY_TIMEOUT_SEC": "120"})
		ids := testkit.Seed(b, app, size, true, benchBlogSize)
		tag := strings.ToUpper(testkit.SeedTag(app, b, ids[size/2]))
		routes := []struct{ name, path, token string }{
			{"latest", "/list/latest?page=1&limit=10", ""},
			{"tag", "/list/tag/" + tag + "?page=1&limit=10", ""},
			{"similar", "/list/similar/id/" + ids[size/2].Hex(), ""},
			{"author_published", "/author/published?page=1&limit=10", testkit.AuthorToken},
		}
		for _, r := range routes {
			for _, warm := range []bool{false, true} {
				mode := "cold"
				if warm {
					mode = "warm"
				}
				b.Run(fmt.Sprintf("%s/%d/%s", r.name, size, mode), func(b *testing.B) {
					ctx := context.Background()
					app.Do(b, http.MethodGet, r.path, r.token, nil).Want(b, 200, "success")
					lat := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if !warm {
							b.StopTimer()
							if err := app.Redis.FlushDB(ctx).Err(); err != nil {
								b.Fatal(err)
							}
							b.StartTimer()
						}
						start := time.Now()
						rec := httptest.NewRecorder()
						req := httptest.NewRequest(http.MethodGet, r.path, nil)
						if r.token != "" {
							req.Header.Set("Authorization", r.token)
						}
						app.Engine.ServeHTTP(rec, req)
						lat = append(lat, time.Since(start))
						if rec.Code != http.StatusOK {
							b.Fatalf("status %d: %s", rec.Code, rec.Body)
						}
					}
					b.StopTimer()
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
				})
			}
		}
	}
}
