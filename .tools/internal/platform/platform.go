// Package platform runs the whole blog platform on one machine without
// Docker: embedded NATS (with per-service users), the embedded
// MongoDB-compatible store, Redis (redis-server from PATH, else the embedded
// stand-in), N auth_service and N blog_service replicas as separate OS
// processes, and the local gateway (package gateway) reading the Kong file.
//
// The devstack command is a thin main around Start; the end-to-end tests
// start it in-process on free ports with in-memory data.
package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"blogplatform/devkit/embedded"
	"blogplatform/tools/internal/envfiles"
	"blogplatform/tools/internal/gateway"
	"blogplatform/tools/internal/keypair"
	"blogplatform/tools/internal/kongconf"
)

// Development credentials the auth replicas seed (the values of the
// .env.example files: SEED_API_KEY, SEED_ADMIN_EMAIL, SEED_ADMIN_PASSWORD).
const (
	DevAPIKey        = "1D3F2DD1A5DE725DD4DF1D82BBB37"
	DevAdminEmail    = "admin@unusualcode.org"
	DevAdminPassword = "changeit"
)

// Defaults of Options.
const (
	DefaultReplicas      = 2
	DefaultGatewayAddr   = "127.0.0.1:8000"
	DefaultKongFile      = "kong/kong-load-balanced.yml"
	DefaultDataDir       = ".data"
	DefaultWorkDir       = ".devstack"
	DefaultReadyTimeout  = 2 * time.Minute
	DefaultDrainDelay    = 2 * time.Second
	DefaultServiceGrace  = 10 * time.Second
	stopMargin           = 5 * time.Second // beyond drain + grace before SIGKILL
	gatewayShutdownGrace = 5 * time.Second
)

// Options configures Start. The zero value runs the developer platform of the
// repository found from the working directory.
type Options struct {
	// RepoRoot is the repository root; "" searches upwards from the working
	// directory for go.work next to auth_service/ and blog_service/.
	RepoRoot string
	// GatewayAddr is the gateway's listen address; "" means 127.0.0.1:8000.
	// Use 127.0.0.1:0 for a free port.
	GatewayAddr string
	// Replicas per service; 0 means 2.
	Replicas int
	// ServiceReplicas overrides Replicas for the services it names ("auth",
	// "blog"), e.g. to measure what more blog replicas buy with auth fixed.
	ServiceReplicas map[string]int
	// Memory gives the store a temporary folder (in RAM when /dev/shm
	// exists) deleted on Stop; otherwise the data lives in DataDir.
	Memory bool
	// DataDir is the store's data folder; "" means <root>/.data.
	DataDir string
	// KongFile is the declarative file the gateway reads; "" means
	// <root>/kong/kong-load-balanced.yml.
	KongFile string
	// WorkDir holds the built binaries (bin/) and each replica's env file
	// (env/); "" means <root>/.devstack.
	WorkDir string
	// KeysDir holds auth_service's RSA pair, generated when missing; "" means
	// <root>/auth_service/keys.
	KeysDir string
	// CreateEnvFiles copies the repository's .env.example files to .env when
	// missing (what .tools/copy/envs.go does). The replicas do not need them:
	// they run with the env file written to WorkDir.
	CreateEnvFiles bool
	// ServiceEnv overrides or adds variables for every replica of a service
	// ("auth" or "blog").
	ServiceEnv map[string]map[string]string
	// DrainDelay is SHUTDOWN_DRAIN_DELAY: how long a stopping replica reports
	// not ready before closing its listener. It must exceed the gateway's
	// health interval (1s) so traffic has moved away first. 0 means 2s.
	DrainDelay time.Duration
	// ServiceGrace is SHUTDOWN_GRACE_PERIOD; 0 means 10s.
	ServiceGrace time.Duration
	// ReadyTimeout bounds the wait for every replica to be ready.
	ReadyTimeout time.Duration
	// ProcessLogs receives every replica's output, one line at a time,
	// prefixed with its name; nil discards it.
	ProcessLogs io.Writer
	// ShowHealthProbes keeps the services' log lines of successful health
	// probes (the gateway polls every replica every second); they are
	// dropped by default.
	ShowHealthProbes bool
	// LogFormat is how ProcessLogs shows the replicas' JSON lines (LogJSON:
	// unchanged).
	LogFormat LogFormat
	// Logger receives the platform's and the gateway's own messages; nil
	// discards them.
	Logger *slog.Logger

	// services replaces the real services in this package's own tests.
	services []service
}

