package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"blogplatform/tools/internal/kongconf"
)

// standinServices run the stand-in in place of both services, so the
// orchestration (build, processes, env, readiness, gateway wiring, restart,
// stop) is tested on its own. The real services are exercised by .tools/e2e.
var standinServices = []service{
	{name: "auth", dir: "auth_service", pkg: "./.tools/internal/platform/testdata/standin", dbName: "auth-dev-db"},
	{name: "blog", dir: "blog_service", pkg: "./.tools/internal/platform/testdata/standin", dbName: "blog-dev-db", redisDB: 2},
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startStandins(t *testing.T, replicas int) (*Platform, *syncBuffer) {
	t.Helper()
	return startStandinsWith(t, Options{Replicas: replicas})
}

// startStandinsWith starts the stand-ins with opts' replica counts.
func startStandinsWith(t *testing.T, opts Options) (*Platform, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := Start(ctx, Options{
		GatewayAddr:     "127.0.0.1:0",
		Replicas:        opts.Replicas,
		ServiceReplicas: opts.ServiceReplicas,
		Memory:          true,
		WorkDir:         work,
		KeysDir:         filepath.Join(work, "keys"),
		DrainDelay:      1200 * time.Millisecond,
		ProcessLogs:     logs,
		services:        standinServices,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("process logs:\n%s", logs.String())
		}
	})
	return p, logs
}

func get(t *testing.T, url string, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

func TestPlatformWithStandins(t *testing.T) {
	p, logs := startStandins(t, 2)
	base := p.GatewayURL()

	if status, _ := get(t, base+"/blog/list", ""); status != 401 {
		t.Errorf("no key: %d", status)
	}
	if status, _ := get(t, base+"/blog/health/ready", ""); status != 200 {
		t.Errorf("health through the gateway without a key: %d", status)
	}
	ports := map[string]bool{}
	for range 8 {
		status, body := get(t, base+"/blog/list/latest?page=1", DevAPIKey)
		if status != 200 {
			t.Fatalf("status %d %v", status, body)
		}
		data := body["data"].(map[string]any)
		if data["service"] != "blog" || data["path"] != "/list/latest?page=1" {
			t.Errorf("data %v", data)
		}
		ports[data["port"].(string)] = true
	}
	if len(ports) != 2 {
		t.Errorf("requests went to %d blog replicas, want 2", len(ports))
	}
	// 9 blog requests so far (the health probe included): round robin gives
	// each replica at least 4.
	for _, s := range p.GatewayStats() {
		if s.Upstream == "blog_upstream" && s.Served < 4 {
			t.Errorf("%s served %d, want at least 4 (round robin)", s.Name, s.Served)
		}
	}

	// Every replica ran with its own env file (and so with its own port).
	for _, r := range p.Replicas() {
		data, err := os.ReadFile(filepath.Join(p.Info().WorkDir, "env", r.Name+".env"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "SERVER_PORT="+strings.Split(r.Addr, ":")[1]+"\n") ||
			!strings.Contains(string(data), "NATS_USER="+r.Service+"\n") {
			t.Errorf("%s env file:\n%s", r.Name, data)
		}
	}
	if !strings.Contains(logs.String(), "auth1 | ") || !strings.Contains(logs.String(), "blog2 | ") {
		t.Errorf("process logs are not prefixed with the replica names:\n%s", logs.String())
	}

	// SIGKILL a replica: traffic moves to the other one without a failure,
	// and Restart brings it back on the same address.
	blog1 := p.Replica("blog1")
	if err := blog1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = blog1.Wait(context.Background())
	for i := range 6 {
		if status, _ := get(t, base+"/blog/x", DevAPIKey); status != 200 {
			t.Fatalf("request %d after SIGKILL: %d", i, status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := blog1.Restart(ctx, p.StopGrace()); err != nil {
		t.Fatal(err)
	}
	if !blog1.Running() {
		t.Fatal("blog1 not running after Restart")
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	p, _ := startStandins(t, 1)
	var pids []int
	for _, r := range p.Replicas() {
		pids = append(pids, r.Pid())
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Stop took %v", took)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after Stop", pid)
		}
	}
	if _, err := http.Get(p.GatewayURL()); err == nil {
		t.Error("the gateway still answers after Stop")
	}
}

func TestFitToReplicas(t *testing.T) {
	kong, err := kongconf.Load(filepath.Join("..", "..", "..", "kong", "kong-load-balanced.yml"))
	if err != nil {
		t.Fatal(err)
	}
	notes := fitToReplicas(kong, map[string]int{"auth": 3, "blog": 1})
	targets := func(name string) string {
		var out []string
		for _, tg := range kong.Upstreams[name].Targets {
			out = append(out, fmt.Sprintf("%s/%d", tg.Target, tg.EffectiveWeight()))
		}
		return strings.Join(out, ",")
	}
	if got := targets("auth_upstream"); got != "auth1:8000/100,auth2:8000/100,auth3:8000/100" {
		t.Errorf("auth targets %s", got)
	}
	if got := targets("blog_upstream"); got != "blog1:8000/100" {
		t.Errorf("blog targets %s", got)
	}
	for _, r := range kong.Routes {
		var c kongconf.APIKeyConfig
		if err := r.Plugins[kongconf.PluginAPIKey].DecodeConfig(&c); err != nil {
			t.Fatal(err)
		}
		if c.Bypass { // a route-level instance that only switches the check off
			continue
		}
		if len(c.VerificationURLs) != 3 || c.VerificationURLs[2] != "http://auth3:8000/verify/apikey" {
			t.Errorf("route %s verification urls %v", r.Name, c.VerificationURLs)
		}
	}
	if len(notes) != 3 {
		t.Errorf("notes %q", notes)
	}
	// Two replicas, as in the file: nothing changes, nothing to say.
	kong, _ = kongconf.Load(filepath.Join("..", "..", "..", "kong", "kong-load-balanced.yml"))
	if notes := fitToReplicas(kong, map[string]int{"auth": 2, "blog": 2}); len(notes) != 0 {
		t.Errorf("notes for the file's own replica count: %q", notes)
	}
}

func TestFindRepoRoot(t *testing.T) {
	wd, _ := os.Getwd()
	root, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if !fileExists(filepath.Join(root, "kong")) {
		t.Errorf("root %s", root)
	}
	if _, err := FindRepoRoot(t.TempDir()); err == nil {
		t.Error("a folder outside the repo has no root")
	}
}
