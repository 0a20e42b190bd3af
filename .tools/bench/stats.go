package main

import (
	"fmt"
	"slices"
	"time"
)

// spread is the median and the range of one figure over the rounds.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// summarize returns the median (the mean of the two middle values for an
// even count) and the min–max of xs; N is 0 when xs is empty.
func summarize(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// key names one measured case: a target (floor, direct, gateway), a case
// and a client count.
type key struct {
	Target, Case string
	Clients      int
}

// ratioKind says how a ratio compares two cases.
type ratioKind int

const (
	// throughputRatio is num req/s ÷ den req/s; it passes at or above the target.
	throughputRatio ratioKind = iota
	// p50Difference is num p50 − den p50 in milliseconds; it passes at or
	// below the target.
	p50Difference
)

// ratioSpec is one line of the ratio table.
type ratioSpec struct {
	Name     string
	Num, Den key // Clients is filled per client count
	Kind     ratioKind
	Target   float64
}

// ratioResult is a ratio's value in every round (rounds where both cases were
// measured), summarised, with its verdict on the median.
type ratioResult struct {
	Name    string    `json:"name"`
	Clients int       `json:"clients"`
	Kind    string    `json:"kind"` // "throughput" or "p50_diff_ms"
	Target  float64   `json:"target"`
	Rounds  []float64 `json:"rounds"`
	Value   spread    `json:"value"`
	Pass    bool      `json:"pass"`
}

// ratio computes spec at clients over the rounds. Each round's value is taken
// from that round's own two measurements, so drift of the shared machine
// between rounds cancels out of the ratio.
func ratio(spec ratioSpec, clients int, rounds []map[key]runResult) ratioResult {
	num, den := spec.Num, spec.Den
	num.Clients, den.Clients = clients, clients
	out := ratioResult{Name: spec.Name, Clients: clients, Target: spec.Target, Kind: "throughput"}
	if spec.Kind == p50Difference {
		out.Kind = "p50_diff_ms"
	}
	for _, r := range rounds {
		a, okA := r[num]
		b, okB := r[den]
		if !okA || !okB {
			continue
		}
		switch spec.Kind {
		case throughputRatio:
			if b.RPS <= 0 {
				continue
			}
			out.Rounds = append(out.Rounds, a.RPS/b.RPS)
		case p50Difference:
			out.Rounds = append(out.Rounds, msOf(a.P50-b.P50))
		}
	}
	out.Value = summarize(out.Rounds)
	if out.Value.N > 0 {
		if spec.Kind == throughputRatio {
			out.Pass = out.Value.Median >= spec.Target
		} else {
			out.Pass = out.Value.Median <= spec.Target
		}
	}
	return out
}

// String formats the value (median, min–max over rounds), the target and
// the verdict.
func (r ratioResult) String() string {
	mark := "MISS"
	if r.Pass {
		mark = "pass"
	}
	if r.Value.N == 0 {
		return fmt.Sprintf("%-62s %3d  %-26s  target %-8s  n/a", r.Name, r.Clients, "not measured", r.targetString())
	}
	var v string
	if r.Kind == "throughput" {
		v = fmt.Sprintf("%3.0f %% (%.0f–%.0f %%)", 100*r.Value.Median, 100*r.Value.Min, 100*r.Value.Max)
	} else {
		v = fmt.Sprintf("%+.3f ms (%+.3f…%+.3f)", r.Value.Median, r.Value.Min, r.Value.Max)
	}
	return fmt.Sprintf("%-62s %3d  %-26s  target %-8s  %s", r.Name, r.Clients, v, r.targetString(), mark)
}

func (r ratioResult) targetString() string {
	if r.Kind == "throughput" {
		return fmt.Sprintf("≥ %.0f %%", 100*r.Target)
	}
	return fmt.Sprintf("≤ %.1f ms", r.Target)
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Case names used by the ratio table.
const (
	caseFloor   = "floor: gin.New() 49-byte JSON"
	caseID      = "GET /blog/id/:id (cached)"
	caseLatest  = "GET /blog/list/latest?page=1&limit=10"
	caseDrafts  = "GET /blog/author/drafts?page=1&limit=10"
	caseSimilar = "GET /blog/list/similar/id/:id"
	caseVerify  = "GET /auth/verify/apikey"
	caseProfile = "GET /auth/profile/mine"
	caseSignin  = "POST /auth/signin/basic"
	caseUpdate  = "PUT /blog/author (update a draft)"
)

// ratioSpecs are the targets the bench checks in every run.
var ratioSpecs = []ratioSpec{
	{Name: "direct cached GET /blog/id/:id ÷ floor", Num: key{Target: "direct", Case: caseID}, Den: key{Target: "floor", Case: caseFloor}, Target: 0.60},
	{Name: "direct GET /auth/verify/apikey ÷ floor", Num: key{Target: "direct", Case: caseVerify}, Den: key{Target: "floor", Case: caseFloor}, Target: 0.60},
	{Name: "direct GET /auth/profile/mine ÷ floor", Num: key{Target: "direct", Case: caseProfile}, Den: key{Target: "floor", Case: caseFloor}, Target: 0.50},
	{Name: "direct /author/drafts ÷ direct cached GET /id", Num: key{Target: "direct", Case: caseDrafts}, Den: key{Target: "direct", Case: caseID}, Target: 0.80},
	{Name: "gateway ÷ direct, cached GET /blog/id/:id", Num: key{Target: "gateway", Case: caseID}, Den: key{Target: "direct", Case: caseID}, Target: 0.80},
	{Name: "gateway ÷ direct, GET /auth/verify/apikey", Num: key{Target: "gateway", Case: caseVerify}, Den: key{Target: "direct", Case: caseVerify}, Target: 0.80},
	{Name: "gateway p50 − direct p50, cached GET /blog/id/:id", Num: key{Target: "gateway", Case: caseID}, Den: key{Target: "direct", Case: caseID}, Kind: p50Difference, Target: 0.3},
	{Name: "gateway p50 − direct p50, GET /auth/verify/apikey", Num: key{Target: "gateway", Case: caseVerify}, Den: key{Target: "direct", Case: caseVerify}, Kind: p50Difference, Target: 0.3},
}
