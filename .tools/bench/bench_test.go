package main

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

const wrkErrorsReport = `Running 5s test @ http://127.0.0.1:18931/nf
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   403.59us    1.35ms  23.97ms   95.64%
    Req/Sec     4.28k     1.90k    5.96k    70.00%
  Latency Distribution
     50%  169.00us
     75%  191.00us
     90%  223.00us
     99%    5.98ms
  4270 requests in 1.02s, 492.05KB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 4260
Requests/sec:   4180.72
Transfer/sec:    481.76KB
`

const wrkCleanReport = `Running 1s test @ http://127.0.0.1:18931/ok
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.32ms    2.74ms  28.26ms   91.27%
    Req/Sec     1.38k   780.92     2.78k    60.00%
  Latency Distribution
     50%    1.20ms
     75%    1.55ms
     90%    3.87ms
     99%     1.50s
  1390 requests in 1.01s, 150.67KB read
Requests/sec:   1372.16
Transfer/sec:    148.74KB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    wrkResult
		wantErr bool
	}{
		{"errors of both kinds", wrkErrorsReport, wrkResult{Requests: 4270, RPS: 4180.72, P50: 169 * time.Microsecond,
			P99: 5980 * time.Microsecond, Non2xx3xx: 4260, SocketErrors: 10}, false},
		{"clean run, seconds in the tail", wrkCleanReport, wrkResult{Requests: 1390, RPS: 1372.16, P50: 1200 * time.Microsecond,
			P99: 1500 * time.Millisecond}, false},
		{"no --latency", strings.Replace(wrkCleanReport, "     99%     1.50s\n", "", 1), wrkResult{}, true},
		{"no throughput line", strings.Replace(wrkCleanReport, "Requests/sec:   1372.16\n", "", 1), wrkResult{}, true},
		{"connection refused", "unable to connect to 127.0.0.1:1 Connection refused\n", wrkResult{}, true},
		{"garbled latency", strings.Replace(wrkCleanReport, "1.20ms", "1.20xs", 1), wrkResult{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if got, _ := parseWrk(wrkErrorsReport); got.Errors() != 4270 {
		t.Fatalf("Errors() = %d, want non-2xx/3xx + socket errors = 4270", got.Errors())
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"169.00us", 169 * time.Microsecond, false},
		{"5.98ms", 5980 * time.Microsecond, false},
		{"1.50s", 1500 * time.Millisecond, false},
		{"2.00m", 2 * time.Minute, false},
		{"1.00h", time.Hour, false},
		{"12", 0, true},
		{"ms", 0, true},
		{"-1.00ms", 0, true},
	}
	for _, tt := range tests {
		got, err := parseWrkDuration(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestMergeWrk(t *testing.T) {
	m := mergeWrk([]wrkResult{
		{Requests: 300, RPS: 60, P50: time.Millisecond, P99: 4 * time.Millisecond, Non2xx3xx: 1},
		{Requests: 100, RPS: 20, P50: 5 * time.Millisecond, P99: 3 * time.Millisecond, SocketErrors: 2},
	})
	want := wrkResult{Requests: 400, RPS: 80, P50: 2 * time.Millisecond, P99: 4 * time.Millisecond, Non2xx3xx: 1, SocketErrors: 2}
	if m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
}

func TestWrkArgs(t *testing.T) {
	get := []httpRequest{{method: http.MethodGet, path: "/id/1", header: http.Header{"X-Api-Key": {"k"}}}}
	args := strings.Join(wrkArgs("http://h:1", get, 16, 4500*time.Millisecond, "", 0, 1), " ")
	if want := "-t 2 -c 16 -d 5s --timeout 30s --latency -H X-Api-Key: k http://h:1/id/1"; args != want {
		t.Fatalf("plain GET: %q, want %q", args, want)
	}
	args = strings.Join(wrkArgs("http://h:1", get, 4, time.Second, "/tmp/s.lua", 1, 3), " ")
	if want := "-t 2 -c 4 -d 1s --timeout 30s --latency -s /tmp/s.lua http://h:1/id/1 -- 1 3 2"; args != want {
		t.Fatalf("scripted: %q, want %q", args, want)
	}
	post := []httpRequest{{method: http.MethodPost, path: "/signin", body: []byte("{}")}}
	for _, tt := range []struct {
		reqs []httpRequest
		want bool
	}{{get, false}, {post, true}, {append(get, get[0]), true}} {
		if got := needsScript(tt.reqs); got != tt.want {
			t.Errorf("needsScript(%v) = %v, want %v", tt.reqs, got, tt.want)
		}
	}
}

func TestLuaScript(t *testing.T) {
	if got, want := luaQuote("a\"b\\c\n\x01é"), `"a\"b\\c\010\001\195\169"`; got != want {
		t.Fatalf("luaQuote = %s, want %s", got, want)
	}
	s := luaScript([]httpRequest{
		{method: "GET", path: "/id/1", header: http.Header{"X-Api-Key": {"k"}, "Authorization": {"Bearer t"}}},
		{method: "POST", path: "/signin", header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"p":"x"}`)},
	})
	for _, want := range []string{
		`{method = "GET", path = "/id/1", headers = {["Authorization"] = "Bearer t", ["X-Api-Key"] = "k", }},`,
		`{method = "POST", path = "/signin", headers = {["Content-Type"] = "application/json", }, body = "{\"p\":\"x\"}"},`,
		"function init(args)", "function request()",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{7}, spread{Median: 7, Min: 7, Max: 7, N: 1}},
		{[]float64{3, 1, 2}, spread{Median: 2, Min: 1, Max: 3, N: 3}},
		{[]float64{4, 1, 3, 2}, spread{Median: 2.5, Min: 1, Max: 4, N: 4}},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		if got := summarize(tt.in); got != tt.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Fatalf("summarize reordered its input: %v", tt.in)
			}
		}
	}
}

