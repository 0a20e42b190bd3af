package main

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"

	"blogplatform/tools/capacity/plan"
)

// Components of this process's CPU. With the local platform the bench
// process hosts the gateway, the NATS server and the store besides the floor
// and (with -load go or the NATS case) the load generator; its CPU time
// (getrusage, exact) is split between them by the shares of a CPU profile
// taken over the same measured window.
const (
	compGateway = plan.Gateway
	compNATS    = plan.NATS
	compStore   = plan.Store
	compFloor   = "floor"
	compLoadGen = "loadgen"
	// compRuntime is work no goroutine of a component asked for: background
	// GC marking and sweeping, the scheduler, system threads. Each component
	// would pay its own share in a process of its own.
	compRuntime = "runtime"
	// compOther is everything else (the bench's own bookkeeping, timers,
	// the gateway's health checks' HTTP client, ...).
	compOther = "other"
)

// componentPrefixes maps function name prefixes to components. A sample
// belongs to the component of the frame nearest the leaf that matches, so a
// system call made by the gateway counts for the gateway, and a GC assist
// for the component that allocated.
var componentPrefixes = []struct{ prefix, component string }{
	{"blogplatform/tools/internal/gateway.", compGateway},
	{"blogplatform/kong/apikey_auth_plugin/", compGateway},
	{"github.com/nats-io/nats-server/", compNATS},
	{"github.com/FerretDB/", compStore},
	{"modernc.org/", compStore}, // SQLite (transpiled C) and its libc
	{"blogplatform/devkit/loadtest.StartFloor", compFloor},
	{"github.com/gin-gonic/", compFloor}, // only the floor is a gin engine in this process
	{"blogplatform/devkit/loadtest.", compLoadGen},
	{"github.com/nats-io/nats.go", compLoadGen}, // the NATS case's client
}

// runtimeRoots are the entry points of the runtime's own goroutines and
// threads.
var runtimeRoots = []string{
	"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.forcegchelper",
	"runtime.mstart", "runtime.mcall", "runtime.morestack", "runtime.sysmon", "runtime.runfinq",
	"runtime._System", "runtime._GC", "runtime._ExternalCode", "runtime._VDSO",
}

// classify names the component of one stack (leaf first). target and driver
// resolve what the function names cannot: the HTTP server's own frames
// (reading a request before any handler runs) belong to whichever server the
// case drives, the floor's or the gateway's; the HTTP client's connection
// goroutines to the gateway (a proxied request with a body) under wrk, to the
// load generator under -load go.
func classify(stack []string, target, driver string) string {
	for _, fn := range stack {
		for _, p := range componentPrefixes {
			if strings.HasPrefix(fn, p.prefix) {
				return p.component
			}
		}
	}
	for _, fn := range stack {
		switch {
		case strings.HasPrefix(fn, "net/http.(*conn).serve") || strings.HasPrefix(fn, "net/http.(*Server)."):
			switch target {
			case "gateway":
				return compGateway
			case "floor":
				return compFloor
			}
			return compOther
		case strings.HasPrefix(fn, "net/http.(*persistConn)") || strings.HasPrefix(fn, "net/http.(*Transport)"):
			if target == "gateway" && driver == "wrk" {
				return compGateway
			}
			if driver == "go" {
				return compLoadGen
			}
			return compOther
		}
	}
	if len(stack) == 0 {
		return compRuntime
	}
	root := stack[len(stack)-1]
	for _, r := range runtimeRoots {
		if strings.HasPrefix(root, r) {
			return compRuntime
		}
	}
	return compOther
}

// componentShares reads a CPU profile and returns each component's share of
// its samples (summing to 1) and the profile's CPU time in seconds.
func componentShares(raw []byte, target, driver string) (map[string]float64, float64, error) {
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("cpu profile: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, 0, fmt.Errorf("cpu profile: no cpu sample type in %v", p.SampleType)
	}
	ns := map[string]int64{}
	var total int64
	var stack []string
	for _, s := range p.Sample {
		stack = stack[:0]
		for _, loc := range s.Location {
			// Inlined calls are listed innermost first within a location.
			for _, line := range loc.Line {
				if line.Function != nil {
					stack = append(stack, line.Function.Name)
				}
			}
		}
		v := s.Value[idx]
		ns[classify(stack, target, driver)] += v
		total += v
	}
	shares := map[string]float64{}
	if total == 0 {
		return shares, 0, nil
	}
	for c, v := range ns {
		shares[c] = float64(v) / float64(total)
	}
	return shares, float64(total) / 1e9, nil
}

// windowProfile profiles this process over one measured window. It is not
// safe for concurrent use (the Go runtime allows one CPU profile at a time).
type windowProfile struct {
	buf     bytes.Buffer
	running bool
}

func (w *windowProfile) start() error {
	w.buf.Reset()
	if err := pprof.StartCPUProfile(&w.buf); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	w.running = true
	return nil
}

// stop ends the profile and returns its bytes (valid until the next start).
func (w *windowProfile) stop() []byte {
	if !w.running {
		return nil
	}
	pprof.StopCPUProfile()
	w.running = false
	return w.buf.Bytes()
}

// mergeProfiles merges the windows' profiles into one (the -cpuprofile file).
func mergeProfiles(raws [][]byte) (*profile.Profile, error) {
	var ps []*profile.Profile
	for _, raw := range raws {
		p, err := profile.Parse(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return profile.Merge(ps)
}
