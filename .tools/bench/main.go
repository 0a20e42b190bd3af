// Command bench measures the platform end to end. It starts the local
// platform (or targets a running gateway with -url), seeds a dataset through
// the API, then drives each case with a closed-loop Go load generator at
// several client counts, both through the gateway and directly against the
// service replicas, and prints requests/s, p50, p99 and errors per case with
// the core count and the store backend.
//
//	go run ./.tools/bench                       # 200 published blogs + 20 drafts
//	go run ./.tools/bench -blogs 10000 -clients 16
//	go run ./.tools/bench -url http://127.0.0.1:8000 -direct=false
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
	"blogplatform/tools/internal/platform"
)

type options struct {
	url, apiKey, adminEmail, adminPassword string
	blogs, drafts, textSize                int
	clients                                []int
	duration, warmup                       time.Duration
	direct                                 bool
	replicas                               int
	only                                   string
}

func main() {
	var o options
	var clients string
	flag.StringVar(&o.url, "url", "", "gateway URL of a running platform (default: start the local platform)")
	flag.StringVar(&o.apiKey, "key", platform.DevAPIKey, "x-api-key")
	flag.StringVar(&o.adminEmail, "admin", platform.DevAdminEmail, "admin email (holds AUTHOR and EDITOR)")
	flag.StringVar(&o.adminPassword, "password", platform.DevAdminPassword, "admin password")
	flag.IntVar(&o.blogs, "blogs", 200, "published blogs to seed (up to 100000)")
	flag.IntVar(&o.drafts, "drafts", 20, "drafts to seed for the admin")
	flag.IntVar(&o.textSize, "size", 3600, "approximate blog size in bytes")
	flag.StringVar(&clients, "clients", "16,64", "comma-separated client counts")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per case")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per case")
	flag.BoolVar(&o.direct, "direct", true, "also measure directly against the replicas (local platform only)")
	flag.IntVar(&o.replicas, "replicas", 2, "replicas per service when starting the platform")
	flag.StringVar(&o.only, "only", "", "run only cases whose name contains this")
	flag.Parse()
	for _, c := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: bad -clients %q\n", clients)
			os.Exit(2)
		}
		o.clients = append(o.clients, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// target is where requests go: the gateway (with the /auth, /blog prefixes and
// the API key) or the replicas directly (service paths, no key).
type target struct {
	name     string
	authURLs []string // base URLs, requests rotate across them
	blogURLs []string
	prefixed bool
	header   http.Header
}

func (t target) auth(path string, i int) string {
	if t.prefixed {
		return t.authURLs[i%len(t.authURLs)] + "/auth" + path
	}
	return t.authURLs[i%len(t.authURLs)] + path
}

func (t target) blog(path string, i int) string {
	if t.prefixed {
		return t.blogURLs[i%len(t.blogURLs)] + "/blog" + path
	}
	return t.blogURLs[i%len(t.blogURLs)] + path
}

func run(ctx context.Context, o options) error {
	backend := "external (-url)"
	gatewayURL := o.url
	var direct *target
	if gatewayURL == "" {
		root, err := platform.FindRepoRoot(".")
		if err != nil {
			return err
		}
		kongFile, err := withoutRateLimits(filepath.Join(root, "kong", "kong-load-balanced.yml"))
		if err != nil {
			return err
		}
		defer os.Remove(kongFile)
		fmt.Println("bench: starting the local platform (in-memory store)...")
		p, err := platform.Start(ctx, platform.Options{
			RepoRoot: root, GatewayAddr: "127.0.0.1:0", Memory: true, Replicas: o.replicas, KongFile: kongFile,
			ServiceEnv: map[string]map[string]string{
				// The benchmark signs in from one address far more often than
				// the per-address limits allow; measure the service, not the limiter.
				"auth": {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_BURST": "100000", "LOG_LEVEL": "warn"},
				"blog": {"LOG_LEVEL": "warn"},
			},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			return err
		}
		defer p.Stop()
		gatewayURL = p.GatewayURL()
		backend = p.Info().StoreBackend
		if o.direct {
			d := target{name: "direct", header: http.Header{}}
			for _, r := range p.Replicas() {
				if r.Service == "auth" {
					d.authURLs = append(d.authURLs, "http://"+r.Addr)
				} else {
					d.blogURLs = append(d.blogURLs, "http://"+r.Addr)
				}
			}
			direct = &d
		}
	}
	gw := target{name: "gateway", authURLs: []string{gatewayURL}, blogURLs: []string{gatewayURL}, prefixed: true,
		header: http.Header{"X-Api-Key": {o.apiKey}}}

	client := loadtest.HTTPClient(128)
	fmt.Printf("bench: seeding %d published blogs (~%d B) and %d drafts through the gateway...\n", o.blogs, o.textSize, o.drafts)
	start := time.Now()
	data, err := seed(ctx, client, gw, o)
	if err != nil {
		return err
	}
	fmt.Printf("bench: seeded in %s\n\n", time.Since(start).Round(time.Millisecond))

	targets := []target{gw}
	if direct != nil {
		targets = append(targets, *direct)
	}
	cases := benchCases(data)
	fmt.Printf("cores=%d GOMAXPROCS=%d store=%s blogs=%d duration=%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), backend, o.blogs, o.duration)
	results := map[string]loadtest.Result{}
	for _, c := range cases {
		if o.only != "" && !strings.Contains(c.name, o.only) {
			continue
		}
		for _, t := range targets {
			for _, n := range o.clients {
				res := loadtest.Run(ctx, loadtest.Options{Name: t.name + " " + c.name, Clients: n, Duration: o.duration, Warmup: o.warmup},
					c.do(client, t))
				results[fmt.Sprintf("%s|%s|%d", t.name, c.name, n)] = res
				fmt.Println(res)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	if direct != nil {
		gwRes, okG := results["gateway|GET /blog/id/:id (cached)|16"]
		dRes, okD := results["direct|GET /blog/id/:id (cached)|16"]
		if okG && okD && dRes.RequestsPerSecond() > 0 {
			fmt.Printf("\ngateway overhead, cached GET /id at 16 clients: %.0f%% of direct throughput, p50 +%s\n",
				100*gwRes.RequestsPerSecond()/dRes.RequestsPerSecond(), (gwRes.P50 - dRes.P50).Round(time.Microsecond))
		}
	}
	return nil
}

type benchCase struct {
	name string
	do   func(client *http.Client, t target) func(ctx context.Context, c int) error
}

func benchCases(d *dataset) []benchCase {
	var counter atomic.Uint64
	next := func() int { return int(counter.Add(1)) }
	get := func(url func(t target, i int) string, header func(t target) http.Header) func(*http.Client, target) func(context.Context, int) error {
		return func(client *http.Client, t target) func(context.Context, int) error {
			h := header(t)
			return func(ctx context.Context, _ int) error {
				return loadtest.Send(ctx, client, http.MethodGet, url(t, next()), h, nil, http.StatusOK)
			}
		}
	}
	keyOnly := func(t target) http.Header { return t.header }
	withBearer := func(t target) http.Header {
		h := t.header.Clone()
		h.Set("Authorization", "Bearer "+d.accessToken)
		return h
	}
	// The cached read rotates over a few hot ids, warmed by the warm-up.
	hot := d.publishedIDs[:min(len(d.publishedIDs), 20)]
	signin, _ := json.Marshal(map[string]string{"email": d.email, "password": d.password})
	return []benchCase{
		{"GET /blog/id/:id (cached)", get(func(t target, i int) string { return t.blog("/id/"+hot[i%len(hot)], i) }, keyOnly)},
		{"GET /blog/list/latest?page=1&limit=10", get(func(t target, i int) string { return t.blog("/list/latest?page=1&limit=10", i) }, keyOnly)},
		{"GET /blog/author/drafts?page=1&limit=10", get(func(t target, i int) string { return t.blog("/author/drafts?page=1&limit=10", i) }, withBearer)},
		{"GET /blog/list/similar/id/:id", get(func(t target, i int) string { return t.blog("/list/similar/id/"+hot[i%len(hot)], i) }, keyOnly)},
		{"GET /auth/verify/apikey", get(func(t target, i int) string { return t.auth("/verify/apikey", i) }, func(t target) http.Header {
			return http.Header{"X-Api-Key": {d.apiKey}}
		})},
		{"GET /auth/profile/mine", get(func(t target, i int) string { return t.auth("/profile/mine", i) }, withBearer)},
		{"POST /auth/signin/basic", func(client *http.Client, t target) func(context.Context, int) error {
			h := t.header.Clone()
			h.Set("Content-Type", "application/json")
			return func(ctx context.Context, _ int) error {
				return loadtest.Send(ctx, client, http.MethodPost, t.auth("/signin/basic", next()), h, signin, http.StatusOK)
			}
		}},
	}
}

type dataset struct {
	apiKey, email, password, accessToken string
	publishedIDs                         []string
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
	if err := call(ctx, client, http.MethodPost, gw.auth("/signin/basic", 0), gw.header,
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
		err := call(ctx, client, http.MethodPost, gw.blog("/author", 0), auth, map[string]any{
			"title": title, "description": "About " + words[(i*7)%len(words)] + " and " + words[(i*3)%len(words)],
			"draftText": text, "slug": fmt.Sprintf("bench-%s-%d", run, i), "imgUrl": "https://example.com/b.png",
			"tags": []string{strings.ToUpper(words[i%len(words)]), "BENCH"},
		}, &blog)
		if err != nil || !publish {
			return blog.ID, err
		}
		if err := call(ctx, client, http.MethodPut, gw.blog("/author/submit/id/"+blog.ID, 0), auth, nil, nil); err != nil {
			return "", err
		}
		return blog.ID, call(ctx, client, http.MethodPut, gw.blog("/editor/publish/id/"+blog.ID, 0), auth, nil, nil)
	}
	ids := make([]string, o.blogs)
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
				if i < o.blogs {
					ids[i] = id
				}
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
	if len(ids) == 0 {
		return nil, errors.New("seeding: -blogs must be at least 1")
	}
	d.publishedIDs = ids
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
