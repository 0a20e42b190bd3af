package observability

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
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	authconfig "blogplatform/auth_service/config"
	authstartup "blogplatform/auth_service/startup"
	blogconfig "blogplatform/blog_service/config"
	blogstartup "blogplatform/blog_service/startup"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/testinfra"
)

const (
	adminEmail    = "admin@observability.test"
	adminPassword = "observability-admin-pw"
)

// services is one auth and one blog replica, in this process, on private
// embedded infrastructure.
type services struct {
	t                        *testing.T
	authURL, blogURL         string
	authMetrics, blogMetrics string
	client                   *http.Client
}

func writeKeys(t *testing.T) (privPath, pubPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privPath, pubPath = filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return privPath, pubPath
}

func serve(t *testing.T, run func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = run(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func startServices(t *testing.T) *services {
	t.Helper()
	infra := testinfra.NewEnv(t)
	common := map[string]string{
		"GO_MODE": "test", "LOG_LEVEL": "error", "METRICS_PORT": "0",
		"DB_HOST": infra.Store.Host(), "DB_PORT": fmt.Sprint(infra.Store.Port()),
		"REDIS_HOST": infra.Redis.Host(), "REDIS_PORT": fmt.Sprint(infra.Redis.Port()), "REDIS_PASSWORD": infra.RedisPassword(),
		"NATS_URL": infra.NATSURL(), "SHUTDOWN_GRACE_PERIOD": "2s",
	}
	with := func(extra map[string]string) *chassisconfig.Source {
		m := map[string]string{}
		for _, src := range []map[string]string{common, extra} {
			for k, v := range src {
				m[k] = v
			}
		}
		return chassisconfig.FromMap(m)
	}
	ctx := context.Background()
	s := &services{t: t, client: &http.Client{Timeout: 20 * time.Second}}

	priv, pub := writeKeys(t)
	acfg, err := authconfig.Load(with(map[string]string{
		"DB_NAME": infra.UniqueDBName("auth-obs"), "REDIS_DB": "0", "RSA_PRIVATE_KEY_PATH": priv, "RSA_PUBLIC_KEY_PATH": pub,
		"BCRYPT_COST": "4", "SEED_API_KEY": "observability-test-key", "SEED_ADMIN_EMAIL": adminEmail, "SEED_ADMIN_PASSWORD": adminPassword,
	}))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authstartup.New(ctx, acfg, runtime.Options{LogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.authURL = serve(t, auth.Run)
	s.authMetrics = "http://" + auth.Runtime.MetricsAddr() + "/metrics"

	bcfg, err := blogconfig.Load(with(map[string]string{"DB_NAME": infra.UniqueDBName("blog-obs"), "REDIS_DB": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	blog, err := blogstartup.New(ctx, bcfg, runtime.Options{LogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.blogURL = serve(t, blog.Run)
	s.blogMetrics = "http://" + blog.Runtime.MetricsAddr() + "/metrics"
	return s
}

// do sends one request and returns the status and the envelope's data.
func (s *services) do(method, url, token string, body any) (int, json.RawMessage) {
	s.t.Helper()
	var payload io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		payload = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, payload)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &env)
	return res.StatusCode, env.Data
}

// must is do that fails the test unless the answer has status want.
func (s *services) must(want int, method, url, token string, body any) json.RawMessage {
	s.t.Helper()
	status, data := s.do(method, url, token, body)
	if status != want {
		s.t.Fatalf("%s %s: %d, want %d (%s)", method, url, status, want, data)
	}
	return data
}

// traffic drives every kind of work the dashboard and the alerts watch:
// sign-in and profile on auth; protected writes on blog (NATS requests to
// auth: authentication and authorization, author profiles); public reads
// twice each (a miss, then hits in Redis and in the per-replica caches);
// lists, similar blogs; errors (404, 401); the health routes.
func (s *services) traffic() {
	s.t.Helper()
	var signin struct {
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(s.must(200, "POST", s.authURL+"/signin/basic", "", map[string]string{"email": adminEmail, "password": adminPassword}), &signin); err != nil {
		s.t.Fatal(err)
	}
	token := signin.Tokens.AccessToken
	s.must(200, "GET", s.authURL+"/profile/mine", token, nil)
	var ids []string
	for i := range 3 {
		var b struct {
			ID string `json:"_id"`
		}
		data := s.must(200, "POST", s.blogURL+"/author", token, map[string]any{
			"title": fmt.Sprintf("Observability Matters %d", i), "description": "what the dashboard shows",
			"draftText": "body", "slug": fmt.Sprintf("observability-matters-%d", i), "imgUrl": "https://example.com/a.png",
			"tags": []string{"OBSERVABILITY"},
		})
		if err := json.Unmarshal(data, &b); err != nil {
			s.t.Fatal(err)
		}
		s.must(200, "PUT", s.blogURL+"/author/submit/id/"+b.ID, token, nil)
		s.must(200, "PUT", s.blogURL+"/editor/publish/id/"+b.ID, token, nil)
		ids = append(ids, b.ID)
	}
	for range 2 {
		for _, id := range ids {
			s.must(200, "GET", s.blogURL+"/id/"+id, "", nil)
			s.must(200, "GET", s.blogURL+"/list/similar/id/"+id, "", nil)
		}
		s.must(200, "GET", s.blogURL+"/slug/observability-matters-0", "", nil)
		s.must(200, "GET", s.blogURL+"/list/latest?page=1&limit=10", "", nil)
		s.must(200, "GET", s.blogURL+"/list/tag/OBSERVABILITY?page=1&limit=10", "", nil)
		s.must(200, "GET", s.blogURL+"/author/drafts?page=1&limit=10", token, nil)
	}
	s.must(404, "GET", s.blogURL+"/id/000000000000000000000000", "", nil)
	s.must(401, "GET", s.blogURL+"/author/drafts?page=1&limit=10", "not-a-token", nil)
	for _, base := range []string{s.authURL, s.blogURL} {
		s.must(200, "GET", base+"/health/ready", "", nil)
		s.must(200, "GET", base+"/health/live", "", nil)
	}
}

// scrape reads a /metrics page into its metric families.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return families
}
