package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// compareMain is `bench compare old.json new.json`: for every case both
// runs measured, the median requests per second and p99 of each with their
// min–max over the rounds, and the change. As benchstat does, a change is
// only claimed when the two runs' spreads do not overlap; otherwise the
// delta column says "~" (the rounds cannot tell the runs apart).
func compareMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./.tools/bench compare [-only substring] old.json new.json")
		fs.PrintDefaults()
	}
	only := fs.String("only", "", "compare only cases whose target or name contains this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	old, err := readReport(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return 1
	}
	cur, err := readReport(fs.Arg(1))
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return 1
	}
	rows := compareReports(old, cur, *only)
	if len(rows) == 0 {
		fmt.Fprintln(stderr, "bench compare: the two files have no case in common")
		return 1
	}
	fmt.Fprintf(stdout, "old: %s (commit %s, %d rounds)\nnew: %s (commit %s, %d rounds)\n\n",
		fs.Arg(0), orUnknown(old.Commit), old.Rounds, fs.Arg(1), orUnknown(cur.Commit), cur.Rounds)
	writeComparison(stdout, rows)
	return 0
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// readReport loads a -json file of this command.
func readReport(path string) (*report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Summary) == 0 {
		return nil, fmt.Errorf("%s: no summary: not a bench -json file, or a run that measured nothing", path)
	}
	return &r, nil
}

// comparison is one case measured by both runs.
type comparison struct {
	Target, Case string
	Clients      int
	OldRPS       spread
	NewRPS       spread
	OldP99       spread
	NewP99       spread
}

func compareReports(old, cur *report, only string) []comparison {
	type key struct {
		target, name string
		clients      int
	}
	before := map[key]caseSummary{}
	for _, s := range old.Summary {
		before[key{s.Target, s.Case, s.Clients}] = s
	}
	var rows []comparison
	for _, s := range cur.Summary {
		o, ok := before[key{s.Target, s.Case, s.Clients}]
		if !ok || (only != "" && !strings.Contains(s.Target+" "+s.Case, only)) {
			continue
		}
		rows = append(rows, comparison{Target: s.Target, Case: s.Case, Clients: s.Clients,
			OldRPS: o.RPS, NewRPS: s.RPS, OldP99: o.P99ms, NewP99: s.P99ms})
	}
	slices.SortStableFunc(rows, func(a, b comparison) int {
		if c := strings.Compare(a.Target, b.Target); c != 0 {
			return c
		}
		if c := strings.Compare(a.Case, b.Case); c != 0 {
			return c
		}
		return a.Clients - b.Clients
	})
	return rows
}

// delta is the change from old to new in percent, or "~" when the min–max
// ranges overlap or either side was measured once.
func delta(old, cur spread) string {
	if old.N == 0 || cur.N == 0 || old.Median == 0 {
		return "n/a" // one side has no measurement
	}
	// One round has no spread to compare: nothing can be claimed.
	if old.N < 2 || cur.N < 2 || old.Min <= cur.Max && cur.Min <= old.Max {
		return "~"
	}
	return fmt.Sprintf("%+.1f%%", (cur.Median/old.Median-1)*100)
}

func writeComparison(w io.Writer, rows []comparison) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tcase\tclients\told req/s\tnew req/s\tdelta\told p99 ms\tnew p99 ms\tdelta")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Target, r.Case, r.Clients,
			formatSpread(r.OldRPS, 0), formatSpread(r.NewRPS, 0), delta(r.OldRPS, r.NewRPS),
			formatSpread(r.OldP99, 2), formatSpread(r.NewP99, 2), delta(r.OldP99, r.NewP99))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nEach figure is the median over the rounds with its min–max; \"~\": the ranges overlap, so the runs do not differ measurably.")
}

// formatSpread prints "median (min–max)".
func formatSpread(s spread, decimals int) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", decimals, s.Median, decimals, s.Min, decimals, s.Max)
}
