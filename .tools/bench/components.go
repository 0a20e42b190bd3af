package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"blogplatform/tools/capacity/plan"
)

// componentColumns are the components printed per case, in order.
var componentColumns = []string{plan.Auth, plan.Blog, compGateway, compNATS, compStore, plan.Redis, compRuntime, compOther, compFloor, compLoadGen}

// printComponents prints each case's CPU µs per request by component.
func printComponents(w io.Writer, rep *report) {
	any := false
	for _, s := range rep.Summary {
		any = any || s.ComponentCPUus != nil
	}
	if !any {
		return
	}
	fmt.Fprintf(w, "\nCPU µs per request by component (median over rounds): replicas from their metrics, redis from INFO cpu,\n"+
		"the bench process's CPU split by a CPU profile of each window (runtime: background GC and scheduler)\n")
	fmt.Fprintf(w, "%-8s %-44s %4s", "target", "case", "c")
	for _, c := range componentColumns {
		fmt.Fprintf(w, " %8s", c)
	}
	fmt.Fprintf(w, " %9s\n", "redis cmd")
	for _, s := range rep.Summary {
		if s.ComponentCPUus == nil {
			continue
		}
		fmt.Fprintf(w, "%-8s %-44s %4d", s.Target, s.Case, s.Clients)
		for _, c := range componentColumns {
			fmt.Fprintf(w, " %8.1f", s.ComponentCPUus[c])
		}
		fmt.Fprintf(w, " %9.2f\n", s.RedisCommands)
	}
}

// routeClass is the class of the capacity plan's mix a case belongs to; ""
// leaves it out of the mix (the floor, the gateway's own key verification,
// the bcrypt-bound sign-in, the NATS case that is part of other routes).
func routeClass(c string) string {
	switch c {
	case caseID, caseLatest, caseSimilar:
		return plan.PublicRead
	case caseDrafts, caseProfile:
		return plan.ProtectedRead
	case caseUpdate:
		return plan.Write
	}
	return ""
}

// costsOf is the capacity plan's input: the gateway cases of the mix at the
// first client count, each component's median CPU per request. The bench
// process's runtime and other shares become plan.Shared; the floor's and the
// load generator's are not the platform's.
func costsOf(rep *report, command string) (*plan.Costs, error) {
	if len(rep.Clients) == 0 {
		return nil, errors.New("no client count")
	}
	clients := rep.Clients[0]
	c := &plan.Costs{Commit: rep.Commit, Measured: rep.Started, Command: command, Cores: rep.Cores, Clients: clients,
		Driver: rep.Driver, Store: rep.Store, Rounds: rep.Rounds, Duration: rep.Duration, LoadAvg: rep.LoadAvgStart,
		Method: "service replicas: process_cpu_seconds_total of every replica; redis: redis-server INFO cpu " +
			"(used_cpu_sys + used_cpu_user) and total_commands_processed; gateway, nats, store: the bench process's " +
			"getrusage CPU split by the shares of a CPU profile (runtime/pprof) of the same window, each sample " +
			"assigned by the package of its frame nearest the leaf (gateway and the Kong plugin's shared code, " +
			"nats-server, FerretDB and modernc.org/sqlite); shared: that process's background GC, scheduler and " +
			"unattributed samples. Each component's CPU with no requests (an idle window before the rounds, per second) is " +
			"subtracted over each measured window. All medians over rounds, through the gateway."}
	for _, s := range rep.Summary {
		class := routeClass(s.Case)
		if s.Target != "gateway" || s.Clients != clients || class == "" || s.ComponentCPUus == nil {
			continue
		}
		cpu := map[string]float64{}
		for _, comp := range []string{plan.Auth, plan.Blog, plan.Gateway, plan.NATS, plan.Store, plan.Redis} {
			cpu[comp] = round2(s.ComponentCPUus[comp])
		}
		cpu[plan.Shared] = round2(s.ComponentCPUus[compRuntime] + s.ComponentCPUus[compOther])
		c.Routes = append(c.Routes, plan.Route{Case: s.Case, Class: class, RPS: round2(s.RPS.Median), CPUus: cpu,
			RedisCommands: round2(s.RedisCommands)})
	}
	slices.SortStableFunc(c.Routes, func(a, b plan.Route) int {
		return slices.Index(plan.Classes, a.Class) - slices.Index(plan.Classes, b.Class)
	})
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w (run every case of the mix through the gateway on the local platform)", err)
	}
	return c, nil
}

// round2 keeps two decimals: the committed costs file stays readable and
// its diffs small.
func round2(v float64) float64 {
	return float64(int64(v*100+0.5)) / 100
}