// service describes one of the two services.
type service struct {
	name    string // auth or blog (also NATS_SERVICE_NAME and the replica prefix)
	dir     string // folder under the root; the replicas' working directory
	pkg     string // main package to build
	dbName  string
	redisDB int
}

var realServices = []service{
	{name: "auth", dir: "auth_service", pkg: "./auth_service/cmd", dbName: "auth-dev-db", redisDB: 0},
	{name: "blog", dir: "blog_service", pkg: "./blog_service/cmd", dbName: "blog-dev-db", redisDB: 2},
}

// Platform is a running local platform.
type Platform struct {
	opts Options
	root string
	log  *slog.Logger
	out  *logSink

	store *embedded.Store
	nats  *embedded.NATS
	redis *embedded.Redis
	// natsPasswords maps each service's NATS user to its password (random per
	// run: the embedded server forgets them anyway).
	natsPasswords map[string]string
	// redisPasswords maps each service's Redis ACL user to its password
	// (random per run, like the NATS ones).
	redisPasswords map[string]string

	replicas []*Replica

	gw         *gateway.Gateway
	gwListener net.Listener
	gwServer   *http.Server
	gwStop     context.CancelFunc
	gwDone     chan struct{}
	kongNotes  []string

	stopOnce sync.Once
	stopErr  error
}