func TestRatio(t *testing.T) {
	ms := time.Millisecond
	rounds := []map[key]runResult{
		{ // round 1: the machine was fast
			{"floor", caseFloor, 16}: {RPS: 10000},
			{"direct", caseID, 16}:   {RPS: 7000, P50: ms},
			{"gateway", caseID, 16}:  {RPS: 5000, P50: ms + 400*time.Microsecond},
			{"direct", caseID, 64}:   {RPS: 9999},
		},
		{ // round 2: slower, ratios hold
			{"floor", caseFloor, 16}: {RPS: 5000},
			{"direct", caseID, 16}:   {RPS: 3000, P50: 2 * ms},
			{"gateway", caseID, 16}:  {RPS: 2700, P50: 2*ms + 200*time.Microsecond},
		},
		{ // round 3: the floor was not measured; this round is left out of floor ratios
			{"direct", caseID, 16}:  {RPS: 4000, P50: ms},
			{"gateway", caseID, 16}: {RPS: 3600, P50: ms + 100*time.Microsecond},
		},
	}
	vsFloor := ratioSpec{Name: "id/floor", Num: key{Target: "direct", Case: caseID}, Den: key{Target: "floor", Case: caseFloor}, Target: 0.6}
	gwDirect := ratioSpec{Name: "gw/direct", Num: key{Target: "gateway", Case: caseID}, Den: key{Target: "direct", Case: caseID}, Target: 0.8}
	p50 := ratioSpec{Name: "p50", Num: key{Target: "gateway", Case: caseID}, Den: key{Target: "direct", Case: caseID}, Kind: p50Difference, Target: 0.3}
	approx := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	tests := []struct {
		name           string
		spec           ratioSpec
		clients        int
		median, lo, hi float64
		n              int
		pass           bool
	}{
		{"vs floor: mean of 0.7 and 0.6", vsFloor, 16, 0.65, 0.6, 0.7, 2, true},
		{"gateway vs direct: 0.714, 0.9, 0.9", gwDirect, 16, 0.9, 5000.0 / 7000, 0.9, 3, true},
		{"p50 difference in ms: 0.4, 0.2, 0.1", p50, 16, 0.2, 0.1, 0.4, 3, true},
		{"target missed", ratioSpec{Num: vsFloor.Num, Den: vsFloor.Den, Target: 0.66}, 16, 0.65, 0.6, 0.7, 2, false},
		{"p50 target missed", ratioSpec{Num: p50.Num, Den: p50.Den, Kind: p50Difference, Target: 0.15}, 16, 0.2, 0.1, 0.4, 3, false},
		{"not measured at 64: no verdict", vsFloor, 64, 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ratio(tt.spec, tt.clients, rounds)
			if r.Value.N != tt.n || !approx(r.Value.Median, tt.median) || !approx(r.Value.Min, tt.lo) || !approx(r.Value.Max, tt.hi) || r.Pass != tt.pass {
				t.Fatalf("got %+v (pass %v), want median %v min %v max %v n %d pass %v", r.Value, r.Pass, tt.median, tt.lo, tt.hi, tt.n, tt.pass)
			}
		})
	}
}

func TestSummarizeRuns(t *testing.T) {
	runs := []runResult{
		{Round: 1, Target: "floor", Case: caseFloor, Clients: 16, RPS: 10000, ProcessAllocsPerReq: 9},
		{Round: 1, Target: "direct", Case: caseID, Clients: 16, RPS: 6000, P50ms: 1, Requests: 100, Errors: 1,
			ServerAllocsPerReq: 50, ServiceAllocs: map[string]float64{"blog": 48, "auth": 2}, ServerCPUus: 100},
		{Round: 2, Target: "floor", Case: caseFloor, Clients: 16, RPS: 8000, ProcessAllocsPerReq: 11},
		{Round: 2, Target: "direct", Case: caseID, Clients: 16, RPS: 4000, P50ms: 3, Requests: 50,
			ServerAllocsPerReq: 60, ServiceAllocs: map[string]float64{"blog": 58, "auth": 2}, ServerCPUus: 140},
	}
	got := summarizeRuns(runs)
	if len(got) != 2 || got[0].Target != "floor" || got[1].Target != "direct" {
		t.Fatalf("groups %+v", got)
	}
	d := got[1]
	if d.RPS != (spread{Median: 5000, Min: 4000, Max: 6000, N: 2}) || d.P50ms.Median != 2 || d.Requests != 150 || d.Errors != 1 {
		t.Fatalf("direct summary %+v", d)
	}
	if d.VsFloor != (spread{Median: 0.55, Min: 0.5, Max: 0.6, N: 2}) {
		t.Fatalf("vs floor %+v, want the per-round ratios 0.6 and 0.5", d.VsFloor)
	}
	if d.ServerAllocs.Median != 55 || d.ServiceAllocs["blog"] != 53 || d.ServiceAllocs["auth"] != 2 || d.ServerCPUus != (spread{Median: 120, Min: 100, Max: 140, N: 2}) {
		t.Fatalf("allocs %+v %v", d.ServerAllocs, d.ServiceAllocs)
	}
	if got[0].VsFloor.Median != 1 || got[0].ProcessAllocs.Median != 10 {
		t.Fatalf("floor summary %+v", got[0])
	}
}

