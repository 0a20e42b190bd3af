package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// report is everything one bench run measured (the -json file).
type report struct {
	Started      time.Time  `json:"started"`
	Finished     time.Time  `json:"finished"`
	Dir          string     `json:"dir,omitempty"`
	Commit       string     `json:"commit,omitempty"`
	Command      string     `json:"command,omitempty"`
	Driver       string     `json:"driver"`
	WrkVersion   string     `json:"wrk_version,omitempty"`
	Cores        int        `json:"cores"`
	GOMAXPROCS   int        `json:"gomaxprocs"`
	Store        string     `json:"store"`
	Replicas     int        `json:"replicas_per_service"`
	BlogReplicas int        `json:"blog_replicas"`
	Blogs        int        `json:"blogs"`
	Rounds       int        `json:"rounds"`
	Clients      []int      `json:"clients"`
	Duration     string     `json:"duration"`
	Warmup       string     `json:"warmup"`
	LoadAvgStart [3]float64 `json:"loadavg_start"`
	LoadAvgEnd   [3]float64 `json:"loadavg_end"`
	// IdleCPU is each component's CPU seconds per second with no requests
	// (-idle), subtracted from the component costs of every run.
	IdleCPU  map[string]float64 `json:"idle_cpu_s_per_s,omitempty"`
	Runs     []runResult        `json:"runs"`
	Summary  []caseSummary      `json:"summary"`
	Ratios   []ratioResult      `json:"ratios"`
	Soak     *soakReport        `json:"soak,omitempty"`
	Startup  []startupTimes     `json:"startup,omitempty"`
	Failures []string           `json:"failures,omitempty"`
}

// caseSummary is one case at one client count over the rounds.
type caseSummary struct {
	Target        string             `json:"target"`
	Case          string             `json:"case"`
	Clients       int                `json:"clients"`
	RPS           spread             `json:"rps"`
	P50ms         spread             `json:"p50_ms"`
	P99ms         spread             `json:"p99_ms"`
	Requests      int64              `json:"requests"`
	Errors        int64              `json:"errors"`
	ServerAllocs  spread             `json:"server_allocs_per_req"`
	ServiceAllocs map[string]float64 `json:"service_allocs_per_req_median,omitempty"`
	ProcessAllocs spread             `json:"process_allocs_per_req"`
	ServerCPUus   spread             `json:"server_cpu_us_per_req"`
	ProcessCPUus  spread             `json:"process_cpu_us_per_req"`
	// ComponentCPUus is the median over rounds of each component's CPU µs
	// per request (see runResult.ComponentCPUus).
	ComponentCPUus map[string]float64 `json:"component_cpu_us_per_req_median,omitempty"`
	RedisCommands  float64            `json:"redis_commands_per_req_median,omitempty"`
	// VsFloor is req/s ÷ the floor's req/s at the same client count, per
	// round (empty without the floor).
	VsFloor spread `json:"vs_floor"`
}

// summarizeRuns groups runs by target, case and clients (in the order they
// were first measured) and summarises each over its rounds.
func summarizeRuns(runs []runResult) []caseSummary {
	type roundKey struct {
		round, clients int
	}
	floor := map[roundKey]float64{}
	for _, r := range runs {
		if r.Target == "floor" {
			floor[roundKey{r.Round, r.Clients}] = r.RPS
		}
	}
	var order []key
	groups := map[key][]runResult{}
	for _, r := range runs {
		k := key{r.Target, r.Case, r.Clients}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]caseSummary, 0, len(order))
	for _, k := range order {
		rs := groups[k]
		s := caseSummary{Target: k.Target, Case: k.Case, Clients: k.Clients}
		var rps, p50, p99, server, proc, vs, scpu, pcpu []float64
		services, components := map[string][]float64{}, map[string][]float64{}
		var redisCmds []float64
		// A component with no CPU in a run has no entry in it: it counts as
		// 0 there, or a median would skip the rounds it had none.
		seen := map[string]bool{}
		for _, r := range rs {
			for comp := range r.ComponentCPUus {
				seen[comp] = true
			}
		}
		for _, r := range rs {
			if r.ComponentCPUus != nil {
				for comp := range seen {
					components[comp] = append(components[comp], r.ComponentCPUus[comp])
				}
				redisCmds = append(redisCmds, r.RedisCommandsPerReq)
			}
			rps = append(rps, r.RPS)
			p50 = append(p50, r.P50ms)
			p99 = append(p99, r.P99ms)
			server = append(server, r.ServerAllocsPerReq)
			proc = append(proc, r.ProcessAllocsPerReq)
			scpu = append(scpu, r.ServerCPUus)
			pcpu = append(pcpu, r.ProcessCPUus)
			for svc, v := range r.ServiceAllocs {
				services[svc] = append(services[svc], v)
			}
			s.Requests += r.Requests
			s.Errors += r.Errors
			if f := floor[roundKey{r.Round, r.Clients}]; f > 0 {
				vs = append(vs, r.RPS/f)
			}
		}
		s.RPS, s.P50ms, s.P99ms = summarize(rps), summarize(p50), summarize(p99)
		s.ServerAllocs, s.ProcessAllocs, s.VsFloor = summarize(server), summarize(proc), summarize(vs)
		s.ServerCPUus, s.ProcessCPUus = summarize(scpu), summarize(pcpu)
		if len(components) > 0 {
			s.ComponentCPUus = map[string]float64{}
			for comp, v := range components {
				s.ComponentCPUus[comp] = summarize(v).Median
			}
			s.RedisCommands = summarize(redisCmds).Median
		}
		if len(services) > 0 {
			s.ServiceAllocs = map[string]float64{}
			for svc, v := range services {
				s.ServiceAllocs[svc] = summarize(v).Median
			}
		}
		out = append(out, s)
	}
	return out
}

