package tests

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/auth_service/config"
	"blogplatform/auth_service/openapi"
	"blogplatform/auth_service/startup"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/envelope"
	chassisopenapi "blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
)

// keyPair is a test's own RSA key pair, written as the service reads it.
type keyPair struct {
	private           *rsa.PrivateKey
	privPath, pubPath string
	publicPEM         []byte
}

func newKeys(t testing.TB) keyPair {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPair{private: k, privPath: filepath.Join(dir, "private.pem"), pubPath: filepath.Join(dir, "public.pem"),
		publicPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(kp.privPath, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.pubPath, kp.publicPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return kp
}

// stack is what one or more replicas share: a database, Redis, a NATS server
// and the key pair. Each stack gets a private NATS server because every
// replica serves the fixed subjects auth.* in queue group q: on a shared
// server, a test's request could reach another test's replica.
type stack struct {
	t        testing.TB
	infra    *testinfra.Env
	dbName   string
	natsURL  string
	nats     *embedded.NATS
	keys     keyPair
	apiKey   string // random per stack: verdicts live in the shared Redis
	settings map[string]string
	nc       *nats.Conn
	// client is the address requests come from: one per stack, so the
	// per-address limits (kept in the Redis all tests share) of parallel
	// tests do not mix.
	client string
}

// newStack uses the package's shared store and Redis.
func newStack(t testing.TB) *stack { return newStackOn(t, env) }

// newStackOn uses infra's store and Redis (a private testinfra.NewEnv for
// fault injection).
func newStackOn(t testing.TB, infra *testinfra.Env) *stack {
	t.Helper()
	ns, err := embedded.StartNATS(embedded.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	s := &stack{t: t, infra: infra, dbName: infra.UniqueDBName("auth"), natsURL: ns.ClientURL(), nats: ns, keys: newKeys(t), apiKey: randomHex(16)}
	s.settings = map[string]string{
		"GO_MODE":               "test",
		"LOG_LEVEL":             "error",
		"METRICS_PORT":          "0",
		"DB_HOST":               infra.Store.Host(),
		"DB_PORT":               strconv.Itoa(infra.Store.Port()),
		"DB_NAME":               s.dbName,
		"DB_MIN_POOL_SIZE":      "0",
		"DB_MAX_POOL_SIZE":      "20",
		"REDIS_HOST":            infra.Redis.Host(),
		"REDIS_PORT":            strconv.Itoa(infra.Redis.Port()),
		"REDIS_PASSWORD":        infra.RedisPassword(),
		"NATS_URL":              s.natsURL,
		"RSA_PRIVATE_KEY_PATH":  s.keys.privPath,
		"RSA_PUBLIC_KEY_PATH":   s.keys.pubPath,
		"BCRYPT_COST":           "4",
		"SEED_API_KEY":          s.apiKey,
		"SEED_ADMIN_EMAIL":      "admin@unusualcode.org",
		"SEED_ADMIN_PASSWORD":   "changeit",
		"RATE_LIMIT_PER_MINUTE": "100000",
		"RATE_LIMIT_BURST":      "10000",
		"SIGNIN_FAILURE_LIMIT":  "100000",
		"SHUTDOWN_GRACE_PERIOD": "2s",
	}
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s.nc = nc
	s.client = randomAddr()
	return s
}

// randomAddr is a random client address in 10.0.0.0/8.
func randomAddr() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "10." + strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2])) + ":1234"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// config builds the configuration of a replica with overrides.
func (s *stack) config(overrides map[string]string) config.Config {
	s.t.Helper()
	values := make(map[string]string, len(s.settings)+len(overrides))
	for k, v := range s.settings {
		values[k] = v
	}
	for k, v := range overrides {
		values[k] = v
	}
	cfg, err := config.Load(chassisconfig.FromMap(values))
	if err != nil {
		s.t.Fatal(err)
	}
	return cfg
}

// replica starts one App of the stack, closed at the end of the test.
func (s *stack) replica(overrides map[string]string) *replica {
	s.t.Helper()
	return s.replicaLoggingTo(io.Discard, overrides)
}

// loggedReplica is replica with its log (warnings and errors) kept for the
// test to inspect.
func (s *stack) loggedReplica(overrides map[string]string) (*replica, *logBuffer) {
	s.t.Helper()
	values := map[string]string{"LOG_LEVEL": "warn"}
	for k, v := range overrides {
		values[k] = v
	}
	buf := &logBuffer{}
	return s.replicaLoggingTo(buf, values), buf
}

// logBuffer is a log destination safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (s *stack) replicaLoggingTo(w io.Writer, overrides map[string]string) *replica {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := s.config(overrides)
	// Every query the replica sends is recorded; TestMain checks them
	// against the declared indexes when the package's tests end.
	cfg.Mongo.Monitor = s.infra.Queries.Monitor()
	app, err := startup.New(ctx, cfg, runtime.Options{LogWriter: w})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if err := app.Close(context.Background()); err != nil {
			s.t.Errorf("close replica: %v", err)
		}
	})
	return &replica{App: app, t: s.t, stack: s}
}

// db is a direct connection to the stack's database, for fixtures and
// checks that no endpoint offers.
func (s *stack) db() *mongo.Database {
	s.t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(s.infra.MongoURI()))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(s.dbName)
}

