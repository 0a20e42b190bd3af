package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"syscall"
	"time"
)

const soakInterval = 5 * time.Second

// soakSample is one replica's memory at one moment of the soak.
type soakSample struct {
	AtSeconds  float64 `json:"at_s"`
	Replica    string  `json:"replica"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	LiveHeap   float64 `json:"live_heap_after_gc_bytes"`
	Goroutines float64 `json:"goroutines"`
	RSS        float64 `json:"rss_bytes"`
}

// soakReplica compares a replica's samples at the early mark and at the end.
type soakReplica struct {
	Replica          string  `json:"replica"`
	MarkSeconds      float64 `json:"mark_s"`
	EndSeconds       float64 `json:"end_s"`
	LiveHeapMark     float64 `json:"live_heap_mark_bytes"`
	LiveHeapEnd      float64 `json:"live_heap_end_bytes"`
	LiveHeapChange   float64 `json:"live_heap_change"` // (end − mark) ÷ mark
	HeapInuseMark    float64 `json:"heap_inuse_mark_bytes"`
	HeapInuseEnd     float64 `json:"heap_inuse_end_bytes"`
	GoroutinesMark   float64 `json:"goroutines_mark"`
	GoroutinesEnd    float64 `json:"goroutines_end"`
	PeakRSS          float64 `json:"peak_rss_bytes"`
	HeapWithinTarget bool    `json:"heap_within_10pct"`
	GoroutinesFlat   bool    `json:"goroutines_flat"`
	RSSWithinTarget  bool    `json:"rss_within_48mib"`
}

type soakReport struct {
	Duration string        `json:"duration"`
	Clients  int           `json:"clients"`
	Mix      []string      `json:"mix"`
	Load     runResult     `json:"load"`
	Samples  []soakSample  `json:"samples"`
	Replicas []soakReplica `json:"replicas"`
	LoadAvg  [3]float64    `json:"loadavg_end"`
	Note     string        `json:"note,omitempty"`
}

const rssTarget = 48 << 20

// soakMix is the soak's traffic through the gateway: every cheap read route
// of both services in turn, public and protected.
func soakMix(gw target, d *dataset) []httpRequest {
	var mix []httpRequest
	for _, c := range benchCases(d) {
		if c.name == caseSignin {
			continue // bcrypt-bound: it would turn the soak into a CPU test of one route
		}
		rs := c.reqs(gw)
		mix = append(mix, rs[:min(len(rs), 4)]...)
	}
	return mix
}

// soak drives the mix at full load through the gateway and samples every
// replica's memory every 5 s from the start of the load.
func (b *bench) soak(ctx context.Context, gw target, d *dataset) (*soakReport, error) {
	mix := soakMix(gw, d)
	rep := &soakReport{Duration: b.o.soak.String(), Clients: b.o.soakClients}
	for _, r := range mix {
		rep.Mix = append(rep.Mix, r.method+" "+r.path)
	}
	if len(b.replicas) == 0 {
		rep.Note = "no replica metrics (-url): load only"
	}
	fmt.Printf("\nsoak: %s at %d clients through the gateway on a mix of %d requests, sampling every %s (load average %s)\n",
		b.o.soak, b.o.soakClients, len(mix), soakInterval, loadavgString())
	j := job{target: "gateway", name: "soak mix", bases: gw.authURLs, reqs: mix}
	type loadOut struct {
		w   wrkResult
		err error
	}
	done := make(chan loadOut, 1)
	start := time.Now()
	// The load runs a little past the last sample, so the last sample is
	// taken under load.
	go func() {
		w, err := b.drive(ctx, j, b.o.soakClients, b.o.soak+2*time.Second)
		done <- loadOut{w, err}
	}()
	sample := func() error {
		at := time.Since(start).Seconds()
		for _, r := range b.replicas {
			m, err := scrape(ctx, b.scraper, r.MetricsAddr)
			if err != nil {
				return fmt.Errorf("%s: %w", r.Name, err)
			}
			rep.Samples = append(rep.Samples, soakSample{AtSeconds: math.Round(at*10) / 10, Replica: r.Name,
				HeapInuse: m[mHeapInuse], LiveHeap: liveHeapAfterGC(m), Goroutines: m[mGoroutines], RSS: m[mRSS]})
		}
		return nil
	}
	for i := 1; time.Duration(i)*soakInterval <= b.o.soak; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case out := <-done:
			return nil, fmt.Errorf("load ended early: %v", out.err)
		case <-time.After(time.Until(start.Add(time.Duration(i) * soakInterval))):
		}
		if err := sample(); err != nil {
			return nil, err
		}
		if len(b.replicas) > 0 {
			last := rep.Samples[len(rep.Samples)-len(b.replicas):]
			line := fmt.Sprintf("soak %5.1fs", last[0].AtSeconds)
			for _, s := range last {
				line += fmt.Sprintf("  %s heap %.1f MiB live %.1f MiB g=%.0f rss %.1f MiB", s.Replica, mib(s.HeapInuse), mib(s.LiveHeap), s.Goroutines, mib(s.RSS))
			}
			fmt.Println(line)
		}
	}
	out := <-done
	if out.err != nil {
		return nil, out.err
	}
	rep.Load = runResult{Target: "gateway", Case: "soak mix", Clients: b.o.soakClients, Driver: b.o.load, Requests: out.w.Requests,
		Errors: out.w.Errors(), RPS: out.w.RPS, P50: out.w.P50, P99: out.w.P99, P50ms: msOf(out.w.P50), P99ms: msOf(out.w.P99)}
	rep.Replicas = compareSoak(rep.Samples, b.o.soak)
	rep.LoadAvg = loadavg()
	return rep, nil
}

// soakMark is the early sample compared with the end: 20 s into a soak of
// 40 s or more (the 20 s vs 60 s comparison of a 60 s soak), else a third.
func soakMark(total time.Duration) time.Duration {
	if total >= 40*time.Second {
		return 20 * time.Second
	}
	return total / 3
}

// soakWindow is the span of samples whose median stands for a mark: one
// sample may fall just before or after a collection or a burst of
// connections, three do not.
const soakWindow = 5 * time.Second

// compareSoak compares, per replica, the median of the samples within 5 s of
// the mark (15–25 s of a 60 s soak) with the median of the last 10 s
// (50–60 s): live heap after GC within 10 %, goroutines not grown by more
// than 10 % or 16 (they follow the gateway's upstream connections, so single
// samples jitter), and the peak RSS of all samples against 48 MiB.
func compareSoak(samples []soakSample, total time.Duration) []soakReplica {
	byReplica := map[string][]soakSample{}
	var names []string
	for _, s := range samples {
		if _, ok := byReplica[s.Replica]; !ok {
			names = append(names, s.Replica)
		}
		byReplica[s.Replica] = append(byReplica[s.Replica], s)
	}
	sort.Strings(names)
	mark := soakMark(total).Seconds()
	win := soakWindow.Seconds()
	var out []soakReplica
	for _, name := range names {
		ss := byReplica[name]
		end := ss[len(ss)-1].AtSeconds
		var early, late []soakSample
		for _, s := range ss {
			if math.Abs(s.AtSeconds-mark) <= win+0.5 {
				early = append(early, s)
			}
			if s.AtSeconds >= end-2*win-0.5 && s.AtSeconds > mark+win+0.5 {
				late = append(late, s)
			}
		}
		r := soakReplica{Replica: name, MarkSeconds: mark, EndSeconds: end}
		for _, s := range ss {
			r.PeakRSS = max(r.PeakRSS, s.RSS)
		}
		r.RSSWithinTarget = r.PeakRSS > 0 && r.PeakRSS <= rssTarget
		if len(early) > 0 && len(late) > 0 {
			med := func(w []soakSample, f func(soakSample) float64) float64 {
				xs := make([]float64, len(w))
				for i, s := range w {
					xs[i] = f(s)
				}
				return summarize(xs).Median
			}
			live := func(s soakSample) float64 { return s.LiveHeap }
			inuse := func(s soakSample) float64 { return s.HeapInuse }
			gor := func(s soakSample) float64 { return s.Goroutines }
			r.LiveHeapMark, r.LiveHeapEnd = med(early, live), med(late, live)
			r.HeapInuseMark, r.HeapInuseEnd = med(early, inuse), med(late, inuse)
			r.GoroutinesMark, r.GoroutinesEnd = med(early, gor), med(late, gor)
			if r.LiveHeapMark > 0 {
				r.LiveHeapChange = (r.LiveHeapEnd - r.LiveHeapMark) / r.LiveHeapMark
			}
			r.HeapWithinTarget = r.LiveHeapMark > 0 && math.Abs(r.LiveHeapChange) <= 0.10
			// A leak grows with the requests served; goroutines that come and
			// go with the gateway's upstream connections (one per connection)
			// only jitter. Growth up to 10 % or 16 (tens of thousands of
			// requests pass between the marks: under one leaked goroutine per
			// thousand) counts as flat, and so does a drop.
			r.GoroutinesFlat = r.GoroutinesMark > 0 && r.GoroutinesEnd-r.GoroutinesMark <= max(16, 0.10*r.GoroutinesMark)
		}
		out = append(out, r)
	}
	return out
}

func mib(b float64) float64 { return b / (1 << 20) }

func passMark(ok bool) string {
	if ok {
		return "pass"
	}
	return "MISS"
}

func printSoak(w io.Writer, s *soakReport) {
	fmt.Fprintf(w, "\nsoak result: %s at %d clients, %.0f req/s, p50 %.3f ms, p99 %.3f ms, errors %d/%d (load average at the end %.2f)\n",
		s.Duration, s.Clients, s.Load.RPS, s.Load.P50ms, s.Load.P99ms, s.Load.Errors, s.Load.Requests, s.LoadAvg[0])
	if s.Note != "" {
		fmt.Fprintln(w, "soak:", s.Note)
		return
	}
	fmt.Fprintf(w, "medians of the samples within 5 s of the mark and of the last 10 s; targets: live heap within 10 %%, goroutines grown by at most 10 %% or 16, RSS ≤ 48 MiB\n")
	fmt.Fprintf(w, "%-7s %-32s %-10s %-22s %-14s %s\n", "replica", "live heap after GC (mark → end)", "change", "heap in use", "goroutines", "peak RSS (≤ 48 MiB)")
	for _, r := range s.Replicas {
		fmt.Fprintf(w, "%-7s %-32s %-10s %-22s %-14s %s\n", r.Replica,
			fmt.Sprintf("%.0fs %.2f MiB → %.0fs %.2f MiB", r.MarkSeconds, mib(r.LiveHeapMark), r.EndSeconds, mib(r.LiveHeapEnd)),
			fmt.Sprintf("%+.1f%% %s", 100*r.LiveHeapChange, passMark(r.HeapWithinTarget)),
			fmt.Sprintf("%.1f → %.1f MiB", mib(r.HeapInuseMark), mib(r.HeapInuseEnd)),
			fmt.Sprintf("%.0f → %.0f %s", r.GoroutinesMark, r.GoroutinesEnd, passMark(r.GoroutinesFlat)),
			fmt.Sprintf("%.1f MiB %s", mib(r.PeakRSS), passMark(r.RSSWithinTarget)))
	}
}

// startupTimes is one service's start-up-to-ready times.
type startupTimes struct {
	Replica string    `json:"replica"`
	Service string    `json:"service"`
	Ms      []float64 `json:"ms"`
	Value   spread    `json:"value_ms"`
	Pass    bool      `json:"pass"`
}

// startup stops the first replica of each service and starts it again, as
// often as -startup says, timing from the process start to the first 200 of
// /health/ready (which checks its store, Redis and NATS, all up). The bench
// polls every 2 ms itself, finer than the platform's own wait.
func (b *bench) startup(ctx context.Context) ([]startupTimes, error) {
	fmt.Printf("\nstart-up to ready (%d restart(s) per service; load average %s)\n", b.o.startups, loadavgString())
	seen := map[string]bool{}
	var out []startupTimes
	probe := &http.Client{Timeout: 500 * time.Millisecond}
	for _, r := range b.replicas {
		if seen[r.Service] {
			continue
		}
		seen[r.Service] = true
		st := startupTimes{Replica: r.Name, Service: r.Service}
		for range b.o.startups {
			if err := r.Signal(syscall.SIGTERM); err != nil {
				return nil, err
			}
			wctx, cancel := context.WithTimeout(ctx, b.plat.StopGrace())
			_ = r.Wait(wctx) // its exit status is not the point here
			cancel()
			if r.Running() {
				return nil, fmt.Errorf("%s did not stop", r.Name)
			}
			restarted := make(chan error, 1)
			t0 := time.Now()
			go func() { restarted <- b.plat.Restart(ctx, r.Name) }()
			ready, err := pollReady(ctx, probe, "http://"+r.Addr+"/health/ready", restarted)
			if err != nil {
				return nil, err
			}
			if err := <-restarted; err != nil {
				return nil, err
			}
			st.Ms = append(st.Ms, msOf(ready.Sub(t0)))
		}
		st.Value = summarize(st.Ms)
		st.Pass = st.Value.Median <= 1000
		out = append(out, st)
	}
	return out, nil
}

// pollReady returns when url first answers 200, or fails when the restart
// reports an error before that.
func pollReady(ctx context.Context, client *http.Client, url string, restarted <-chan error) (time.Time, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		if res, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case err := <-restarted:
			if err != nil {
				return time.Time{}, err
			}
			// Ready by the platform's own wait; one more probe confirms it.
			return pollReady(ctx, client, url, nil)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func printStartup(w io.Writer, st []startupTimes) {
	fmt.Fprintf(w, "%-7s %-8s %-30s %-20s %s\n", "service", "replica", "start → /health/ready 200", "each", "target ≤ 1 s")
	for _, s := range st {
		each := ""
		for i, v := range s.Ms {
			if i > 0 {
				each += " "
			}
			each += fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "%-7s %-8s %-30s %-20s %s\n", s.Service, s.Replica,
			fmt.Sprintf("%.0f ms (%.0f–%.0f)", s.Value.Median, s.Value.Min, s.Value.Max), each+" ms", passMark(s.Pass))
	}
}