func printSummary(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\nSummary: median over %d round(s), spread = min–max of req/s; allocs and cpu µs per request of the replicas (auth+blog, from their metrics)\n"+
		"and of the bench process (the floor; with the local platform also the gateway, NATS server and store; with -load go or NATS, the load generator)\n", rep.Rounds)
	fmt.Fprintf(w, "%-8s %-44s %4s %9s %-17s %9s %9s %-13s %8s %8s %8s %8s %7s\n",
		"target", "case", "c", "req/s", "spread", "p50 ms", "p99 ms", "errors", "allocs", "bench", "cpu µs", "bench", "×floor")
	for _, s := range rep.Summary {
		errs := fmt.Sprintf("%d/%d", s.Errors, s.Requests)
		allocs, proc, cpu, pcpu, vs := "-", "-", "-", "-", "-"
		if s.ServiceAllocs != nil && s.Target != "floor" {
			allocs = fmt.Sprintf("%.0f", s.ServerAllocs.Median)
			cpu = fmt.Sprintf("%.0f", s.ServerCPUus.Median)
		}
		if s.Target == "floor" || s.ServiceAllocs != nil {
			proc = fmt.Sprintf("%.0f", s.ProcessAllocs.Median)
			pcpu = fmt.Sprintf("%.0f", s.ProcessCPUus.Median)
		}
		if s.VsFloor.N > 0 {
			vs = fmt.Sprintf("%.0f %%", 100*s.VsFloor.Median)
		}
		fmt.Fprintf(w, "%-8s %-44s %4d %9.0f %-17s %9.3f %9.3f %-13s %8s %8s %8s %8s %7s\n",
			s.Target, s.Case, s.Clients, s.RPS.Median, fmt.Sprintf("%.0f–%.0f", s.RPS.Min, s.RPS.Max),
			s.P50ms.Median, s.P99ms.Median, errs, allocs, proc, cpu, pcpu, vs)
	}
	measured := false
	for _, r := range rep.Ratios {
		measured = measured || r.Value.N > 0
	}
	if !measured {
		return
	}
	fmt.Fprintf(w, "\nSame-run ratios (median of the per-round values, min–max over rounds):\n")
	fmt.Fprintf(w, "%-62s %3s  %s\n", "ratio", "c", "value (min–max over rounds), target, verdict")
	clients := 0
	for _, r := range rep.Ratios {
		if r.Value.N == 0 {
			continue // a case of it was not measured (-only, -direct=false, -url)
		}
		if clients != 0 && r.Clients != clients {
			fmt.Fprintln(w)
		}
		clients = r.Clients
		fmt.Fprintln(w, r.String())
	}
	var missed []string
	for _, r := range rep.Ratios {
		if r.Value.N > 0 && !r.Pass {
			missed = append(missed, fmt.Sprintf("%s at %d clients", r.Name, r.Clients))
		}
	}
	if len(missed) > 0 {
		fmt.Fprintf(w, "missed: %s\n", strings.Join(missed, "; "))
	}
}