func TestParseProm(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_mallocs_total 1.234567e+06
go_memstats_next_gc_bytes 8.388608e+06
go_gc_gogc_percent 100
http_requests_total{route="/x"} 5
process_resident_memory_bytes 3.2e+07 1700000000000
`
	got, err := parseProm(strings.NewReader(text), scrapedMetrics...)
	if err != nil {
		t.Fatal(err)
	}
	if got[mGoroutines] != 42 || got[mMallocs] != 1234567 || got[mRSS] != 3.2e7 || len(got) != 5 {
		t.Fatalf("got %v", got)
	}
	if live := liveHeapAfterGC(got); live != 8388608/2 {
		t.Fatalf("live heap %v, want the goal ÷ 2 at GOGC=100", live)
	}
	if _, err := parseProm(strings.NewReader("go_goroutines many\n"), mGoroutines); err == nil {
		t.Fatal("a bad value was accepted")
	}
}

func TestCompareSoak(t *testing.T) {
	var samples []soakSample
	for i := 1; i <= 12; i++ {
		at := float64(5 * i)
		steadyHeap, leakHeap := 10e6, 10e6
		if at > 30 {
			steadyHeap, leakHeap = 10.5e6, 15e6
		}
		jitter := float64(5 * (i%2*2 - 1)) // ±5 goroutines from one sample to the next
		samples = append(samples,
			// steady: +5 % live heap, goroutines jitter around 100
			soakSample{AtSeconds: at, Replica: "auth1", LiveHeap: steadyHeap, Goroutines: 100 + jitter, RSS: 40 << 20},
			// leaking: +50 % live heap, goroutines climbing, RSS over 48 MiB at the end
			soakSample{AtSeconds: at, Replica: "blog1", LiveHeap: leakHeap, Goroutines: 100 + 10*at, RSS: float64(40+i) * (1 << 20)},
		)
	}
	// A lone outlier at the mark moves neither median.
	samples[7].LiveHeap, samples[6].Goroutines = 99e6, 900
	got := compareSoak(samples, 60*time.Second)
	if len(got) != 2 || got[0].Replica != "auth1" || got[1].Replica != "blog1" {
		t.Fatalf("replicas %+v", got)
	}
	a, b := got[0], got[1]
	if a.MarkSeconds != 20 || a.EndSeconds != 60 || a.LiveHeapMark != 10e6 || a.LiveHeapEnd != 10.5e6 ||
		math.Abs(a.LiveHeapChange-0.05) > 1e-9 || !a.HeapWithinTarget || !a.GoroutinesFlat || !a.RSSWithinTarget {
		t.Fatalf("steady replica %+v", a)
	}
	// blog1: goroutines 300 (median of 15–25 s) → 650 (of 50–60 s).
	if math.Abs(b.LiveHeapChange-0.5) > 1e-9 || b.GoroutinesMark != 300 || b.GoroutinesEnd != 650 ||
		b.HeapWithinTarget || b.GoroutinesFlat || b.RSSWithinTarget || b.PeakRSS != 52<<20 {
		t.Fatalf("leaking replica %+v", b)
	}
	// Goroutines: a drop, or growth within the jitter allowance, is flat.
	for _, tt := range []struct {
		mark, end float64
		flat      bool
	}{{161, 121, true}, {112, 127, true}, {100, 116, true}, {100, 117, false}, {400, 440, true}, {400, 441, false}} {
		var ss []soakSample
		for i := 1; i <= 12; i++ {
			g := tt.mark
			if i > 6 {
				g = tt.end
			}
			ss = append(ss, soakSample{AtSeconds: float64(5 * i), Replica: "r", LiveHeap: 1, Goroutines: g})
		}
		if got := compareSoak(ss, 60*time.Second)[0].GoroutinesFlat; got != tt.flat {
			t.Errorf("goroutines %v → %v: flat %v, want %v", tt.mark, tt.end, got, tt.flat)
		}
	}
	if m := soakMark(15 * time.Second); m != 5*time.Second {
		t.Fatalf("mark of a short soak %v", m)
	}
}
