package main

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"blogplatform/tools/capacity/plan"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name           string
		stack          []string // leaf first
		target, driver string
		want           string
	}{
		{"gateway write syscall", []string{"syscall.Syscall", "net.(*conn).Write", "blogplatform/tools/internal/gateway.(*Gateway).ServeHTTP", "net/http.(*conn).serve"}, "gateway", "wrk", compGateway},
		{"plugin's key check", []string{"runtime.mallocgc", "blogplatform/kong/apikey_auth_plugin/verify.(*Verifier).Check", "blogplatform/tools/internal/gateway.(*Gateway).ServeHTTP"}, "gateway", "wrk", compGateway},
		{"nats-server read loop", []string{"syscall.read", "github.com/nats-io/nats-server/v2/server.(*client).readLoop"}, "gateway", "wrk", compNATS},
		{"store: sqlite under FerretDB", []string{"modernc.org/sqlite/lib.Xsqlite3VdbeExec", "github.com/FerretDB/FerretDB/internal/backends/sqlite.(*collection).Query"}, "gateway", "wrk", compStore},
		{"GC assist counts for the allocating gateway", []string{"runtime.gcAssistAlloc", "runtime.mallocgc", "blogplatform/tools/internal/gateway.newRequest"}, "gateway", "wrk", compGateway},
		{"request read before the handler: the gateway's", []string{"syscall.read", "bufio.(*Reader).Peek", "net/http.(*conn).serve"}, "gateway", "wrk", compGateway},
		{"request read before the handler: the floor's", []string{"syscall.read", "net/http.(*conn).serve"}, "floor", "wrk", compFloor},
		{"floor handler", []string{"encoding/json.Marshal", "github.com/gin-gonic/gin.(*Context).JSON", "blogplatform/devkit/loadtest.StartFloor.func1"}, "floor", "wrk", compFloor},
		{"Go load generator", []string{"net/http.(*Client).Do", "blogplatform/devkit/loadtest.Send", "blogplatform/devkit/loadtest.Run.func1"}, "gateway", "go", compLoadGen},
		{"HTTP client connection under wrk: the gateway's body transport", []string{"net/http.(*persistConn).readLoop"}, "gateway", "wrk", compGateway},
		{"HTTP client connection under -load go", []string{"net/http.(*persistConn).readLoop"}, "gateway", "go", compLoadGen},
		{"background GC", []string{"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker"}, "gateway", "wrk", compRuntime},
		{"no Go frames", []string{"runtime._System"}, "direct", "wrk", compRuntime},
		{"bench bookkeeping", []string{"os.ReadFile", "main.loadavg", "main.(*bench).measure"}, "direct", "wrk", compOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.stack, tt.target, tt.driver); got != tt.want {
				t.Fatalf("classify = %s, want %s", got, tt.want)
			}
		})
	}
}

// cpuProfile builds a CPU profile in pprof's format: each stack (leaf
// first) with its CPU nanoseconds.
func cpuProfile(t *testing.T, stacks map[string][]string, ns map[string]int64) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
	}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for name, stack := range stacks {
		var sl []*profile.Location
		for _, fn := range stack {
			if funcs[fn] == nil {
				funcs[fn] = &profile.Function{ID: uint64(len(funcs) + 1), Name: fn}
				p.Function = append(p.Function, funcs[fn])
				locs[fn] = &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: funcs[fn]}}}
				p.Location = append(p.Location, locs[fn])
			}
			sl = append(sl, locs[fn])
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: sl, Value: []int64{ns[name] / 10_000_000, ns[name]}})
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestComponentShares(t *testing.T) {
	raw := cpuProfile(t, map[string][]string{
		"gw":    {"syscall.write", "blogplatform/tools/internal/gateway.(*Gateway).ServeHTTP"},
		"nats":  {"github.com/nats-io/nats-server/v2/server.(*client).readLoop"},
		"store": {"modernc.org/sqlite/lib.Xsqlite3Step"},
		"gc":    {"runtime.gcBgMarkWorker"},
	}, map[string]int64{"gw": 600e6, "nats": 200e6, "store": 100e6, "gc": 100e6})
	shares, seconds, err := componentShares(raw, "gateway", "wrk")
	if err != nil {
		t.Fatal(err)
	}
	if seconds != 1 {
		t.Errorf("profiled %v s, want 1", seconds)
	}
	want := map[string]float64{compGateway: 0.6, compNATS: 0.2, compStore: 0.1, compRuntime: 0.1}
	if len(shares) != len(want) {
		t.Fatalf("shares %v, want %v", shares, want)
	}
	for c, w := range want {
		if math.Abs(shares[c]-w) > 1e-9 {
			t.Errorf("%s share %v, want %v", c, shares[c], w)
		}
	}
	if _, _, err := componentShares([]byte("not a profile"), "gateway", "wrk"); err == nil {
		t.Error("a garbled profile gave no error")
	}
	merged, err := mergeProfiles([][]byte{raw, raw})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range merged.Sample {
		total += s.Value[1]
	}
	if total != 2e9 {
		t.Errorf("merged profile holds %d ns, want both windows' 2e9", total)
	}
}

