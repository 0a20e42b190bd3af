package main

import (
	"fmt"
	"io"
)

// scalingReport is a -blog-replicas run: one full report per blog replica
// count and the comparison.
type scalingReport struct {
	BlogReplicas []int        `json:"blog_replicas"`
	AuthReplicas int          `json:"auth_replicas"`
	Table        []scalingRow `json:"table"`
	Reports      []*report    `json:"reports"`
}

// scalingRow is one case at one client count across the replica counts.
type scalingRow struct {
	Target  string `json:"target"`
	Case    string `json:"case"`
	Clients int    `json:"clients"`
	// RPS is the median req/s per report (0: not measured in that run).
	RPS []float64 `json:"rps"`
	// VsFirst is RPS ÷ the first count's RPS.
	VsFirst []float64 `json:"vs_first"`
	// BlogCPUus is blog's CPU µs per request (all its replicas) per report.
	BlogCPUus []float64 `json:"blog_cpu_us_per_req"`
}

// scalingTable lines up the reports' summaries by target, case and clients
// (in the first report's order; the floor is left out: it has no replicas).
func scalingTable(reps []*report) []scalingRow {
	if len(reps) == 0 {
		return nil
	}
	var rows []scalingRow
	for _, s := range reps[0].Summary {
		if s.Target == "floor" {
			continue
		}
		row := scalingRow{Target: s.Target, Case: s.Case, Clients: s.Clients}
		for _, rep := range reps {
			var rps, cpu float64
			for _, o := range rep.Summary {
				if o.Target == s.Target && o.Case == s.Case && o.Clients == s.Clients {
					rps, cpu = o.RPS.Median, o.ComponentCPUus["blog"]
				}
			}
			row.RPS = append(row.RPS, rps)
			row.BlogCPUus = append(row.BlogCPUus, cpu)
			vs := 0.0
			if first := row.RPS[0]; first > 0 {
				vs = rps / first
			}
			row.VsFirst = append(row.VsFirst, vs)
		}
		rows = append(rows, row)
	}
	return rows
}

// printScaling prints the comparison as a markdown table.
func printScaling(w io.Writer, sr *scalingReport) {
	if len(sr.Reports) == 0 {
		return
	}
	fmt.Fprintf(w, "\nBlog replicas %v (auth %d), median req/s over rounds, × the first count, blog CPU µs/req (all replicas):\n\n",
		sr.BlogReplicas[:len(sr.Reports)], sr.AuthReplicas)
	fmt.Fprint(w, "| target | case | clients |")
	for _, n := range sr.BlogReplicas[:len(sr.Reports)] {
		fmt.Fprintf(w, " %d blog |", n)
	}
	fmt.Fprint(w, "\n|---|---|---|")
	for range sr.Reports {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range sr.Table {
		fmt.Fprintf(w, "| %s | `%s` | %d |", r.Target, r.Case, r.Clients)
		for i := range r.RPS {
			fmt.Fprintf(w, " %.0f (×%.2f, %.0f µs) |", r.RPS[i], r.VsFirst[i], r.BlogCPUus[i])
		}
		fmt.Fprintln(w)
	}
	for _, rep := range sr.Reports {
		fmt.Fprintf(w, "\n%d blog replica(s): load average %.2f at the start, %.2f at the end", rep.BlogReplicas, rep.LoadAvgStart[0], rep.LoadAvgEnd[0])
	}
	fmt.Fprintln(w)
}
