// Command devstack runs the whole platform locally without Docker: embedded
// NATS, the embedded MongoDB-compatible store, Redis, two auth_service and two
// blog_service replicas as separate processes, and a gateway on :8000 that
// reads kong/kong-load-balanced.yml and runs the Kong plugin's API-key check.
//
//	go run ./.tools/devstack [-port 8000] [-replicas 2] [-data .data] [-memory] [-kong kong/kong-load-balanced.yml]
//	                         [-seed N] [-log-format auto|human|color|json]
//
// Run it from anywhere inside the repository. Ctrl-C stops everything.
// See README.md next to this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"blogplatform/tools/internal/platform"
	"blogplatform/tools/internal/seed"
)

func main() {
	port := flag.Int("port", 8000, "gateway port (on 127.0.0.1)")
	replicas := flag.Int("replicas", platform.DefaultReplicas, "replicas of each service")
	data := flag.String("data", platform.DefaultDataDir, "data folder of the store, relative to the repo root (kept across runs)")
	memory := flag.Bool("memory", false, "use a temporary store (in RAM when /dev/shm exists) deleted on exit; -data is not touched")
	kong := flag.String("kong", platform.DefaultKongFile, "Kong declarative file the gateway reads, relative to the repo root")
	logLevel := flag.String("log-level", "", "LOG_LEVEL of every replica (debug, info, warn, error); empty: info")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof of this process (gateway, NATS, store) on this address, e.g. 127.0.0.1:6060; empty: off")
	logFormat := flag.String("log-format", "auto", "replica log lines: human, color, json, or auto (color on a terminal unless NO_COLOR is set, json otherwise)")
	seedBlogs := flag.Int("seed", 0, "once the platform is ready, load this many demo blogs (authors, tags, drafts, submitted, published) through the API")
	flag.Parse()
	format, err := chooseLogFormat(*logFormat, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack: -log-format:", err)
		os.Exit(2)
	}
	if *seedBlogs < 0 || *seedBlogs > seed.MaxBlogs {
		fmt.Fprintf(os.Stderr, "devstack: -seed must be between 0 and %d\n", seed.MaxBlogs)
		os.Exit(2)
	}
	if err := run(runOptions{port: *port, replicas: *replicas, data: *data, memory: *memory, kong: *kong, logLevel: *logLevel,
		pprof: *pprofAddr, logFormat: format, seed: *seedBlogs}); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

type runOptions struct {
	port, replicas  int
	data, kong      string
	memory          bool
	logLevel, pprof string
	logFormat       platform.LogFormat
	seed            int
}

// chooseLogFormat resolves -log-format; auto means colours for a person at
// a terminal and JSON for anything reading the output.
func chooseLogFormat(flagValue string, out *os.File) (platform.LogFormat, error) {
	if flagValue != "auto" {
		return platform.ParseLogFormat(flagValue)
	}
	if !term.IsTerminal(int(out.Fd())) {
		return platform.LogJSON, nil
	}
	if os.Getenv("NO_COLOR") != "" {
		return platform.LogHuman, nil
	}
	return platform.LogHumanColor, nil
}

func run(o runOptions) error {
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("-port %d is not a port", o.port)
	}
	if o.replicas < 1 {
		return fmt.Errorf("-replicas must be at least 1")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var serviceEnv map[string]map[string]string
	if o.logLevel != "" {
		serviceEnv = map[string]map[string]string{"auth": {"LOG_LEVEL": o.logLevel}, "blog": {"LOG_LEVEL": o.logLevel}}
	}
	if o.pprof != "" {
		if err := servePprof(o.pprof, log); err != nil {
			return err
		}
	}

	// The first Ctrl-C (or SIGTERM) stops the platform cleanly; a second one
	// exits at once (the kernel then kills the replicas, see Pdeathsig).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintln(os.Stderr, "devstack: building the services and starting the platform...")
	p, err := platform.Start(ctx, platform.Options{
		GatewayAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)),
		Replicas:       o.replicas,
		Memory:         o.memory,
		DataDir:        o.data,
		KongFile:       o.kong,
		ServiceEnv:     serviceEnv,
		CreateEnvFiles: true,
		ProcessLogs:    os.Stdout,
		LogFormat:      o.logFormat,
		Logger:         log,
	})
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return errors.New("interrupted during start-up")
		}
		return err
	}

	stopping := make(chan struct{})
	for _, r := range p.Replicas() {
		go watch(r, stopping, log)
	}
	printBanner(os.Stdout, p, o.replicas)
	if o.seed > 0 {
		if err := seedDemo(ctx, p, o.seed); err != nil {
			log.Error("demo data", "error", err.Error())
		}
	}

	<-ctx.Done()
	close(stopping)
	stop() // restore default signal handling: a second Ctrl-C ends the process
	fmt.Fprintln(os.Stderr, "devstack: stopping (Ctrl-C again to kill at once)...")
	if err := p.Stop(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "devstack: stopped")
	return nil
}

