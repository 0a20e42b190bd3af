// Package loadtest is a small closed-loop load generator: a fixed number of
// clients each send one request after another for a duration (or a request
// budget), and the run reports throughput, latency percentiles and errors.
// Benchmarks and the bench harness use it; it never targets anything but the
// addresses it is given (loopback in this project).
package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Result summarises one run.
type Result struct {
	Name     string
	Clients  int
	Requests int64
	Errors   int64
	Elapsed  time.Duration
	P50, P99 time.Duration
	Max      time.Duration
}

func (r Result) RequestsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%-44s clients=%-3d req/s=%-9.0f p50=%-9s p99=%-9s errors=%d/%d",
		r.Name, r.Clients, r.RequestsPerSecond(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Errors, r.Requests)
}

// Options bound a run: it stops at Duration or after MaxRequests, whichever
// comes first (at least one of them must be set).
type Options struct {
	Name        string
	Clients     int
	Duration    time.Duration
	MaxRequests int64
	Warmup      time.Duration // requests during warm-up are not counted
}

// Run calls do from opts.Clients goroutines until the run ends. do returns an
// error for a failed request (wrong status included).
func Run(ctx context.Context, opts Options, do func(ctx context.Context, client int) error) Result {
	if opts.Clients <= 0 {
		opts.Clients = 1
	}
	if opts.Duration <= 0 && opts.MaxRequests <= 0 {
		opts.Duration = 5 * time.Second
	}
	if opts.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, opts.Warmup)
		var wg sync.WaitGroup
		for c := 0; c < opts.Clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for wctx.Err() == nil {
					_ = do(wctx, c)
				}
			}(c)
		}
		wg.Wait()
		cancel()
	}
	runCtx := ctx
	var cancel context.CancelFunc = func() {}
	if opts.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, opts.Duration)
	}
	defer cancel()
	var issued, errs atomic.Int64
	perClient := make([][]time.Duration, opts.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < opts.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for runCtx.Err() == nil {
				if opts.MaxRequests > 0 && issued.Add(1) > opts.MaxRequests {
					break
				}
				t0 := time.Now()
				err := do(runCtx, c)
				d := time.Since(t0)
				if runCtx.Err() != nil && err != nil {
					break // cut off by the end of the run, not a failure
				}
				if err != nil {
					errs.Add(1)
				}
				lat = append(lat, d)
			}
			perClient[c] = lat
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range perClient {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := Result{Name: opts.Name, Clients: opts.Clients, Requests: int64(len(all)), Errors: errs.Load(), Elapsed: elapsed}
	if n := len(all); n > 0 {
		res.P50 = all[n*50/100]
		res.P99 = all[min(n-1, n*99/100)]
		res.Max = all[n-1]
	}
	return res
}

// HTTPClient returns a keep-alive client sized for clients concurrent
// connections to one host.
func HTTPClient(clients int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = clients * 2
	tr.MaxIdleConnsPerHost = clients * 2
	tr.MaxConnsPerHost = 0
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Send sends one request and expects want; the body is drained so the
// connection is reused.
func Send(ctx context.Context, client *http.Client, method, url string, header http.Header, body []byte, want int) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, url, res.StatusCode, want)
	}
	return nil
}

// Get is a load function sending GETs of url and expecting want.
func Get(client *http.Client, url string, header http.Header, want int) func(ctx context.Context, _ int) error {
	return func(ctx context.Context, _ int) error {
		return Send(ctx, client, http.MethodGet, url, header, nil, want)
	}
}
