// Command bench measures the platform end to end. It starts the local
// platform (or targets a running gateway with -url) and, in the same process,
// a trivial gin service (the floor: gin.New() in release mode answering a
// 49-byte JSON envelope), seeds a dataset through the API, then measures every
// case through the gateway, directly against the service replicas and on the
// floor, with wrk when it is on PATH (else a Go closed-loop generator).
//
// Every case is measured once per round and the rounds are interleaved, so
// the drift of a shared machine hits all cases alike; the bench prints each
// case's median and spread (min–max) over the rounds, allocations per request
// read from the replicas' metrics, and the same-run ratios with their targets
// (case ÷ floor, gateway ÷ direct, protected ÷ public). -soak runs a mix at
// full load while sampling each replica's heap, goroutines and RSS; -startup
// restarts each service's replica and times it to ready.
//
// With the local platform every measurement also records the CPU per request
// of each component: each replica (its metrics), redis-server (INFO cpu and
// its command count) and, inside this process, the gateway, the NATS server
// and the store, split out of this process's CPU time by a CPU profile of the
// same window (cpuattr.go). -costs writes them for .tools/capacity.
//
//	go run ./.tools/bench                                  # 3 rounds, 16 and 64 clients, start-up times
//	go run ./.tools/bench -soak 60s -json /tmp/bench.json   # everything, results as JSON
//	go run ./.tools/bench -clients 16 -only verify          # one case (and the floor)
//	go run ./.tools/bench -load go -replicas 2              # the Go driver; two replicas per service
//	go run ./.tools/bench -url http://127.0.0.1:8000 -direct=false
//	go run ./.tools/bench -clients 16 -startup 0 -costs .tools/capacity/measured.json   # the capacity plan's input
//	go run ./.tools/bench -blog-replicas 1,2,3 -only "GET /blog/" -startup 0          # what one more blog replica buys
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"blogplatform/devkit/envelope"
	"blogplatform/devkit/loadtest"
	"blogplatform/tools/capacity/plan"
	"blogplatform/tools/internal/platform"
)

type options struct {
	url, apiKey, adminEmail, adminPassword string
	blogs, drafts, textSize                int
	clients                                []int
	duration, warmup                       time.Duration
	direct, floor, signin                  bool
	replicas, rounds                       int
	only, load, jsonFile, cpuProfile       string
	soak                                   time.Duration
	soakClients, startups                  int
	// blogReplicas, when set, runs the whole bench once per count with that
	// many blog replicas (auth keeps -replicas) and compares the runs.
	blogReplicas []int
	// blogCount is the blog replica count of one run (0: -replicas).
	blogCount int
	costsFile string
	attribute bool
	from      string
	idle      time.Duration
}