// Start brings the platform up and returns once every replica is ready and
// the gateway serves. On failure everything already started is stopped.
func Start(ctx context.Context, opts Options) (*Platform, error) {
	p := &Platform{opts: opts, log: opts.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if err := p.applyDefaults(); err != nil {
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Platform) applyDefaults() error {
	o := &p.opts
	root := o.RepoRoot
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if root, err = FindRepoRoot(wd); err != nil {
			return err
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	p.root = root
	if o.GatewayAddr == "" {
		o.GatewayAddr = DefaultGatewayAddr
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	abs := func(path, def string) string {
		if path == "" {
			path = def
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		return path
	}
	o.DataDir = abs(o.DataDir, DefaultDataDir)
	o.KongFile = abs(o.KongFile, DefaultKongFile)
	o.WorkDir = abs(o.WorkDir, DefaultWorkDir)
	o.KeysDir = abs(o.KeysDir, filepath.Join("auth_service", "keys"))
	if o.DrainDelay <= 0 {
		o.DrainDelay = DefaultDrainDelay
	}
	if o.ServiceGrace <= 0 {
		o.ServiceGrace = DefaultServiceGrace
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.services == nil {
		o.services = realServices
	}
	most := o.Replicas
	for _, s := range o.services {
		most = max(most, p.replicaCount(s.name))
	}
	width := len("blog") + len(strconv.Itoa(most))
	p.out = newLogSink(o.ProcessLogs, width, o.ShowHealthProbes)
	p.out.format = o.LogFormat
	return nil
}

// replicaCount is how many replicas of service run: its ServiceReplicas
// entry when positive, else Replicas.
func (p *Platform) replicaCount(service string) int {
	if n := p.opts.ServiceReplicas[service]; n > 0 {
		return n
	}
	return p.opts.Replicas
}

// FindRepoRoot walks up from dir to the folder holding go.work, auth_service/
// and blog_service/.
func FindRepoRoot(dir string) (string, error) {
	for d := dir; ; {
		if fileExists(filepath.Join(d, "go.work")) && fileExists(filepath.Join(d, "auth_service")) && fileExists(filepath.Join(d, "blog_service")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no repository root (go.work with auth_service/ and blog_service/) above %s", dir)
		}
		d = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (p *Platform) start(ctx context.Context) error {
	o := p.opts
	// Claim the gateway port first: a busy port should fail in a second, not
	// after building and starting everything.
	ln, err := net.Listen("tcp", o.GatewayAddr)
	if err != nil {
		return fmt.Errorf("gateway: %w (is another platform or Kong running? choose another with -port)", err)
	}
	p.gwListener = ln

	// Read the Kong file early too, for the same reason.
	kong, err := kongconf.Load(o.KongFile)
	if err != nil {
		return fmt.Errorf("kong file: %w", err)
	}

	if created, err := keypair.Ensure(o.KeysDir, keypair.DefaultBits); err != nil {
		return fmt.Errorf("rsa keys: %w", err)
	} else if created {
		p.log.Info("generated RSA key pair", "dir", o.KeysDir)
	}
	if o.CreateEnvFiles {
		for _, r := range envfiles.CopyMissing(p.root, envfiles.Pairs) {
			switch r.Outcome {
			case envfiles.Created:
				p.log.Info("created env file", "file", r.Target)
			case envfiles.Failed:
				// Only compose and manual runs use these; the replicas here
				// get their own env files.
				p.log.Warn("could not create env file", "file", r.Target, "error", r.Err)
			}
		}
	}

	// Build while the infrastructure starts: the build is the slow part of a
	// first start.
	type built struct {
		bins map[string]string
		err  error
	}
	buildDone := make(chan built, 1)
	go func() {
		bins, err := p.build(ctx)
		buildDone <- built{bins, err}
	}()
	infraErr := p.startInfrastructure(ctx)
	b := <-buildDone
	if err := errors.Join(infraErr, b.err); err != nil {
		return err
	}

	if err := p.startReplicas(ctx, b.bins); err != nil {
		return err
	}
	return p.startGateway(kong)
}

// build compiles both services into WorkDir/bin with the workspace's go.
func (p *Platform) build(ctx context.Context) (map[string]string, error) {
	goBin, err := goCommand()
	if err != nil {
		return nil, err
	}
	binDir := filepath.Join(p.opts.WorkDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, s := range p.opts.services {
		out := filepath.Join(binDir, s.dir)
		if runtime.GOOS == "windows" {
			out += ".exe"
		}
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, s.pkg)
			cmd.Dir = p.root
			output, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("go build %s: %w\n%s", s.pkg, err, output))
				return
			}
			bins[s.name] = out
		})
	}
	wg.Wait()
	return bins, errors.Join(errs...)
}

// goCommand finds the go command: the one on PATH (go test and go run put
// their own first), else the one under $GOROOT. The root this program was
// built with (runtime.GOROOT, deprecated) is not used: it need not exist on
// the machine that runs it.
func goCommand() (string, error) {
	if path, err := exec.LookPath("go"); err == nil {
		return path, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		if path := filepath.Join(root, "bin", "go"); fileExists(path) {
			return path, nil
		}
	}
	return "", errors.New("the go command is not on PATH (nor under $GOROOT)")
}

func (p *Platform) startInfrastructure(ctx context.Context) error {
	p.natsPasswords = map[string]string{"auth": randomSecret(), "blog": randomSecret()}
	nats, err := embedded.StartNATS(embedded.NATSOptions{
		Users: []embedded.NATSUser{
			{
				// auth serves the auth.* request subjects; besides answers
				// to the requests it receives (and discovery) it publishes
				// only its change events, which every auth replica follows,
				// and the presence and acknowledgements of every change
				// stream (events.presence.>, events.ack.>), as blog does.
				Name: "auth", Password: p.natsPasswords["auth"],
				Publish:   []string{"events.auth.>", "events.presence.>", "events.ack.>"},
				Subscribe: []string{"auth.>", "events.auth.>", "events.presence.>", "events.ack.>"},
			},
			{
				// blog may only ask: it cannot subscribe to auth.>, so no
				// process with blog's credentials can impersonate auth.
				// It follows auth's change events and publishes and
				// follows its own. Each user also reads only its own
				// inbox (_INBOX_<user>).
				Name: "blog", Password: p.natsPasswords["blog"],
				Publish:   []string{"auth.>", "events.blog.>", "events.presence.>", "events.ack.>"},
				Subscribe: []string{"events.auth.>", "events.blog.>", "events.presence.>", "events.ack.>"},
			},
		},
		// The server's start-up banner (Info) and its warning about plain
		// text passwords (random, per run, loopback only) are noise here.
		Logger: slog.New(minLevel{p.log.Handler(), slog.LevelError}),
	})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	p.nats = nats

	dir := ""
	if !p.opts.Memory {
		dir = filepath.Join(p.opts.DataDir, "store")
	}
	store, err := embedded.StartStore(ctx, embedded.StoreOptions{
		Dir:    dir,
		Logger: p.log.With("component", "store"),
		// FerretDB logs every failed command at Warn, including the ones the
		// services expect (an index option it lacks, a missing text index).
		LogLevel: slog.LevelError,
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	p.store = store

	p.redisPasswords = map[string]string{"auth": randomSecret(), "blog": randomSecret()}
	var users []embedded.RedisUser
	for _, name := range []string{"auth", "blog"} {
		users = append(users, embedded.RedisUser{Name: name, Password: p.redisPasswords[name], Rules: RedisACL(name)})
	}
	redis, err := embedded.StartRedis(embedded.RedisOptions{
		// The default user (full rights) is the platform's own; each
		// service logs in as its ACL user.
		Password: randomSecret(), Users: users,
		Logger: p.log.With("component", "redis"),
	})
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	p.redis = redis
	return nil
}

// minLevel drops records below a level, for components whose own levels are
// too chatty for the developer's terminal.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(attrs), m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.min}
}

func randomSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (p *Platform) startReplicas(ctx context.Context, bins map[string]string) error {
	envDir := filepath.Join(p.opts.WorkDir, "env")
	if err := os.MkdirAll(envDir, 0o700); err != nil {
		return err
	}
	for _, s := range p.opts.services {
		for i := 1; i <= p.replicaCount(s.name); i++ {
			port, err := freePort()
			if err != nil {
				return err
			}
			metricsPort, err := freePort()
			if err != nil {
				return err
			}
			r := &Replica{
				Name:        s.name + strconv.Itoa(i),
				Service:     s.name,
				Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
				MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
				bin:         bins[s.name],
				dir:         filepath.Join(p.root, s.dir),
				out:         p.out,
			}
			vars := p.replicaEnv(s, port)
			vars["METRICS_PORT"] = strconv.Itoa(metricsPort)
			envFile := filepath.Join(envDir, r.Name+".env")
			if err := writeEnvFile(envFile, vars); err != nil {
				return err
			}
			vars["ENV_FILE"] = envFile
			r.env = mergeEnv(os.Environ(), vars)
			p.replicas = append(p.replicas, r)
		}
	}
	for _, r := range p.replicas {
		if err := r.start(); err != nil {
			return err
		}
		p.log.Info("started replica", "name", r.Name, "addr", r.Addr, "pid", r.Pid())
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.ReadyTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(p.replicas))
	for i, r := range p.replicas {
		wg.Go(func() { errs[i] = r.WaitReady(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// replicaEnv is a replica's whole configuration. Every variable is set, so
// nothing depends on the developer's .env files or defaults that may change.
func (p *Platform) replicaEnv(s service, port int) map[string]string {
	o := p.opts
	env := map[string]string{
		"GO_MODE":     "release",
		"SERVER_HOST": "127.0.0.1",
		"SERVER_PORT": strconv.Itoa(port),
		"LOG_LEVEL":   "info",
		// The internal metrics listener (METRICS_PORT is set per replica):
		// loopback only, never behind the gateway.
		"METRICS_HOST": "127.0.0.1",
		// The local platform listens on loopback only and seeds the published
		// development key and admin, so release mode must accept them here.
		"ALLOW_EXAMPLE_SECRETS": "true",

		"DB_HOST": p.store.Host(),
		"DB_PORT": strconv.Itoa(p.store.Port()),
		"DB_NAME": s.dbName,
		// The embedded store has authentication off: no credentials.
		"DB_USER":              "",
		"DB_USER_PWD":          "",
		"DB_MIN_POOL_SIZE":     "2",
		"DB_MAX_POOL_SIZE":     "10",
		"DB_QUERY_TIMEOUT_SEC": "10",

		"REDIS_HOST":     p.redis.Host(),
		"REDIS_PORT":     strconv.Itoa(p.redis.Port()),
		"REDIS_USERNAME": s.name,
		"REDIS_PASSWORD": p.redisPasswords[s.name],
		"REDIS_DB":       strconv.Itoa(s.redisDB),

		"NATS_URL":             p.nats.ClientURL(),
		"NATS_USER":            s.name,
		"NATS_PASSWORD":        p.natsPasswords[s.name],
		"NATS_SERVICE_NAME":    s.name,
		"NATS_SERVICE_VERSION": "1.0.0",
		"NATS_REQUEST_TIMEOUT": "2s",

		"SHUTDOWN_GRACE_PERIOD": o.ServiceGrace.String(),
		"SHUTDOWN_DRAIN_DELAY":  o.DrainDelay.String(),
		// The gateway connects from loopback: believe its X-Forwarded-For, so
		// the services' per-address limits see the real client.
		"TRUSTED_PROXIES": "127.0.0.1,::1",
	}
	if s.name == "auth" {
		privPath, pubPath := keypair.Paths(o.KeysDir)
		for k, v := range map[string]string{
			"ACCESS_TOKEN_VALIDITY_SEC":  "172800",
			"REFRESH_TOKEN_VALIDITY_SEC": "604800",
			"TOKEN_ISSUER":               "api.goserve.unusualcode.org",
			"TOKEN_AUDIENCE":             "goserve.unusualcode.org",
			"RSA_PRIVATE_KEY_PATH":       privPath,
			"RSA_PUBLIC_KEY_PATH":        pubPath,
			"BCRYPT_COST":                "10",
			"SEED_API_KEY":               DevAPIKey,
			"SEED_ADMIN_EMAIL":           DevAdminEmail,
			"SEED_ADMIN_PASSWORD":        DevAdminPassword,
			"RATE_LIMIT_PER_MINUTE":      "120",
			"RATE_LIMIT_BURST":           "30",
		} {
			env[k] = v
		}
	}
	for k, v := range o.ServiceEnv[s.name] {
		env[k] = v
	}
	return env
}

func writeEnvFile(path string, vars map[string]string) error {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by the local platform (.tools/devstack) on every start: the exact\n# configuration this replica runs with. Edits are overwritten.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, vars[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// mergeEnv returns base with vars set (replacing any inherited value).
func mergeEnv(base []string, vars map[string]string) []string {
	out := make([]string, 0, len(base)+len(vars))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, overridden := vars[k]; !overridden {
			out = append(out, kv)
		}
	}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before the replica binds it; that shows as a start failure.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *Platform) startGateway(kong *kongconf.Config) error {
	counts := map[string]int{}
	for _, s := range p.opts.services {
		counts[s.name] = p.replicaCount(s.name)
	}
	p.kongNotes = fitToReplicas(kong, counts)
	for _, n := range p.kongNotes {
		p.log.Info("kong file adapted to the replica count", "note", n)
	}
	gw, err := gateway.New(gateway.Options{
		Kong:    kong,
		Resolve: p.resolve,
		Logger:  p.log.With("component", "gateway"),
	})
	if err != nil {
		return err
	}
	p.gw = gw
	ctx, cancel := context.WithCancel(context.Background())
	p.gwStop = cancel
	p.gwDone = make(chan struct{})
	// The gateway's own listener settings: slow clients cannot hold
	// connections (header and body read deadlines, idle timeout).
	p.gwServer = gateway.NewServer(gw, slog.NewLogLogger(p.log.Handler(), slog.LevelWarn))
	go func() {
		defer close(p.gwDone)
		var wg sync.WaitGroup
		wg.Go(func() { gw.Run(ctx) })
		if err := p.gwServer.Serve(p.gwListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("gateway stopped", "error", err)
		}
		cancel()
		wg.Wait()
	}()
	return nil
}

// resolve maps the Kong file's host names to replicas: "auth1" is replica
// auth1, and a bare service name ("auth", as in kong.yml) stands for every
// replica of that service. The port of the file (8000 inside compose) does
// not matter locally.
func (p *Platform) resolve(host string, _ int) ([]gateway.Endpoint, error) {
	var eps []gateway.Endpoint
	for _, r := range p.replicas {
		if r.Name == host || r.Service == host {
			eps = append(eps, gateway.Endpoint{Name: r.Name, Addr: r.Addr})
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("no local replica for host %q", host)
	}
	return eps, nil
}

// GatewayURL is the gateway's base URL, e.g. http://127.0.0.1:8000.
func (p *Platform) GatewayURL() string { return "http://" + p.gwListener.Addr().String() }

// Replicas lists every replica (auth1..N, then blog1..N).
func (p *Platform) Replicas() []*Replica { return slices.Clone(p.replicas) }

// Replica returns the replica with that name, or nil.
func (p *Platform) Replica(name string) *Replica {
	for _, r := range p.replicas {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Kill sends sig to the named replica (syscall.SIGKILL to simulate a crash,
// syscall.SIGTERM for a graceful stop).
func (p *Platform) Kill(name string, sig os.Signal) error {
	r := p.Replica(name)
	if r == nil {
		return fmt.Errorf("no replica %q", name)
	}
	return r.Signal(sig)
}

// Restart restarts the named replica on its address (stopping it first if it
// still runs) and waits until it is ready.
func (p *Platform) Restart(ctx context.Context, name string) error {
	r := p.Replica(name)
	if r == nil {
		return fmt.Errorf("no replica %q", name)
	}
	return r.Restart(ctx, p.StopGrace())
}

// GatewayStats returns the gateway's per-target counters and health.
func (p *Platform) GatewayStats() []gateway.TargetStats { return p.gw.Stats() }

// StopGrace is how long Stop (and Restart) wait after SIGTERM before SIGKILL.
func (p *Platform) StopGrace() time.Duration {
	return p.opts.DrainDelay + p.opts.ServiceGrace + stopMargin
}

// Info describes the running infrastructure for the ready banner.
type Info struct {
	GatewayURL   string
	StoreURI     string
	StoreBackend string
	StoreDir     string
	// StoreEphemeral is true with Options.Memory: StoreDir is then a
	// temporary folder (RAM when /dev/shm exists) deleted on Stop.
	StoreEphemeral bool
	RedisAddr      string
	RedisKind      string
	RedisStandIn   bool
	// RedisACL is true when the services' ACL users are enforced (the real
	// redis-server); the stand-in checks their passwords only.
	RedisACL  bool
	NATSURL   string
	KongFile  string
	KongNotes []string
	WorkDir   string
}

// Info describes the running platform.
func (p *Platform) Info() Info {
	return Info{
		GatewayURL:     p.GatewayURL(),
		StoreURI:       p.store.URI(),
		StoreBackend:   p.store.Backend(),
		StoreDir:       p.store.Dir(),
		StoreEphemeral: p.opts.Memory,
		RedisAddr:      p.redis.Addr(),
		RedisKind:      p.redis.Kind(),
		RedisStandIn:   p.redis.IsStandIn(),
		RedisACL:       p.redis.ACLEnforced(),
		NATSURL:        p.nats.ClientURL(),
		KongFile:       p.opts.KongFile,
		KongNotes:      slices.Clone(p.kongNotes),
		WorkDir:        p.opts.WorkDir,
	}
}

// RedisACL is the Redis ACL rules of a service's user (after reset, so
// nothing else is granted): its own key prefixes and exactly the commands it
// issues, directly or from its Lua scripts (SELECT for its database, PING
// for readiness, EVAL/EVALSHA for the scripts). A compromised blog can thus
// neither write auth's keys (cached users, revocation markers, API keys) nor
// run FLUSHALL, KEYS, CONFIG or other administrative commands. The compose
// files pass the same rules to redis-server (.tools/deploycheck compares).
func RedisACL(service string) []string {
	// INFO and SCAN serve the failover guard behind Sentinel (a new
	// primary's run_id; discarding the service's keys it may hold from
	// before the failover).
	common := []string{"+ping", "+select", "+get", "+mget", "+set", "+setnx", "+del", "+incr",
		"+sadd", "+smembers", "+pttl", "+pexpire", "+eval", "+evalsha", "+info", "+scan"}
	switch service {
	case "auth":
		// The sign-in limiters' scripts also read the server clock and
		// undo an attempt.
		return append([]string{"~auth_*"}, append(common, "+decr", "+time")...)
	case "blog":
		return append([]string{"~blog_*", "~blogcache:*"}, common...)
	}
	return nil
}

// RedisCredentials returns a service's Redis ACL user and password, for
// tests that check what each identity may do.
func (p *Platform) RedisCredentials(service string) (user, password string) {
	return service, p.redisPasswords[service]
}

// RedisAddr is the embedded Redis address.
func (p *Platform) RedisAddr() string { return p.redis.Addr() }

// RedisAdminPassword is the password of Redis's default user (full rights),
// for tools that read the server's own statistics (INFO) or administer it.
func (p *Platform) RedisAdminPassword() string { return p.redis.Password() }

// NATSCredentials returns a service's NATS user and password, for tests that
// check what each identity may do.
func (p *Platform) NATSCredentials(service string) (user, password string) {
	return service, p.natsPasswords[service]
}

// NATSURL is the embedded NATS server's client URL.
func (p *Platform) NATSURL() string { return p.nats.ClientURL() }

// ServiceDatabase is the store database of a service's replicas ("auth" or
// "blog"; "" for another name), for tests that check what was stored.
func (p *Platform) ServiceDatabase(service string) string {
	for _, s := range p.opts.services {
		if s.name == service {
			return s.dbName
		}
	}
	return ""
}

// Stop shuts everything down in order: the gateway stops taking requests and
// finishes those in flight; every replica gets SIGTERM and StopGrace to exit
// before SIGKILL; then Redis, NATS and the store stop. It is idempotent.
func (p *Platform) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Platform) stop() error {
	var errs []error
	if p.gwServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), gatewayShutdownGrace)
		if err := p.gwServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
			_ = p.gwServer.Close()
		}
		cancel()
		<-p.gwDone
		p.gw.Close()
	} else if p.gwListener != nil {
		_ = p.gwListener.Close()
	}

	var wg sync.WaitGroup
	for _, r := range p.replicas {
		if !r.Running() {
			continue
		}
		wg.Go(func() {
			if err := r.stop(p.StopGrace()); err != nil {
				p.log.Warn("stopping replica", "name", r.Name, "error", err)
			}
		})
	}
	wg.Wait()

	if p.redis != nil {
		if err := p.redis.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
	}
	if p.nats != nil {
		p.nats.Shutdown()
	}
	if p.store != nil {
		if err := p.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	return errors.Join(errs...)
}
