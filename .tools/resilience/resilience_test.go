// Package resilience holds the fault-injection tests: both real services run
// in-process (auth_service and blog_service apps, as a replica would run
// them) on private embedded infrastructure, and the tests stop and restart
// NATS, Redis and the store, or put a slow auth responder in auth's place,
// asserting the exact answers clients get meanwhile and afterwards. Every
// response is validated against the service's OpenAPI document and checked
// for leaked internal text.
//
// The replica-loss suite (TestReplicaLoss, replicaloss_*.go) works on the
// local platform instead: both services as separate processes, two replicas
// each, behind the local gateway, and it kills, freezes and stops one
// replica under load.
package resilience

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	authconfig "blogplatform/auth_service/config"
	authopenapi "blogplatform/auth_service/openapi"
	authstartup "blogplatform/auth_service/startup"
	blogconfig "blogplatform/blog_service/config"
	blogopenapi "blogplatform/blog_service/openapi"
	blogstartup "blogplatform/blog_service/startup"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/envelope"
	"blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

const (
	adminEmail    = "admin@unusualcode.org"
	adminPassword = "changeit"
	apiKey        = "resilience-test-key"
	natsTimeout   = 400 * time.Millisecond
)

// platform is one auth and one blog replica on private infrastructure.
type platform struct {
	t          *testing.T
	infra      *testinfra.Env
	storeDir   string
	authURL    string
	blogURL    string
	authSpec   *openapi.Validator
	blogSpec   *openapi.Validator
	client     *http.Client
	cancelAuth context.CancelFunc
	// authMetrics and blogMetrics are the internal metrics listeners.
	authMetrics, blogMetrics string
}

func writeKeys(t *testing.T) (privPath, pubPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	privPath, pubPath = filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return privPath, pubPath
}

func serve(t *testing.T, run func(context.Context, net.Listener) error) (string, context.CancelFunc) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = run(ctx, ln); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// startPlatform starts the infrastructure (the store in a directory that
// survives a restart) and, unless withoutAuth, auth_service; blog_service
// always.
func startPlatform(t *testing.T, withoutAuth bool) *platform {
	t.Helper()
	return startPlatformWith(t, platformOptions{withoutAuth: withoutAuth})
}

// platformOptions: withoutAuth leaves auth_service out (a test puts its own
// responder there); the tracers, when set, replace each service's own.
type platformOptions struct {
	withoutAuth            bool
	authTracer, blogTracer trace.TracerProvider
}

