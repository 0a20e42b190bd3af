// Command capacity prints the capacity plan: from the CPU cost per request
// of each component that the bench measured (.tools/capacity/measured.json,
// written by `go run ./.tools/bench -costs ...`) and a traffic mix, the
// cores, pods, nodes, shards and members each component needs at 10k, 100k
// and 1M requests per second, what saturates first, and what changes in the
// design at each step. plan.md is its output for the committed costs; a test
// keeps the two equal.
//
//	go run ./.tools/capacity                              # the committed plan
//	go run ./.tools/capacity -mix 80,15,5 -rates 50000    # another mix and rate
//	go run ./.tools/capacity -o .tools/capacity/plan.md   # regenerate plan.md
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"blogplatform/tools/capacity/plan"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "capacity:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	s := plan.DefaultSizing
	costsPath := fs.String("costs", "", "measured costs (default: .tools/capacity/measured.json of this repository)")
	mixFlag := fs.String("mix", "90,8,2", "percent of public reads, protected reads, writes")
	ratesFlag := fs.String("rates", "10000,100000,1000000", "comma-separated request rates to size")
	out := fs.String("o", "", "write the plan to this file instead of stdout")
	fs.Float64Var(&s.ServiceCoresPerPod, "pod-cores", s.ServiceCoresPerPod, "cores per service pod")
	fs.Float64Var(&s.ServiceUtil, "pod-util", s.ServiceUtil, "target CPU utilisation of service pods (0-1)")
	fs.Float64Var(&s.GatewayCoresPerNode, "gateway-cores", s.GatewayCoresPerNode, "cores per gateway node")
	fs.Float64Var(&s.GatewayUtil, "gateway-util", s.GatewayUtil, "target CPU utilisation of gateway nodes (0-1)")
	fs.Float64Var(&s.NATSCoresPerNode, "nats-cores", s.NATSCoresPerNode, "cores per NATS node")
	fs.Float64Var(&s.NATSUtil, "nats-util", s.NATSUtil, "target CPU utilisation of NATS nodes (0-1)")
	fs.Float64Var(&s.RedisUtil, "redis-util", s.RedisUtil, "target CPU utilisation of a Redis shard's command thread (0-1)")
	fs.Float64Var(&s.MongoCoresPerMember, "mongo-cores", s.MongoCoresPerMember, "cores per MongoDB member")
	fs.Float64Var(&s.MongoUtil, "mongo-util", s.MongoUtil, "target CPU utilisation of MongoDB members (0-1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mix, err := parseMix(*mixFlag)
	if err != nil {
		return err
	}
	rates, err := parseRates(*ratesFlag)
	if err != nil {
		return err
	}
	for name, u := range map[string]float64{"pod-util": s.ServiceUtil, "gateway-util": s.GatewayUtil, "nats-util": s.NATSUtil,
		"redis-util": s.RedisUtil, "mongo-util": s.MongoUtil} {
		if u <= 0 || u > 1 {
			return fmt.Errorf("-%s must be in (0, 1], not %g", name, u)
		}
	}
	for name, c := range map[string]float64{"pod-cores": s.ServiceCoresPerPod, "gateway-cores": s.GatewayCoresPerNode,
		"nats-cores": s.NATSCoresPerNode, "mongo-cores": s.MongoCoresPerMember} {
		if c <= 0 {
			return fmt.Errorf("-%s must be positive, not %g", name, c)
		}
	}
	if *costsPath == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		*costsPath = filepath.Join(root, ".tools", "capacity", "measured.json")
	}
	costs, err := plan.Load(*costsPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := plan.Render(&buf, costs, mix, s, rates); err != nil {
		return err
	}
	if *out != "" {
		return os.WriteFile(*out, buf.Bytes(), 0o644)
	}
	_, err = os.Stdout.Write(buf.Bytes())
	return err
}

// parseMix reads "public,protected,write" percentages summing to 100.
func parseMix(s string) (plan.Mix, error) {
	parts := strings.Split(s, ",")
	if len(parts) != len(plan.Classes) {
		return nil, fmt.Errorf("-mix %q: want %d comma-separated percentages (public reads, protected reads, writes)", s, len(plan.Classes))
	}
	m := plan.Mix{}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("-mix %q: bad percentage %q", s, p)
		}
		m[plan.Classes[i]] = v / 100
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("-mix %q: %w", s, err)
	}
	return m, nil
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-rates %q: bad rate %q", s, p)
		}
		out = append(out, v)
	}
	return out, nil
}

// repoRoot walks up from the working directory to the folder with go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.work above " + dir + ": pass -costs")
		}
	}
}