func main() {
	// Subcommands read result files; the rest of main runs a benchmark.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "compare":
			os.Exit(compareMain(os.Args[2:], os.Stdout, os.Stderr))
		case "chart":
			os.Exit(chartMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	var o options
	var clients string
	defaultLoad := "go"
	if wrkVersion() != "" {
		defaultLoad = "wrk"
	}
	flag.StringVar(&o.url, "url", "", "gateway URL of a running platform (default: start the local platform)")
	flag.StringVar(&o.apiKey, "key", platform.DevAPIKey, "x-api-key")
	flag.StringVar(&o.adminEmail, "admin", platform.DevAdminEmail, "admin email (holds AUTHOR and EDITOR)")
	flag.StringVar(&o.adminPassword, "password", platform.DevAdminPassword, "admin password")
	flag.IntVar(&o.blogs, "blogs", 200, "published blogs to seed (up to 100000)")
	flag.IntVar(&o.drafts, "drafts", 64, "drafts to seed for the admin (the write case updates them in turn: several per client keep concurrent writers off each other's blog and its write lock)")
	flag.IntVar(&o.textSize, "size", 3600, "approximate blog size in bytes")
	flag.StringVar(&clients, "clients", "16,64", "comma-separated client counts")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per case and round (whole seconds with wrk)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each measurement")
	flag.BoolVar(&o.direct, "direct", true, "also measure directly against the replicas (local platform only)")
	flag.BoolVar(&o.floor, "floor", true, "measure the floor (a trivial gin handler in this process)")
	flag.BoolVar(&o.signin, "signin", false, "also measure POST /auth/signin/basic (bcrypt-bound: its hashes still in flight when a run ends load the next case)")
	flag.IntVar(&o.replicas, "replicas", 1, "replicas per service when starting the platform")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds: every case is measured once per round")
	flag.StringVar(&o.only, "only", "", "run only cases whose name contains this")
	flag.StringVar(&o.load, "load", defaultLoad, "load driver: wrk (default when on PATH) or go")
	flag.StringVar(&o.jsonFile, "json", "", "write every result (per round), the ratios, soak and start-up figures to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the floor and, with the local platform, the gateway, NATS and the store) over every measured window (warm-ups excluded), merged, to this file")
	flag.DurationVar(&o.soak, "soak", 0, "after the rounds, drive a mix at full load for this long, sampling each replica's memory every 5s (0: off)")
	flag.IntVar(&o.soakClients, "soak-clients", 64, "clients of the soak")
	flag.IntVar(&o.startups, "startup", 3, "times each service's replica is restarted and timed to ready (0: off; local platform only)")
	var blogReplicas string
	flag.StringVar(&blogReplicas, "blog-replicas", "", "comma-separated blog replica counts (e.g. 1,2,3): run everything once per count, auth fixed at -replicas, and compare (local platform only)")
	flag.StringVar(&o.costsFile, "costs", "", "write the CPU cost per request of every component for each route through the gateway (at the first -clients count) to this file, for .tools/capacity")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "before the rounds, measure each component's CPU with no requests for this long and subtract that rate from the CPU per request by component (0: off; local platform only)")
	flag.StringVar(&o.from, "from", "", "measure nothing: read an earlier -json report (one run), summarise it again and write -costs from it")
	flag.BoolVar(&o.attribute, "attribute", true, "split this process's CPU between the gateway, NATS and the store by a CPU profile of each measured window (local platform only)")
	flag.Parse()
	if blogReplicas != "" {
		for _, c := range strings.Split(blogReplicas, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "bench: bad -blog-replicas %q\n", blogReplicas)
				os.Exit(2)
			}
			o.blogReplicas = append(o.blogReplicas, n)
		}
		if o.url != "" {
			fmt.Fprintln(os.Stderr, "bench: -blog-replicas starts the local platform; it cannot be used with -url")
			os.Exit(2)
		}
	}
	for _, c := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: bad -clients %q\n", clients)
			os.Exit(2)
		}
		o.clients = append(o.clients, n)
	}
	if o.load != "wrk" && o.load != "go" {
		fmt.Fprintf(os.Stderr, "bench: -load must be wrk or go, not %q\n", o.load)
		os.Exit(2)
	}
	if o.load == "wrk" && wrkVersion() == "" {
		fmt.Fprintln(os.Stderr, "bench: -load wrk but wrk is not on PATH")
		os.Exit(2)
	}
	if o.rounds < 1 {
		o.rounds = 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runAll runs the bench once, or once per -blog-replicas count followed by
// the comparison, and writes the -json and -costs files.
func runAll(ctx context.Context, o options) error {
	if o.from != "" {
		return fromReport(o)
	}
	if len(o.blogReplicas) == 0 {
		rep, err := run(ctx, o)
		if rep == nil {
			return err
		}
		return errors.Join(err, writeOutputs(o, rep, rep))
	}
	sr := &scalingReport{BlogReplicas: o.blogReplicas, AuthReplicas: o.replicas}
	var errs []error
	for _, n := range o.blogReplicas {
		one := o
		one.blogCount = n
		// One costs file: the first count's (the capacity plan's unit is
		// one replica's cost; more replicas on the same cores cost the same
		// per request or more).
		fmt.Printf("\n=== %d blog replica(s), %d auth replica(s) ===\n", n, o.replicas)
		rep, err := run(ctx, one)
		if rep != nil {
			sr.Reports = append(sr.Reports, rep)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%d blog replica(s): %w", n, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	sr.Table = scalingTable(sr.Reports)
	printScaling(os.Stdout, sr)
	if len(sr.Reports) > 0 {
		errs = append(errs, writeOutputs(o, sr, sr.Reports[0]))
	}
	return errors.Join(errs...)
}

// fromReport summarises an earlier report's runs again (with this
// version's summary) and writes the costs file from it.
func fromReport(o options) error {
	if o.costsFile == "" {
		return errors.New("-from needs -costs")
	}
	raw, err := os.ReadFile(o.from)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("%s: %w", o.from, err)
	}
	if len(rep.Runs) == 0 {
		return fmt.Errorf("%s: no runs (a -blog-replicas report holds one report per count)", o.from)
	}
	if rep.Command == "" {
		return fmt.Errorf("%s: the report does not say which command measured it", o.from)
	}
	rep.Summary = summarizeRuns(rep.Runs)
	printComponents(os.Stdout, &rep)
	return writeOutputs(options{costsFile: o.costsFile}, nil, &rep)
}

// writeOutputs writes the -json file (v: one report or the scaling report)
// and the -costs file (from rep).
func writeOutputs(o options, v any, rep *report) error {
	if o.jsonFile != "" {
		raw, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(raw, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("bench: results written to %s\n", o.jsonFile)
	}
	if o.costsFile != "" {
		c, err := costsOf(rep, rep.Command)
		if err != nil {
			return fmt.Errorf("costs: %w", err)
		}
		raw, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.costsFile, append(raw, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("bench: CPU costs per request written to %s\n", o.costsFile)
	}
	return nil
}

// target is where requests go: the gateway (with the /auth, /blog prefixes and
// the API key), the replicas directly (service paths, no key), or the floor.
type target struct {
	name     string
	authURLs []string // base URLs; with several, the load is spread over them
	blogURLs []string
	prefixed bool
	header   http.Header
}

func (t target) bases(service string) []string {
	if service == "auth" {
		return t.authURLs
	}
	return t.blogURLs
}

func (t target) path(service, p string) string {
	if t.prefixed {
		return "/" + service + p
	}
	return p
}

// httpRequest is one request of a case; a case rotates over its requests.
type httpRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// job is one case against one target, ready to drive.
type job struct {
	target, name, service string
	bases                 []string
	reqs                  []httpRequest
	// do, when set, is one request of a case that is not HTTP; it always
	// runs on the Go driver.
	do func(ctx context.Context) error
	// idle sends nothing: the window measures what every component spends
	// with no requests (health probes, heartbeats, Redis's cron).
	idle bool
}

// runResult is one measurement: a job at a client count in one round.
type runResult struct {
	Round    int           `json:"round"`
	Target   string        `json:"target"`
	Case     string        `json:"case"`
	Clients  int           `json:"clients"`
	Driver   string        `json:"driver"`
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"-"`
	P99      time.Duration `json:"-"`
	P50ms    float64       `json:"p50_ms"`
	P99ms    float64       `json:"p99_ms"`
	// ServerAllocsPerReq is the replicas' allocations (go_memstats_mallocs_total
	// of every replica, both services) during the run ÷ requests.
	ServerAllocsPerReq float64            `json:"server_allocs_per_req,omitempty"`
	ServiceAllocs      map[string]float64 `json:"service_allocs_per_req,omitempty"`
	// ProcessAllocsPerReq is this process's allocations ÷ requests. With the
	// local platform this process hosts the gateway, the NATS server and the
	// store (Redis and the replicas are processes of their own), so it is
	// the gateway's share for gateway cases (plus NATS for protected
	// routes), NATS's share for direct protected routes, the floor's for the
	// floor. With -load go or the NATS case the load generator is in it too.
	ProcessAllocsPerReq float64 `json:"process_allocs_per_req"`
	// ServerCPUus is the replicas' CPU time (process_cpu_seconds_total, every
	// replica) ÷ requests, in µs; ProcessCPUus the same for this process
	// (see ProcessAllocsPerReq). Together with wrk's share (the rest) they
	// show where a saturated machine's two cores went.
	ServerCPUus  float64            `json:"server_cpu_us_per_req,omitempty"`
	ServiceCPUus map[string]float64 `json:"service_cpu_us_per_req,omitempty"`
	ProcessCPUus float64            `json:"process_cpu_us_per_req"`
	// ReplicaCPUus is each replica's CPU ÷ requests, in µs.
	ReplicaCPUus map[string]float64 `json:"replica_cpu_us_per_req,omitempty"`
	// ComponentCPUus is CPU µs per request by component: the services
	// (auth, blog: all their replicas), redis (redis-server's INFO cpu), and
	// this process's CPU split by a CPU profile of the same window into
	// gateway, nats, store, floor, loadgen, runtime (background GC,
	// scheduler) and other (see componentPrefixes). Each component's idle
	// CPU over the window (-idle) is subtracted.
	ComponentCPUus map[string]float64 `json:"component_cpu_us_per_req,omitempty"`
	// RedisCommandsPerReq is redis-server's total_commands_processed delta
	// ÷ requests.
	RedisCommandsPerReq float64 `json:"redis_commands_per_req,omitempty"`
	// ProfiledCPUs is the CPU time the window's profile sampled (seconds),
	// the base of the component shares (100 samples per CPU second).
	ProfiledCPUs float64   `json:"profiled_cpu_s,omitempty"`
	LoadAvg1     float64   `json:"loadavg1"`
	Start        time.Time `json:"start"`
}

type bench struct {
	o        options
	client   *http.Client
	scraper  *http.Client
	plat     *platform.Platform // nil with -url
	replicas []*platform.Replica
	redis    *redisStats // nil with -url
	// idleRates is each component's CPU seconds per second with no load,
	// subtracted from every measurement's component costs.
	idleRates map[string]float64
	prof      windowProfile
	// profiles keeps each window's profile for -cpuprofile.
	profiles [][]byte
}

func run(ctx context.Context, o options) (*report, error) {
	b := &bench{o: o, client: loadtest.HTTPClient(256), scraper: &http.Client{Timeout: 5 * time.Second}}
	blogCount := o.replicas
	if o.blogCount > 0 {
		blogCount = o.blogCount
	}
	rep := &report{Started: time.Now().UTC(), Driver: o.load, WrkVersion: wrkVersion(), Cores: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Replicas: o.replicas, BlogReplicas: blogCount, Blogs: o.blogs, Rounds: o.rounds, Clients: o.clients,
		Duration: o.duration.String(), Warmup: o.warmup.String(), LoadAvgStart: loadavg(),
		Command: strings.Join(append([]string{"go run ./.tools/bench"}, os.Args[1:]...), " ")}
	backend := "external (-url)"
	gatewayURL := o.url
	var direct *target
	if gatewayURL == "" {
		root, err := platform.FindRepoRoot(".")
		if err != nil {
			return nil, err
		}
		rep.Dir = root
		rep.Commit = gitCommit(root)
		kongFile, err := withoutRateLimits(filepath.Join(root, "kong", "kong-load-balanced.yml"))
		if err != nil {
			return nil, err
		}
		defer os.Remove(kongFile)
		fmt.Printf("bench: starting the local platform (%d auth and %d blog replica(s), in-memory store)...\n", o.replicas, blogCount)
		p, err := platform.Start(ctx, platform.Options{
			RepoRoot: root, GatewayAddr: "127.0.0.1:0", Memory: true, Replicas: o.replicas, KongFile: kongFile,
			ServiceReplicas: map[string]int{"blog": blogCount},
			ServiceEnv: map[string]map[string]string{
				// The benchmark signs in from one address far more often than
				// the per-address limits allow; measure the service, not the limiter.
				"auth": {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_BURST": "100000", "LOG_LEVEL": "warn",
					// Each sign-in counts as an attempt until it succeeds; 16 or 64 at
					// once on one account would otherwise hit the failure limit.
					"SIGNIN_FAILURE_LIMIT": "1000000"},
				"blog": {"LOG_LEVEL": "warn"},
			},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			return nil, err
		}
		defer p.Stop()
		b.plat = p
		b.replicas = p.Replicas()
		gatewayURL = p.GatewayURL()
		backend = p.Info().StoreBackend
		if info := p.Info(); !info.RedisStandIn {
			b.redis = newRedisStats(info.RedisAddr, p.RedisAdminPassword())
			defer b.redis.Close()
		}
		if o.direct {
			d := target{name: "direct", header: http.Header{}}
			for _, r := range b.replicas {
				if r.Service == "auth" {
					d.authURLs = append(d.authURLs, "http://"+r.Addr)
				} else {
					d.blogURLs = append(d.blogURLs, "http://"+r.Addr)
				}
			}
			direct = &d
		}
	}
	rep.Store = backend
	gw := target{name: "gateway", authURLs: []string{gatewayURL}, blogURLs: []string{gatewayURL}, prefixed: true,
		header: http.Header{"X-Api-Key": {o.apiKey}}}

	var floor *loadtest.Floor
	if o.floor {
		var err error
		if floor, err = loadtest.StartFloor(); err != nil {
			return nil, err
		}
		defer floor.Close()
	}

	fmt.Printf("bench: seeding %d published blogs (~%d B) and %d drafts through the gateway...\n", o.blogs, o.textSize, o.drafts)
	start := time.Now()
	data, err := seed(ctx, b.client, gw, o)
	if err != nil {
		return nil, err
	}
	fmt.Printf("bench: seeded in %s\n\n", time.Since(start).Round(time.Millisecond))

	targets := []target{gw}
	if direct != nil {
		targets = append(targets, *direct)
	}
	var jobs []job
	// The floor runs whatever -only says: every ratio to it needs it in the
	// same round.
	if floor != nil {
		jobs = append(jobs, job{target: "floor", name: caseFloor, service: "floor", bases: []string{floor.URL},
			reqs: []httpRequest{{method: http.MethodGet, path: loadtest.FloorPath}}})
	}
	for _, c := range benchCases(data) {
		if o.only != "" && !strings.Contains(c.name, o.only) || c.name == caseSignin && !o.signin {
			continue
		}
		for _, t := range targets {
			jobs = append(jobs, job{target: t.name, name: c.name, service: c.service, bases: t.bases(c.service), reqs: c.reqs(t)})
		}
	}
	if b.plat != nil && (o.only == "" || strings.Contains(caseNATSAuth, o.only)) {
		j, closeNATS, err := natsAuthJob(b.plat, data.accessToken)
		if err != nil {
			return nil, err
		}
		defer closeNATS()
		jobs = append(jobs, j)
	}
	fmt.Printf("cores=%d GOMAXPROCS=%d store=%s load=%s (%s) replicas=%d (blog %d) blogs=%d rounds=%d duration=%s warmup=%s commit=%s\n",
		rep.Cores, rep.GOMAXPROCS, backend, o.load, rep.WrkVersion, o.replicas, blogCount, o.blogs, o.rounds, o.duration, o.warmup, rep.Commit)
	if b.plat != nil && o.idle > 0 {
		rates, err := b.measureIdle(ctx, o.idle)
		if err != nil {
			return rep, fmt.Errorf("idle window: %w", err)
		}
		b.idleRates, rep.IdleCPU = rates, rates
		fmt.Printf("idle CPU (ms per second, subtracted from the CPU per request by component):")
		for _, c := range componentColumns {
			fmt.Printf(" %s=%.2f", c, 1e3*rates[c])
		}
		fmt.Println()
	}
	rounds := make([]map[key]runResult, o.rounds)
	for round := range rounds {
		rounds[round] = map[key]runResult{}
	}
	// Writes run in rounds of their own after the reads': a write
	// invalidates cached lists, and refilling the similar-blogs lists on the
	// embedded store (a scan each) outlasts a warm-up, so interleaved writes
	// would make the following reads measure cache misses.
	var reads, writes []job
	for _, j := range jobs {
		if j.name == caseUpdate {
			writes = append(writes, j)
		} else {
			reads = append(reads, j)
		}
	}
	// Progress: each measurement's line starts with how many are done and
	// about how long the rest takes at the pace so far.
	total, done, started := len(jobs)*len(o.clients)*o.rounds, 0, time.Now()
	progress := func() string {
		done++
		left := time.Duration(float64(time.Since(started)) / float64(done) * float64(total-done))
		return fmt.Sprintf("[%d/%d, ~%s left] ", done, total, left.Round(time.Second))
	}
	for _, phase := range [][]job{reads, writes} {
		if len(phase) == 0 {
			continue
		}
		for round := range o.rounds {
			fmt.Printf("\nround %d/%d (load average %s)\n", round+1, o.rounds, loadavgString())
			for _, j := range phase {
				for _, n := range o.clients {
					res, err := b.measure(ctx, j, n, round+1)
					if ctx.Err() != nil {
						return rep, ctx.Err()
					}
					if err != nil {
						// One failed measurement (a replica down, wrk refused) must
						// not throw away the rest of a long run.
						msg := fmt.Sprintf("round %d: %s %s at %d clients: %v", round+1, j.target, j.name, n, err)
						rep.Failures = append(rep.Failures, msg)
						fmt.Println(progress()+"FAILED", msg)
						continue
					}
					rounds[round][key{j.target, j.name, n}] = res
					rep.Runs = append(rep.Runs, res)
					fmt.Println(progress() + res.line())
				}
			}
		}
	}
	if o.cpuProfile != "" {
		if err := b.writeProfile(o.cpuProfile); err != nil {
			rep.Failures = append(rep.Failures, "cpu profile: "+err.Error())
		}
	}
	rep.Summary = summarizeRuns(rep.Runs)
	for _, n := range o.clients {
		for _, spec := range ratioSpecs {
			rep.Ratios = append(rep.Ratios, ratio(spec, n, rounds))
		}
	}
	printSummary(os.Stdout, rep)
	printComponents(os.Stdout, rep)

	if o.soak > 0 {
		if s, err := b.soak(ctx, gw, data); err != nil {
			rep.Failures = append(rep.Failures, "soak: "+err.Error())
			fmt.Println("FAILED soak:", err)
		} else {
			rep.Soak = s
			printSoak(os.Stdout, s)
		}
	}
	if o.startups > 0 && b.plat != nil && ctx.Err() == nil {
		if st, err := b.startup(ctx); err != nil {
			rep.Failures = append(rep.Failures, "start-up: "+err.Error())
			fmt.Println("FAILED start-up:", err)
		} else {
			rep.Startup = st
			printStartup(os.Stdout, st)
		}
	}
	rep.Finished = time.Now().UTC()
	rep.LoadAvgEnd = loadavg()
	fmt.Printf("\nload average at the end: %s\n", loadavgString())
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%d measurement(s) failed:\n  %s", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
	}
	return rep, ctx.Err()
}

// writeProfile merges the measured windows' profiles into path.
func (b *bench) writeProfile(path string) error {
	if len(b.profiles) == 0 {
		return errors.New("no profiled window")
	}
	p, err := mergeProfiles(b.profiles)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// measure warms up, then drives j at clients for the measured duration and
// reads the allocation counters of the replicas and of this process around
// the measured part.
func (b *bench) measure(ctx context.Context, j job, clients, round int) (runResult, error) {
	if b.o.warmup > 0 && !j.idle {
		if _, err := b.drive(ctx, j, clients, b.o.warmup); err != nil {
			return runResult{}, err
		}
	}
	driver := b.o.load
	if j.do != nil {
		driver = "go"
	}
	res := runResult{Round: round, Target: j.target, Case: j.name, Clients: clients, Driver: driver,
		LoadAvg1: loadavg()[0], Start: time.Now().UTC()}
	before, err := b.counters(ctx)
	if err != nil {
		return res, err
	}
	var redisBefore, redisAfter redisCounters
	if b.redis != nil {
		if redisBefore, err = b.redis.read(ctx); err != nil {
			return res, err
		}
	}
	profiling := b.plat != nil && b.o.attribute || b.o.cpuProfile != ""
	if profiling {
		if err := b.prof.start(); err != nil {
			return res, err
		}
	}
	windowStart := time.Now()
	procBefore, cpuBefore := processMallocs(), processCPU()
	w, err := b.drive(ctx, j, clients, b.o.duration)
	procAfter, cpuAfter := processMallocs(), processCPU()
	window := time.Since(windowStart)
	var prof []byte
	if profiling {
		prof = b.prof.stop()
	}
	if err != nil {
		return res, err
	}
	if b.o.cpuProfile != "" {
		b.profiles = append(b.profiles, bytes.Clone(prof))
	}
	after, err := b.counters(ctx)
	if err != nil {
		return res, err
	}
	if b.redis != nil {
		if redisAfter, err = b.redis.read(ctx); err != nil {
			return res, err
		}
	}
	res.Requests, res.Errors, res.RPS, res.P50, res.P99 = w.Requests, w.Errors(), w.RPS, w.P50, w.P99
	res.P50ms, res.P99ms = msOf(w.P50), msOf(w.P99)
	if res.Requests > 0 {
		n := float64(res.Requests)
		res.ProcessAllocsPerReq = float64(procAfter-procBefore) / n
		res.ProcessCPUus = float64((cpuAfter-cpuBefore)/time.Microsecond) / n
		if len(b.replicas) > 0 {
			res.ServiceAllocs, res.ServiceCPUus = map[string]float64{}, map[string]float64{}
			res.ReplicaCPUus, res.ComponentCPUus = map[string]float64{}, map[string]float64{}
			for _, r := range b.replicas {
				d := (after[r.Name][mMallocs] - before[r.Name][mMallocs]) / n
				res.ServiceAllocs[r.Service] += d
				res.ServerAllocsPerReq += d
				c := (after[r.Name][mCPU] - before[r.Name][mCPU]) * 1e6 / n
				res.ServiceCPUus[r.Service] += c
				res.ReplicaCPUus[r.Name] = c
				res.ComponentCPUus[r.Service] += c
				res.ServerCPUus += c
			}
		}
		if b.redis != nil {
			res.ComponentCPUus[plan.Redis] = (redisAfter.CPU - redisBefore.CPU) * 1e6 / n
			// The first INFO is among the commands the second one counts.
			res.RedisCommandsPerReq = max(0, redisAfter.Commands-redisBefore.Commands-1) / n
		}
		if b.plat != nil && b.o.attribute {
			shares, profiled, err := componentShares(prof, j.target, driver)
			if err != nil {
				return res, err
			}
			res.ProfiledCPUs = profiled
			for comp, share := range shares {
				res.ComponentCPUus[comp] += share * res.ProcessCPUus
			}
		}
		subtractIdle(res.ComponentCPUus, b.idleRates, window, n)
	}
	return res, nil
}

// subtractIdle removes from each component's CPU µs per request what it
// spends with no requests at all (rates: CPU seconds per second, measured
// once by an idle window) over window: at a few requests per second (the
// writes on the embedded store) the health probes, heartbeats and Redis's
// cron would otherwise count as the requests' cost. Never below 0.
func subtractIdle(cpu map[string]float64, rates map[string]float64, window time.Duration, requests float64) {
	for comp, rate := range rates {
		if v, ok := cpu[comp]; ok {
			cpu[comp] = max(0, v-rate*window.Seconds()*1e6/requests)
		}
	}
}

// measureIdle measures every component's CPU over an idle window and keeps
// the rates for subtractIdle.
func (b *bench) measureIdle(ctx context.Context, d time.Duration) (map[string]float64, error) {
	saved := b.o.duration
	b.o.duration = d
	defer func() { b.o.duration = saved }()
	start := time.Now()
	res, err := b.measure(ctx, job{target: "idle", name: "idle", idle: true}, 0, 0)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	rates := map[string]float64{}
	for comp, us := range res.ComponentCPUus {
		// One "request" per window: us is the window's CPU in µs.
		rates[comp] = us / 1e6 / secs
	}
	return rates, nil
}

// counters reads the allocation and CPU counters of every replica.
func (b *bench) counters(ctx context.Context) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	for _, r := range b.replicas {
		m, err := scrape(ctx, b.scraper, r.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		out[r.Name] = m
	}
	return out, nil
}

// drive runs the load for d with the chosen driver.
func (b *bench) drive(ctx context.Context, j job, clients int, d time.Duration) (wrkResult, error) {
	if j.idle {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return wrkResult{Requests: 1}, nil
	}
	if j.do != nil {
		res := loadtest.Run(ctx, loadtest.Options{Name: j.name, Clients: clients, Duration: d}, func(ctx context.Context, _ int) error {
			return j.do(ctx)
		})
		return wrkResult{Requests: res.Requests, RPS: res.RequestsPerSecond(), P50: res.P50, P99: res.P99, Non2xx3xx: res.Errors}, nil
	}
	if b.o.load == "wrk" {
		return runWrk(ctx, j.bases, j.reqs, clients, d)
	}
	var counter atomic.Uint64
	nb, nr := uint64(len(j.bases)), uint64(len(j.reqs))
	res := loadtest.Run(ctx, loadtest.Options{Name: j.name, Clients: clients, Duration: d}, func(ctx context.Context, _ int) error {
		i := counter.Add(1)
		r := j.reqs[(i/nb)%nr]
		return loadtest.Send(ctx, b.client, r.method, j.bases[i%nb]+r.path, r.header, r.body, http.StatusOK)
	})
	return wrkResult{Requests: res.Requests, RPS: res.RequestsPerSecond(), P50: res.P50, P99: res.P99, Non2xx3xx: res.Errors}, nil
}

func (r runResult) line() string {
	s := fmt.Sprintf("%-8s %-44s c=%-3d req/s=%-8.0f p50=%-9s p99=%-9s errors=%d/%d",
		r.Target, r.Case, r.Clients, r.RPS, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Errors, r.Requests)
	for _, m := range []struct {
		label    string
		services map[string]float64
		process  float64
	}{{"allocs/req", r.ServiceAllocs, r.ProcessAllocsPerReq}, {"cpu µs/req", r.ServiceCPUus, r.ProcessCPUus}} {
		s += " " + m.label
		if m.services != nil {
			s += fmt.Sprintf(" auth=%.0f blog=%.0f", m.services["auth"], m.services["blog"])
		}
		if r.inProcess() {
			s += fmt.Sprintf(" bench=%.0f", m.process)
		}
	}
	return s + fmt.Sprintf(" load=%.2f", r.LoadAvg1)
}

// inProcess reports whether this process took part in the case: it serves
// the floor and, with the local platform, hosts the gateway, NATS and the
// store. Against an external gateway (-url) it only drives the load.
func (r runResult) inProcess() bool {
	return r.Target == "floor" || r.ServiceAllocs != nil
}

// benchCase is one measured route; reqs gives its requests for a target.
type benchCase struct {
	name, service string
	reqs          func(t target) []httpRequest
}

func benchCases(d *dataset) []benchCase {
	withBearer := func(h http.Header) http.Header {
		h = h.Clone()
		h.Set("Authorization", "Bearer "+d.accessToken)
		return h
	}
	// Cached reads rotate over a few hot ids, warmed by the warm-up.
	hot := d.publishedIDs[:min(len(d.publishedIDs), 20)]
	rotate := func(service, prefix string) func(t target) []httpRequest {
		return func(t target) []httpRequest {
			out := make([]httpRequest, len(hot))
			for i, id := range hot {
				out[i] = httpRequest{method: http.MethodGet, path: t.path(service, prefix+id), header: t.header}
			}
			return out
		}
	}
	one := func(service, path string, header func(t target) http.Header) func(t target) []httpRequest {
		return func(t target) []httpRequest {
			return []httpRequest{{method: http.MethodGet, path: t.path(service, path), header: header(t)}}
		}
	}
	signin, _ := json.Marshal(map[string]string{"email": d.email, "password": d.password})
	// Updates rotate over the drafts, the draft changing fastest, so two
	// requests in flight rarely race for one blog (a lost race is retried
	// by the service) and each update of a blog sets a new title.
	update := func(t target) []httpRequest {
		h := withBearer(t.header)
		h.Set("Content-Type", "application/json")
		var out []httpRequest
		for v := range 5 {
			for _, id := range d.draftIDs {
				body, _ := json.Marshal(map[string]string{"_id": id, "title": fmt.Sprintf("Bench draft %s v%d", id[len(id)-6:], v)})
				out = append(out, httpRequest{method: http.MethodPut, path: t.path("blog", "/author"), header: h, body: body})
			}
		}
		return out
	}
	return []benchCase{
		{caseID, "blog", rotate("blog", "/id/")},
		{caseLatest, "blog", one("blog", "/list/latest?page=1&limit=10", func(t target) http.Header { return t.header })},
		{caseDrafts, "blog", one("blog", "/author/drafts?page=1&limit=10", func(t target) http.Header { return withBearer(t.header) })},
		{caseSimilar, "blog", rotate("blog", "/list/similar/id/")},
		{caseVerify, "auth", one("auth", "/verify/apikey", func(t target) http.Header { return http.Header{"X-Api-Key": {d.apiKey}} })},
		{caseProfile, "auth", one("auth", "/profile/mine", func(t target) http.Header { return withBearer(t.header) })},
		{caseUpdate, "blog", update},
		{caseSignin, "auth", func(t target) []httpRequest {
			h := t.header.Clone()
			h.Set("Content-Type", "application/json")
			return []httpRequest{{method: http.MethodPost, path: t.path("auth", "/signin/basic"), header: h, body: signin}}
		}},
	}
}

// loadavg is /proc/loadavg's 1, 5 and 15 minute averages (zeros elsewhere).
func loadavg() [3]float64 {
	var l [3]float64
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(raw))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

func loadavgString() string {
	l := loadavg()
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

type dataset struct {
	apiKey, email, password, accessToken string
	publishedIDs, draftIDs               []string
}

func call(ctx context.Context, client *http.Client, method, url string, header http.Header, body any, out any) error {
	var payload []byte
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	var r io.Reader
	if payload != nil {
		r = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	env, err := envelope.Decode(raw)
	if err != nil || res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return env.Into(out)
	}
	return nil
}

// seed signs in as the admin (AUTHOR and EDITOR) and creates the published
// blogs and the drafts through the API, 16 at a time.
func seed(ctx context.Context, client *http.Client, gw target, o options) (*dataset, error) {
	var signin struct {
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	if err := call(ctx, client, http.MethodPost, gw.authURLs[0]+gw.path("auth", "/signin/basic"), gw.header,
		map[string]string{"email": o.adminEmail, "password": o.adminPassword}, &signin); err != nil {
		return nil, fmt.Errorf("admin sign-in: %w", err)
	}
	d := &dataset{apiKey: o.apiKey, email: o.adminEmail, password: o.adminPassword, accessToken: signin.Tokens.AccessToken}
	auth := gw.header.Clone()
	auth.Set("Authorization", "Bearer "+d.accessToken)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	words := []string{"quantum", "garden", "network", "protocol", "river", "compiler", "orbit", "harvest", "signal", "lattice", "forest", "engine"}
	text := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", max(1, o.textSize/57))
	create := func(i int, publish bool) (string, error) {
		word := words[i%len(words)]
		title := fmt.Sprintf("%s %s notes %d", strings.ToUpper(word[:1])+word[1:], words[(i/len(words))%len(words)], i)
		var blog struct {
			ID string `json:"_id"`
		}
		err := call(ctx, client, http.MethodPost, gw.blogURLs[0]+gw.path("blog", "/author"), auth, map[string]any{
			"title": title, "description": "About " + words[(i*7)%len(words)] + " and " + words[(i*3)%len(words)],
			"draftText": text, "slug": fmt.Sprintf("bench-%s-%d", run, i), "imgUrl": "https://example.com/b.png",
			"tags": []string{strings.ToUpper(words[i%len(words)]), "BENCH"},
		}, &blog)
		if err != nil || !publish {
			return blog.ID, err
		}
		if err := call(ctx, client, http.MethodPut, gw.blogURLs[0]+gw.path("blog", "/author/submit/id/"+blog.ID), auth, nil, nil); err != nil {
			return "", err
		}
		return blog.ID, call(ctx, client, http.MethodPut, gw.blogURLs[0]+gw.path("blog", "/editor/publish/id/"+blog.ID), auth, nil, nil)
	}
	ids := make([]string, o.blogs+o.drafts)
	var firstErr error
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id, err := create(i, i < o.blogs)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				ids[i] = id
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < o.blogs+o.drafts && ctx.Err() == nil; i++ {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("seeding: %w", firstErr)
	}
	if o.blogs == 0 || o.drafts == 0 {
		return nil, errors.New("seeding: -blogs and -drafts must be at least 1")
	}
	d.publishedIDs, d.draftIDs = ids[:o.blogs], ids[o.blogs:]
	return d, nil
}

// withoutRateLimits writes a copy of the Kong file without rate-limiting
// plugins: the benchmark deliberately exceeds the per-address limits.
func withoutRateLimits(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	services, _ := doc["services"].([]any)
	for _, s := range services {
		svc, _ := s.(map[string]any)
		routes, _ := svc["routes"].([]any)
		for _, r := range routes {
			route, _ := r.(map[string]any)
			plugins, _ := route["plugins"].([]any)
			kept := plugins[:0]
			for _, p := range plugins {
				if pm, _ := p.(map[string]any); pm["name"] != "rate-limiting" {
					kept = append(kept, p)
				}
			}
			route["plugins"] = kept
		}
	}
	// The API-key plugin's own per-address limits (rate_limits).
	plugins, _ := doc["plugins"].([]any)
	for _, p := range plugins {
		if pm, _ := p.(map[string]any); pm["name"] == "apikey-auth-plugin" {
			if config, ok := pm["config"].(map[string]any); ok {
				delete(config, "rate_limits")
			}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "kong-bench-*.yml")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.Write(out)
	return f.Name(), err
}
