// Package plan turns the CPU cost per request that the bench measured for
// each component (service replicas, gateway, NATS, Redis, store) into a
// capacity plan: cores and replicas per component at a request rate and a
// mix of public reads, protected reads and writes, which component saturates
// first, and what changes in the design at each step.
package plan

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// Request classes of the mix.
const (
	PublicRead    = "public_read"
	ProtectedRead = "protected_read"
	Write         = "write"
)

// Classes in the order the plan lists them.
var Classes = []string{PublicRead, ProtectedRead, Write}

// Components whose CPU the bench measures per request. Auth and Blog are the
// service replicas (all replicas of the service together); Gateway, NATS and
// Store run inside the bench process on the local platform and are split out
// of its CPU by a CPU profile; Shared is the rest of that process's CPU
// (background GC, scheduler, unattributed), which the plan spreads over
// Gateway, NATS and Store in proportion to their shares; Redis is
// redis-server's own CPU (INFO cpu).
const (
	Auth    = "auth"
	Blog    = "blog"
	Gateway = "gateway"
	NATS    = "nats"
	Store   = "store"
	Redis   = "redis"
	Shared  = "shared"
)

// Costs is one bench run's measured costs: CPU per request of every
// component for each route, measured through the gateway.
type Costs struct {
	Commit   string     `json:"commit"`
	Measured time.Time  `json:"measured"`
	Command  string     `json:"command"`
	Cores    int        `json:"cores"`
	Clients  int        `json:"clients"`
	Driver   string     `json:"driver"`
	Store    string     `json:"store"`
	Rounds   int        `json:"rounds"`
	Duration string     `json:"duration"`
	LoadAvg  [3]float64 `json:"loadavg_start"`
	// Method says how each component's CPU was measured.
	Method string  `json:"method"`
	Routes []Route `json:"routes"`
}

// Route is one measured case.
type Route struct {
	Case  string `json:"case"`
	Class string `json:"class"`
	// RPS is the median req/s through the gateway on the measuring machine
	// (for reference: the plan uses only the CPU costs).
	RPS float64 `json:"rps"`
	// CPUus is µs of CPU per request by component (median over rounds).
	CPUus map[string]float64 `json:"cpu_us_per_req"`
	// RedisCommands is Redis commands per request (median over rounds).
	RedisCommands float64 `json:"redis_commands_per_req"`
}

// Load reads a costs file and checks it.
func Load(path string) (*Costs, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Costs
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Validate checks that every class has a route and every cost is a
// non-negative number.
func (c *Costs) Validate() error {
	seen := map[string]bool{}
	for _, r := range c.Routes {
		if !slices.Contains(Classes, r.Class) {
			return fmt.Errorf("route %q: unknown class %q (want one of %v)", r.Case, r.Class, Classes)
		}
		seen[r.Class] = true
		for comp, v := range r.CPUus {
			if v < 0 || v != v {
				return fmt.Errorf("route %q: bad %s cost %v", r.Case, comp, v)
			}
		}
		if r.RedisCommands < 0 {
			return fmt.Errorf("route %q: bad Redis commands per request %v", r.Case, r.RedisCommands)
		}
	}
	for _, cl := range Classes {
		if !seen[cl] {
			return fmt.Errorf("no route of class %s", cl)
		}
	}
	return nil
}