func TestParseRedisInfo(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.000000\r\n" +
		"# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:12345\r\n"
	got, err := parseRedisInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	if got != (redisCounters{CPU: 3.75, Commands: 12345}) {
		t.Fatalf("got %+v, want CPU 3.75 (sys + user, not children) and 12345 commands", got)
	}
	for name, bad := range map[string]string{
		"no stats section": "used_cpu_sys:1\r\nused_cpu_user:2\r\n",
		"garbled value":    "used_cpu_sys:x\r\nused_cpu_user:2\r\ntotal_commands_processed:1\r\n",
	} {
		if _, err := parseRedisInfo(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCostsOf(t *testing.T) {
	comp := func(blog, gw, runtime, other, loadgen float64) map[string]float64 {
		return map[string]float64{plan.Blog: blog, compGateway: gw, compRuntime: runtime, compOther: other, compLoadGen: loadgen, plan.Redis: 3}
	}
	rep := &report{Commit: "abc", Clients: []int{16, 64}, Rounds: 3, Started: time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC),
		Summary: []caseSummary{
			{Target: "gateway", Case: caseID, Clients: 16, RPS: spread{Median: 6000}, ComponentCPUus: comp(60, 100, 10, 5, 99), RedisCommands: 0.5},
			{Target: "gateway", Case: caseID, Clients: 64, RPS: spread{Median: 7000}, ComponentCPUus: comp(1, 1, 1, 1, 1)},
			{Target: "direct", Case: caseID, Clients: 16, ComponentCPUus: comp(50, 0, 1, 1, 1)},
			{Target: "gateway", Case: caseDrafts, Clients: 16, ComponentCPUus: comp(70, 110, 10, 0, 0)},
			{Target: "gateway", Case: caseUpdate, Clients: 16, ComponentCPUus: comp(400, 200, 20, 0, 0), RedisCommands: 4},
			{Target: "gateway", Case: caseVerify, Clients: 16, ComponentCPUus: comp(1, 1, 1, 1, 1)},
			{Target: "floor", Case: caseFloor, Clients: 16, ComponentCPUus: comp(0, 0, 1, 1, 1)},
		}}
	c, err := costsOf(rep, "go run ./.tools/bench -costs x")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 3 {
		t.Fatalf("routes %+v, want the gateway cases of the mix at 16 clients (id, drafts, update)", c.Routes)
	}
	id := c.Routes[0]
	if id.Case != caseID || id.Class != plan.PublicRead || id.RPS != 6000 || id.RedisCommands != 0.5 {
		t.Fatalf("first route %+v", id)
	}
	// runtime + other become shared; the load generator is not the platform's.
	if id.CPUus[plan.Blog] != 60 || id.CPUus[plan.Gateway] != 100 || id.CPUus[plan.Shared] != 15 || id.CPUus[plan.Redis] != 3 {
		t.Fatalf("costs %v", id.CPUus)
	}
	if c.Routes[1].Class != plan.ProtectedRead || c.Routes[2].Class != plan.Write {
		t.Fatalf("classes %s, %s", c.Routes[1].Class, c.Routes[2].Class)
	}
	rep.Summary = rep.Summary[:4] // no write measured
	if _, err := costsOf(rep, ""); err == nil {
		t.Fatal("costs without a write route: no error")
	}
}

func TestScalingTable(t *testing.T) {
	one := &report{BlogReplicas: 1, Summary: []caseSummary{
		{Target: "floor", Case: caseFloor, Clients: 16, RPS: spread{Median: 30000}},
		{Target: "gateway", Case: caseID, Clients: 16, RPS: spread{Median: 6000}, ComponentCPUus: map[string]float64{"blog": 60}},
		{Target: "direct", Case: caseID, Clients: 16, RPS: spread{Median: 20000}, ComponentCPUus: map[string]float64{"blog": 50}},
	}}
	two := &report{BlogReplicas: 2, Summary: []caseSummary{
		{Target: "direct", Case: caseID, Clients: 16, RPS: spread{Median: 18000}, ComponentCPUus: map[string]float64{"blog": 70}},
		{Target: "gateway", Case: caseID, Clients: 16, RPS: spread{Median: 6600}, ComponentCPUus: map[string]float64{"blog": 66}},
	}}
	rows := scalingTable([]*report{one, two})
	if len(rows) != 2 || rows[0].Target != "gateway" || rows[1].Target != "direct" {
		t.Fatalf("rows %+v, want gateway then direct (the first report's order, no floor)", rows)
	}
	if rows[0].RPS[1] != 6600 || math.Abs(rows[0].VsFirst[1]-1.1) > 1e-9 || rows[1].VsFirst[1] != 0.9 || rows[1].BlogCPUus[1] != 70 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestSubtractIdle(t *testing.T) {
	cpu := map[string]float64{plan.Blog: 5000, plan.Redis: 100, compGateway: 900}
	// 10 ms/s of blog and 1 ms/s of Redis idle, over a 5 s window of 10
	// requests: 5,000 and 500 µs per request are idle work.
	subtractIdle(cpu, map[string]float64{plan.Blog: 0.010, plan.Redis: 0.001, compNATS: 0.5}, 5*time.Second, 10)
	want := map[string]float64{plan.Blog: 0, plan.Redis: 0, compGateway: 900}
	for c, w := range want {
		if math.Abs(cpu[c]-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", c, cpu[c], w)
		}
	}
	if _, ok := cpu[compNATS]; ok {
		t.Error("a component the run did not report was added")
	}
	cpu = map[string]float64{plan.Blog: 5000}
	subtractIdle(cpu, map[string]float64{plan.Blog: 0.001}, 5*time.Second, 10)
	if cpu[plan.Blog] != 4500 {
		t.Errorf("blog %v, want 5,000 − 500 µs of idle per request", cpu[plan.Blog])
	}
}

// TestComponentMedianCountsAbsentAsZero: a component that had no samples
// in a round has no entry in it; its median must count that round as 0.
func TestComponentMedianCountsAbsentAsZero(t *testing.T) {
	runs := []runResult{
		{Round: 1, Target: "gateway", Case: caseSimilar, Clients: 16, ComponentCPUus: map[string]float64{compStore: 25000, plan.Blog: 60}},
		{Round: 2, Target: "gateway", Case: caseSimilar, Clients: 16, ComponentCPUus: map[string]float64{plan.Blog: 70}},
		{Round: 3, Target: "gateway", Case: caseSimilar, Clients: 16, ComponentCPUus: map[string]float64{plan.Blog: 65}},
	}
	s := summarizeRuns(runs)[0]
	if s.ComponentCPUus[compStore] != 0 || s.ComponentCPUus[plan.Blog] != 65 {
		t.Fatalf("medians %v, want store 0 (one cold round of three) and blog 65", s.ComponentCPUus)
	}
}
