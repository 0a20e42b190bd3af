package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Metrics the bench reads from each replica's internal /metrics listener.
const (
	mMallocs    = "go_memstats_mallocs_total"
	mHeapInuse  = "go_memstats_heap_inuse_bytes"
	mNextGC     = "go_memstats_next_gc_bytes"
	mGOGC       = "go_gc_gogc_percent"
	mGoroutines = "go_goroutines"
	mRSS        = "process_resident_memory_bytes"
	mCPU        = "process_cpu_seconds_total"
)

var scrapedMetrics = []string{mMallocs, mHeapInuse, mNextGC, mGOGC, mGoroutines, mRSS, mCPU}

// parseProm reads the unlabelled samples named in names from Prometheus'
// text exposition format; other lines are skipped.
func parseProm(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		fields := strings.Fields(rest) // value [timestamp]
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: bad sample %q: %w", line, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// scrape reads the bench's metrics from one replica's metrics listener.
func scrape(ctx context.Context, client *http.Client, metricsAddr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: status %d", metricsAddr, res.StatusCode)
	}
	return parseProm(res.Body, scrapedMetrics...)
}

// liveHeapAfterGC is the heap marked live by the last GC: the GC sets its
// next goal to that times (1 + GOGC/100), so it is read back from the goal.
// Unlike heap-in-use, it does not depend on where between two collections a
// sample happens to fall. 0 when the metrics lack the goal.
func liveHeapAfterGC(m map[string]float64) float64 {
	gogc, ok := m[mGOGC]
	if !ok || gogc <= 0 {
		gogc = 100
	}
	return m[mNextGC] / (1 + gogc/100)
}

// processCPU is this process's user + system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processMallocs is this process's allocation count (tiny allocations
// included, as go_memstats_mallocs_total counts them).
func processMallocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}}
	metrics.Read(s)
	var n uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += x.Value.Uint64()
		}
	}
	return n
}