type replica struct {
	*startup.App
	t     testing.TB
	stack *stack
}

// response is a decoded envelope.
type response struct {
	status int
	header http.Header
	raw    string
	env    envelope.Envelope
}

func (r response) message() string { return r.env.Message }

// data is the envelope's data when it is a JSON object, nil otherwise.
func (r response) data() map[string]any {
	var d map[string]any
	_ = json.Unmarshal(r.env.Data, &d)
	return d
}

// do sends a request through the replica's engine; headers are name/value
// pairs.
func (r *replica) do(method, path, body string, headers ...string) response {
	r.t.Helper()
	return r.doFrom(r.stack.client, method, path, body, headers...)
}

// doFrom is do from the client address addr ("host:port").
func (r *replica) doFrom(addr, method, path, body string, headers ...string) response {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = addr
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	r.Engine.ServeHTTP(w, req)
	conformsToDocument(r.t, req, w.Code, w.Header(), w.Body.Bytes())
	return decode(r.t, w.Code, w.Header(), w.Body.String())
}

// document is the service's OpenAPI description; every response a test sees
// must match it, which keeps the document true.
var document = sync.OnceValues(func() (*chassisopenapi.Validator, error) { return chassisopenapi.Load(openapi.Spec) })

func conformsToDocument(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	v, err := document()
	if err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	if err := v.ValidateResponse(req, status, header, body); err != nil {
		t.Errorf("openapi: %v", err)
	}
}

func decode(t testing.TB, status int, header http.Header, raw string) response {
	t.Helper()
	res := response{status: status, header: header, raw: raw}
	if err := json.Unmarshal([]byte(raw), &res.env); err != nil {
		t.Fatalf("status %d: body is not JSON: %q", status, raw)
	}
	return res
}

// expect checks status, envelope code/status and the exact message.
func expect(t testing.TB, res response, status int, message string) {
	t.Helper()
	if res.status != status || res.message() != message {
		t.Fatalf("got %d %q, want %d %q (body %s)", res.status, res.message(), status, message, res.raw)
	}
	wantCode := "10001"
	if status < 300 {
		wantCode = "10000"
	}
	if res.env.Code != wantCode || res.env.Status != status {
		t.Fatalf("envelope code/status %v/%v for %d", res.env.Code, res.env.Status, status)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
}

// session is a signed-up or signed-in user.
type session struct {
	userID, email, password string
	access, refresh         string
}

func (s session) bearer() string { return "Bearer " + s.access }

func uniqueEmail() string {
	return "user-" + randomHex(6) + "@example.com"
}

// signUp registers a fresh user and returns its session.
func (r *replica) signUp() session {
	r.t.Helper()
	email, password := uniqueEmail(), "secret1"
	res := r.do("POST", "/signup/basic", `{"email":"`+email+`","password":"`+password+`","name":"Learner One"}`)
	expect(r.t, res, 200, "success")
	return sessionOf(r.t, res, email, password)
}

func (r *replica) signIn(email, password string) session {
	r.t.Helper()
	res := r.do("POST", "/signin/basic", `{"email":"`+email+`","password":"`+password+`"}`)
	expect(r.t, res, 200, "success")
	return sessionOf(r.t, res, email, password)
}

func sessionOf(t testing.TB, res response, email, password string) session {
	t.Helper()
	u, _ := res.data()["user"].(map[string]any)
	tk, _ := res.data()["tokens"].(map[string]any)
	s := session{email: email, password: password}
	s.userID, _ = u["_id"].(string)
	s.access, _ = tk["accessToken"].(string)
	s.refresh, _ = tk["refreshToken"].(string)
	if s.userID == "" || s.access == "" || s.refresh == "" {
		t.Fatalf("incomplete sign-up/in data: %s", res.raw)
	}
	return s
}

// natsRequest sends a raw payload to subject and returns the raw reply.
func (s *stack) natsRequest(subject, payload string) string {
	s.t.Helper()
	msg, err := s.nc.Request(subject, []byte(payload), 5*time.Second)
	if err != nil {
		s.t.Fatalf("%s: %v", subject, err)
	}
	return string(msg.Data)
}

// natsReply decodes a reply envelope.
func (s *stack) natsReply(subject, payload string) (data map[string]any, errText string) {
	s.t.Helper()
	raw := s.natsRequest(subject, payload)
	var env struct {
		Data  map[string]any `json:"data"`
		Error string         `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		s.t.Fatalf("%s: reply %q: %v", subject, raw, err)
	}
	return env.Data, env.Error
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// soon reports whether cond holds now or within a second. It is for
// another replica than the one that made a change: the change's event
// reaches other replicas in parallel with the answer to the change (the
// changing replica waits until its own copy of the event is back, so the
// others nearly always have theirs too). A cache that honoured its TTL
// instead of the event (a minute in these tests) cannot pass it. It logs
// when the first try was not enough.
func soon(cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		if cond() {
			return true
		}
	}
	return false
}

// expectSoon is expect for another replica than the one that made a
// change (see soon).
func expectSoon(t testing.TB, do func() response, status int, message string) {
	t.Helper()
	tries := 0
	var res response
	soon(func() bool {
		tries++
		res = do()
		return res.status == status && res.message() == message
	})
	if tries > 1 {
		t.Logf("the other replica answered %d after %d tries", status, tries)
	}
	expect(t, res, status, message)
}