func startPlatformWith(t *testing.T, o platformOptions) *platform {
	t.Helper()
	storeDir := t.TempDir()
	infra := testinfra.NewEnvWith(t, testinfra.Options{Store: embedded.StoreOptions{Dir: storeDir}})
	p := &platform{t: t, infra: infra, storeDir: storeDir, client: &http.Client{Timeout: 30 * time.Second}}
	var err error
	if p.authSpec, err = openapi.Load(authopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	if p.blogSpec, err = openapi.Load(blogopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	common := mergeEnv(replicaEnv(infra), map[string]string{
		"REDIS_HOST": infra.Redis.Host(), "REDIS_PORT": fmt.Sprint(infra.Redis.Port()), "REDIS_PASSWORD": infra.RedisPassword(),
		"NATS_URL": infra.NATSURL(), "NATS_REQUEST_TIMEOUT": natsTimeout.String(),
	})
	if !o.withoutAuth {
		priv, pub := writeKeys(t)
		auth := startAuth(t, mergeEnv(common, authEnv(priv, pub), map[string]string{"DB_NAME": "auth-resilience", "REDIS_DB": "0"}),
			runtime.Options{LogWriter: io.Discard, Tracer: o.authTracer})
		p.authURL, p.cancelAuth, p.authMetrics = auth.url, auth.cancel, "http://"+auth.rt.MetricsAddr()
	}
	blog := startBlog(t, mergeEnv(common, map[string]string{
		"DB_NAME": "blog-resilience", "REDIS_DB": "2",
		"BREAKER_MIN_REQUESTS": "3", "BREAKER_FAILURE_RATIO": "0.2", "BREAKER_OPEN_TIMEOUT": "300ms", "CACHE_RETRY_INTERVAL": "100ms",
	}), runtime.Options{LogWriter: io.Discard, Tracer: o.blogTracer})
	p.blogURL, p.blogMetrics = blog.url, "http://"+blog.rt.MetricsAddr()
	return p
}

// replicaEnv is what every service replica of these tests runs with
// besides its Redis and NATS: release mode, quiet logs, a free metrics
// port, the test's store, short store and shutdown waits.
func replicaEnv(infra *testinfra.Env) map[string]string {
	return map[string]string{
		"GO_MODE": "release", "LOG_LEVEL": "error", "METRICS_PORT": "0", "ALLOW_EXAMPLE_SECRETS": "true",
		"DB_HOST": infra.Store.Host(), "DB_PORT": fmt.Sprint(infra.Store.Port()),
		"DB_SERVER_SELECTION_TIMEOUT": "500ms", "SHUTDOWN_GRACE_PERIOD": "2s",
	}
}

// authEnv is what only auth needs: its key pair, a cheap bcrypt, the
// seeded API key and admin.
func authEnv(privateKey, publicKey string) map[string]string {
	return map[string]string{
		"RSA_PRIVATE_KEY_PATH": privateKey, "RSA_PUBLIC_KEY_PATH": publicKey, "BCRYPT_COST": "4",
		"SEED_API_KEY": apiKey, "SEED_ADMIN_EMAIL": adminEmail, "SEED_ADMIN_PASSWORD": adminPassword,
	}
}

// mergeEnv is the union of the maps, later ones winning.
func mergeEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// replica is a service replica a test started and serves.
type replica struct {
	url    string
	cancel context.CancelFunc // stops serving (the replica's shutdown)
	rt     *runtime.Runtime
}

// startAuth starts an auth replica (NATS_SERVICE_NAME auth) with env alone.
func startAuth(t *testing.T, env map[string]string, o runtime.Options) replica {
	t.Helper()
	cfg, err := authconfig.Load(chassisconfig.FromMap(mergeEnv(env, map[string]string{"NATS_SERVICE_NAME": "auth"})))
	if err != nil {
		t.Fatal(err)
	}
	app, err := authstartup.New(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	url, cancel := serve(t, app.Run)
	return replica{url: url, cancel: cancel, rt: app.Runtime}
}

// startBlog starts a blog replica (NATS_SERVICE_NAME blog) with env alone.
func startBlog(t *testing.T, env map[string]string, o runtime.Options) replica {
	t.Helper()
	cfg, err := blogconfig.Load(chassisconfig.FromMap(mergeEnv(env, map[string]string{"NATS_SERVICE_NAME": "blog"})))
	if err != nil {
		t.Fatal(err)
	}
	app, err := blogstartup.New(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	url, cancel := serve(t, app.Run)
	return replica{url: url, cancel: cancel, rt: app.Runtime}
}

type answer struct {
	status  int
	message string
	data    json.RawMessage
	raw     string
	elapsed time.Duration
}

// leaks are fragments of internal text no client may ever see.
var leaks = []string{"goroutine", "panic", "mongo", "nats:", "redis", "connection refused", "E11000",
	"server selection", "context deadline", "dial tcp", "i/o timeout", "sqlite", "ferret"}

func (p *platform) do(method, base, path, token string, body any) answer {
	p.t.Helper()
	var payload []byte
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(payload))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	a := answer{status: res.StatusCode, raw: string(raw), elapsed: time.Since(start)}
	env, err := envelope.Decode(raw)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	a.message, a.data = env.Message, env.Data
	lower := strings.ToLower(a.raw)
	for _, leak := range leaks {
		if strings.Contains(lower, strings.ToLower(leak)) && a.status >= 400 {
			p.t.Errorf("%s %s leaked %q: %s", method, path, leak, raw)
		}
	}
	spec := p.blogSpec
	if base == p.authURL {
		spec = p.authSpec
	}
	validationReq, _ := http.NewRequest(method, path, nil)
	if err := spec.ValidateResponse(validationReq, res.StatusCode, res.Header, raw); err != nil {
		p.t.Errorf("%s %s: response does not match the OpenAPI document: %v", method, path, err)
	}
	return a
}

func (p *platform) signIn() string {
	p.t.Helper()
	a := p.do("POST", p.authURL, "/signin/basic", "", map[string]string{"email": adminEmail, "password": adminPassword})
	if a.status != 200 {
		p.t.Fatalf("sign-in: %d %s", a.status, a.raw)
	}
	var data struct {
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	_ = json.Unmarshal(a.data, &data)
	return data.Tokens.AccessToken
}

// publish creates, submits and publishes a blog and returns its id and slug.
func (p *platform) publish(token, title string) (string, string) {
	p.t.Helper()
	slug := strings.ToLower(strings.ReplaceAll(title, " ", "-"))
	a := p.do("POST", p.blogURL, "/author", token, map[string]any{
		"title": title, "description": "resilience description", "draftText": "body of " + title,
		"slug": slug, "imgUrl": "https://example.com/a.png", "tags": []string{"RESILIENCE"},
	})
	if a.status != 200 {
		p.t.Fatalf("create: %d %s", a.status, a.raw)
	}
	var blog struct {
		ID   string `json:"_id"`
		Slug string `json:"slug"`
	}
	_ = json.Unmarshal(a.data, &blog)
	for _, path := range []string{"/author/submit/id/" + blog.ID, "/editor/publish/id/" + blog.ID} {
		if a := p.do("PUT", p.blogURL, path, token, nil); a.status != 200 {
			p.t.Fatalf("%s: %d %s", path, a.status, a.raw)
		}
	}
	return blog.ID, blog.Slug
}

// NATS stops: public reads stay 200 (they never need auth), protected routes
// answer 503 `authentication service unavailable` — in milliseconds once the
// breaker is open — and NATS coming back heals them without any restart.
func TestNATSOutage(t *testing.T) {
	p := startPlatform(t, false)
	token := p.signIn()
	id, slug := p.publish(token, "Nats Outage Survival")

	p.infra.NATS.Shutdown()
	for _, path := range []string{"/id/" + id, "/slug/" + slug, "/list/latest?page=1&limit=10", "/list/tag/RESILIENCE?page=1&limit=10", "/list/similar/id/" + id} {
		if a := p.do("GET", p.blogURL, path, "", nil); a.status != 200 {
			t.Errorf("public %s with NATS down: %d %s", path, a.status, a.raw)
		}
	}
	for i := 0; i < 5; i++ {
		a := p.do("GET", p.blogURL, "/author/drafts?page=1&limit=10", token, nil)
		if a.status != 503 || a.message != "authentication service unavailable" {
			t.Fatalf("protected with NATS down: %d %s", a.status, a.raw)
		}
		if a.elapsed > natsTimeout+time.Second {
			t.Fatalf("protected with NATS down took %s (timeout %s)", a.elapsed, natsTimeout)
		}
	}
	// The breaker is open now: the answer no longer waits for the timeout.
	if a := p.do("GET", p.blogURL, "/author/drafts?page=1&limit=10", token, nil); a.status != 503 || a.elapsed >= natsTimeout {
		t.Fatalf("with the breaker open: %d after %s, want 503 before the %s timeout", a.status, a.elapsed, natsTimeout)
	}
	// Auth's own HTTP API does not need NATS.
	if a := p.do("GET", p.authURL, "/profile/mine", token, nil); a.status != 200 {
		t.Fatalf("auth /profile/mine with NATS down: %d %s", a.status, a.raw)
	}

	if err := p.infra.NATS.Restart(); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 20*time.Second, "protected routes recover after NATS restarts", func() bool {
		return p.do("GET", p.blogURL, "/author/drafts?page=1&limit=10", token, nil).status == 200
	})
}

// Redis stops mid-test: every endpoint still answers correctly from the
// store, writes are visible at once, and nothing stale appears when Redis
// returns.
func TestRedisOutage(t *testing.T) {
	p := startPlatform(t, false)
	token := p.signIn()
	id, slug := p.publish(token, "Redis Outage Survival")
	if a := p.do("GET", p.blogURL, "/id/"+id, "", nil); a.status != 200 { // now cached
		t.Fatalf("warm read: %d", a.status)
	}

	if err := p.infra.Redis.Stop(); err != nil {
		t.Fatal(err)
	}
	if a := p.do("GET", p.authURL, "/verify/apikey", "", nil); a.status != 401 {
		t.Errorf("verify without key, Redis down: %d", a.status)
	}
	if a := p.do("GET", p.authURL, "/profile/mine", token, nil); a.status != 200 {
		t.Fatalf("profile with Redis down: %d %s", a.status, a.raw)
	}
	if a := p.do("PUT", p.blogURL, "/editor/unpublish/id/"+id, token, nil); a.status != 200 {
		t.Fatalf("unpublish with Redis down: %d %s", a.status, a.raw)
	}
	for _, path := range []string{"/id/" + id, "/slug/" + slug} {
		if a := p.do("GET", p.blogURL, path, "", nil); a.status != 404 || a.message != "blog not found" {
			t.Fatalf("%s after unpublish with Redis down: %d %s", path, a.status, a.raw)
		}
	}
	other, _ := p.publish(token, "Written While Redis Is Down")
	if a := p.do("GET", p.blogURL, "/id/"+other, "", nil); a.status != 200 {
		t.Fatalf("new blog with Redis down: %d %s", a.status, a.raw)
	}

	if err := p.infra.Redis.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis restarts empty here; what matters is that nothing stale is served
	// and the cache works again.
	for i := 0; i < 3; i++ {
		if a := p.do("GET", p.blogURL, "/id/"+id, "", nil); a.status != 404 {
			t.Fatalf("unpublished blog served after Redis returned: %d %s", a.status, a.raw)
		}
		if a := p.do("GET", p.blogURL, "/id/"+other, "", nil); a.status != 200 {
			t.Fatalf("published blog after Redis returned: %d %s", a.status, a.raw)
		}
	}
}

// The store becomes unreachable: requests that need it answer 503 quickly
// (no hang, no internal text); when it returns, everything recovers without a
// restart of the services.
func TestStoreOutage(t *testing.T) {
	p := startPlatform(t, false)
	token := p.signIn()
	id, _ := p.publish(token, "Store Outage Survival")
	addr := p.infra.Store.Addr()

	if err := p.infra.Store.Close(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		method, base, path, token string
	}{
		{"GET", p.blogURL, "/list/tag/NOTCACHED?page=1&limit=10", ""},
		{"GET", p.blogURL, "/id/000000000000000000000001", ""},
		{"POST", p.authURL, "/signin/basic", ""},
	}
	for _, c := range checks {
		var body any
		if c.path == "/signin/basic" {
			body = map[string]string{"email": "nobody@example.com", "password": "secret1"}
		}
		a := p.do(c.method, c.base, c.path, c.token, body)
		if a.status != 503 || a.message != "service unavailable" {
			t.Errorf("%s %s with the store down: %d %s", c.method, c.path, a.status, a.raw)
		}
		if a.elapsed > 5*time.Second {
			t.Errorf("%s %s with the store down took %s", c.method, c.path, a.elapsed)
		}
	}

	store, err := embedded.StartStore(context.Background(), embedded.StoreOptions{Addr: addr, Dir: p.storeDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	wait.Eventually(t, 20*time.Second, "reads recover after the store returns", func() bool {
		return p.do("GET", p.blogURL, "/list/tag/RESILIENCE?page=1&limit=10", "", nil).status == 200
	})
	if a := p.do("GET", p.blogURL, "/author/id/"+id, token, nil); a.status != 200 {
		t.Fatalf("protected read after recovery: %d %s", a.status, a.raw)
	}
}

// Auth answers, but slower than NATS_REQUEST_TIMEOUT: blog answers 503
// within the timeout plus 100 ms, never waiting for the late reply.
func TestSlowAuth(t *testing.T) {
	p := startPlatform(t, true)
	nc, err := nats.Connect(p.infra.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.QueueSubscribe("auth.authentication", "q", func(m *nats.Msg) {
		time.Sleep(natsTimeout + 500*time.Millisecond)
		_ = m.Respond([]byte(`{"data":{"_id":"66a0c6b2f1e4d3c2b1a09f8e","name":"Late","email":"late@example.com"}}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		a := p.do("GET", p.blogURL, "/author/drafts?page=1&limit=10", "slow-token", nil)
		if a.status != 503 || a.message != "authentication service unavailable" {
			t.Fatalf("slow auth: %d %s", a.status, a.raw)
		}
		if a.elapsed > natsTimeout+100*time.Millisecond {
			t.Fatalf("slow auth answered after %s, want within %s", a.elapsed, natsTimeout+100*time.Millisecond)
		}
	}
	// Public reads do not involve auth at all.
	if a := p.do("GET", p.blogURL, "/list/latest?page=1&limit=10", "", nil); a.status != 200 {
		t.Fatalf("public read with slow auth: %d", a.status)
	}
}