// watch reports a replica that exits while the platform runs (a crash): the
// gateway routes around it, but the developer should know.
func watch(r *platform.Replica, stopping <-chan struct{}, log *slog.Logger) {
	err := r.Wait(context.Background())
	select {
	case <-stopping:
	default:
		log.Error("replica exited; the gateway routes around it (restart devstack to bring it back)", "replica", r.Name, "exit", fmt.Sprint(err))
	}
}

func printBanner(w io.Writer, p *platform.Platform, replicas int) {
	info := p.Info()
	line := strings.Repeat("=", 72)
	var b strings.Builder
	fmt.Fprintln(&b, line)
	fmt.Fprintf(&b, "  Blog platform ready: %s\n\n", info.GatewayURL)
	fmt.Fprintf(&b, "  API key      x-api-key: %s\n", platform.DevAPIKey)
	fmt.Fprintf(&b, "  Admin        %s / %s (LEARNER, AUTHOR, EDITOR, ADMIN)\n\n", platform.DevAdminEmail, platform.DevAdminPassword)
	fmt.Fprintf(&b, "  Try          curl -H 'x-api-key: %s' '%s/blog/list/latest?page=1&limit=10'\n", platform.DevAPIKey, info.GatewayURL)
	fmt.Fprintf(&b, "               curl %s/auth/health/ready\n", info.GatewayURL)
	fmt.Fprintf(&b, "  API docs     %s/docs (Authorize with the API key above; Try it out calls this gateway)\n", info.GatewayURL)
	fmt.Fprintf(&b, "  Admin CLI    go run ./.tools/admin apikeys list\n\n")
	for _, r := range p.Replicas() {
		fmt.Fprintf(&b, "  %-12s %s (pid %d, metrics http://%s/metrics)\n", r.Name, r.Addr, r.Pid(), r.MetricsAddr)
	}
	fmt.Fprintln(&b)
	store := info.StoreBackend + ", data in " + info.StoreDir + ", kept across runs"
	if info.StoreEphemeral {
		store = info.StoreBackend + ", temporary: data is gone when devstack stops"
	}
	fmt.Fprintf(&b, "  Store        %s (%s)\n", info.StoreURI, store)
	redis := "real redis-server, ACL users auth and blog"
	if info.RedisStandIn {
		redis = "EMBEDDED STAND-IN (" + info.RedisKind + "): no redis-server on PATH, ACL rules not enforced"
	}
	fmt.Fprintf(&b, "  Redis        %s (%s)\n", info.RedisAddr, redis)
	fmt.Fprintf(&b, "  NATS         %s (users auth and blog)\n", info.NATSURL)
	fmt.Fprintf(&b, "  Gateway      %s, %d replica(s) per service\n", info.KongFile, replicas)
	for _, n := range info.KongNotes {
		fmt.Fprintf(&b, "               %s\n", n)
	}
	fmt.Fprintf(&b, "  Config       %s/env/<replica>.env\n\n", info.WorkDir)
	fmt.Fprintln(&b, "  Logs below are prefixed with the replica name. Ctrl-C stops everything.")
	fmt.Fprintln(&b, line)
	fmt.Fprint(w, b.String())
}

// servePprof exposes this process's profiles (the gateway runs in it, next
// to the embedded NATS and store) on a listener of its own, never on the
// gateway's port.
func servePprof(addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	go func() { _ = http.Serve(ln, mux) }()
	return nil
}

// seedDemo loads demo blogs through the gateway with a progress bar on
// stderr, then says where to look.
func seedDemo(ctx context.Context, p *platform.Platform, blogs int) error {
	info := p.Info()
	fmt.Fprintf(os.Stderr, "devstack: loading %d demo blogs through %s\n", blogs, info.GatewayURL)
	res, err := seed.Run(ctx, seed.Options{
		GatewayURL: info.GatewayURL, APIKey: platform.DevAPIKey,
		AdminEmail: platform.DevAdminEmail, AdminPassword: platform.DevAdminPassword,
		Blogs: blogs, Progress: os.Stderr, Terminal: term.IsTerminal(int(os.Stderr.Fd())),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "devstack: demo data in %s: %d authors, %d published, %d submitted, %d drafts\n",
		res.Elapsed.Round(time.Millisecond), len(res.Authors), res.Published, res.Submitted, res.Drafts)
	if len(res.Authors) > 0 {
		a := res.Authors[0]
		fmt.Fprintf(os.Stderr, "devstack: sign in as a demo author: %s / %s\n", a.Email, a.Password)
	}
	if len(res.PublishedIDs) > 0 {
		fmt.Fprintf(os.Stderr, "devstack: similar blogs: curl -H 'x-api-key: %s' %s/blog/list/similar/id/%s\n",
			platform.DevAPIKey, info.GatewayURL, res.PublishedIDs[0])
	}
	return nil
}
