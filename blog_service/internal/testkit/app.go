package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/blog_service/config"
	"blogplatform/blog_service/openapi"
	"blogplatform/blog_service/startup"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/envelope"
	chassisopenapi "blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
)

// AuthTimeout is the NATS request timeout of test apps: short, so the
// "auth unavailable" cases answer quickly.
const AuthTimeout = 300 * time.Millisecond

// RedisDBs hands out Redis logical databases to tests: each test holds one
// exclusively until it ends, and finds it empty.
type RedisDBs struct{ free chan int }

// NewRedisDBs offers every database of a default Redis (0..15).
func NewRedisDBs() *RedisDBs {
	r := &RedisDBs{free: make(chan int, 16)}
	for i := 0; i < 16; i++ {
		r.free <- i
	}
	return r
}

// Take returns a flushed database, released when t ends.
func (r *RedisDBs) Take(t testing.TB, env *testinfra.Env) int {
	t.Helper()
	db := <-r.free
	t.Cleanup(func() { r.free <- db })
	rdb := testRedis(env, db)
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("flush redis db %d: %v", db, err)
	}
	return db
}

// testRedis is a client for assertions; it fails fast while Redis is down.
func testRedis(env *testinfra.Env, db int) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: env.RedisAddr(), Password: env.RedisPassword(), DB: db, DisableIdentity: true,
		MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond,
	})
}

// App is a blog_service on the test infrastructure with its own database
// and Redis database.
type App struct {
	*startup.App
	Env     *testinfra.Env
	DBName  string
	RedisDB int
	Redis   *redis.Client // the app's Redis database, for cache assertions
	// Commands counts the store queries this app sends.
	Commands *Commands
	// document is the service's OpenAPI description: every response a test
	// sees must match it, which keeps the document true.
	document *chassisopenapi.Validator
}

// Settings override configuration variables of a test app.
type Settings map[string]string

// NewApp starts an App on env; it is closed when t ends.
func NewApp(t testing.TB, env *testinfra.Env, dbs *RedisDBs, settings Settings) *App {
	t.Helper()
	redisDB := dbs.Take(t, env)
	dbName := env.UniqueDBName("blog")
	values := map[string]string{
		"GO_MODE":              "test",
		"LOG_LEVEL":            "error",
		"METRICS_PORT":         "0",
		"DB_HOST":              env.Store.Host(),
		"DB_PORT":              strconv.Itoa(env.Store.Port()),
		"DB_NAME":              dbName,
		"REDIS_HOST":           env.Redis.Host(),
		"REDIS_PORT":           strconv.Itoa(env.Redis.Port()),
		"REDIS_PASSWORD":       env.RedisPassword(),
		"REDIS_DB":             strconv.Itoa(redisDB),
		"NATS_URL":             env.NATSURL(),
		"NATS_REQUEST_TIMEOUT": AuthTimeout.String(),
		"CACHE_RETRY_INTERVAL": "50ms",
	}
	for k, v := range settings {
		values[k] = v
	}
	dbName = values["DB_NAME"]
	cfg, err := config.Load(chassisconfig.FromMap(values))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	// Every query the app sends is recorded; the package checks them
	// against the declared indexes when its tests end.
	cfg.Mongo.Monitor = env.Queries.Monitor()
	commands := newCommands()
	cfg.Mongo.Monitor = commands.monitor(cfg.Mongo.Monitor)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := startup.New(ctx, cfg, runtime.Options{LogWriter: io.Discard, StartupTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("startup: %v", err)
	}
	document, err := chassisopenapi.Load(openapi.Spec)
	if err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	rdb := testRedis(env, redisDB)
	t.Cleanup(func() {
		_ = rdb.Close()
		if err := app.Close(context.Background()); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	return &App{App: app, Env: env, DBName: dbName, RedisDB: redisDB, Redis: rdb, Commands: commands, document: document}
}

// Response is one answer of the App: the raw answer and its decoded envelope.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	envelope.Envelope
}

// Do sends a request straight to the engine. body is sent as is when it is
// a string or []byte, JSON-encoded otherwise (nil sends no body).
func (a *App) Do(t testing.TB, method, path, authorization string, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	a.Engine.ServeHTTP(rec, req)
	res := Response{Status: rec.Code, Header: rec.Header(), Raw: rec.Body.Bytes()}
	if err := a.document.ValidateResponse(req, res.Status, res.Header, res.Raw); err != nil {
		t.Errorf("openapi: %v", err)
	}
	if err := json.Unmarshal(res.Raw, &res.Envelope); err != nil {
		t.Fatalf("%s %s: body is not the envelope: %v: %s", method, path, err, res.Raw)
	}
	if res.Envelope.Status != res.Status {
		t.Fatalf("%s %s: envelope status %d, HTTP status %d", method, path, res.Envelope.Status, res.Status)
	}
	return res
}

// Want checks status and message (and the envelope code that goes with the
// status).
func (r Response) Want(t testing.TB, status int, message string) Response {
	t.Helper()
	code := "10001"
	if status < 300 {
		code = "10000"
	}
	if r.Status != status || r.Message != message || r.Code != code {
		t.Fatalf("got %d %q (code %s), want %d %q (code %s); body %s", r.Status, r.Message, r.Code, status, message, code, r.Raw)
	}
	return r
}

// Decode unmarshals the envelope's data into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data: %v: %s", err, r.Data)
	}
}

// Blog is the union of the blog views as tests read them.
type Blog struct {
	ID          string   `json:"_id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Text        *string  `json:"text"`
	DraftText   *string  `json:"draftText"`
	Slug        string   `json:"slug"`
	ImgURL      string   `json:"imgUrl"`
	Score       float64  `json:"score"`
	Tags        []string `json:"tags"`
	Author      *struct {
		ID            string `json:"_id"`
		Name          string `json:"name"`
		ProfilePicURL string `json:"profilePicUrl"`
	} `json:"author"`
	Submitted   *bool   `json:"submitted"`
	Drafted     *bool   `json:"drafted"`
	Published   *bool   `json:"published"`
	PublishedAt *string `json:"publishedAt"`
	CreatedAt   *string `json:"createdAt"`
	UpdatedAt   *string `json:"updatedAt"`
}

// NewBlogBody is a valid create body; suffix keeps title and slug unique.
func NewBlogBody(suffix string) map[string]any {
	return map[string]any{
		"title":       "Quantum Gardening Basics " + suffix,
		"description": "How to grow plants with patience and care",
		"draftText":   "draft body " + suffix,
		"slug":        "qg basics " + suffix,
		"imgUrl":      "https://x.io/a.png",
		"tags":        []string{"SCIENCE", "GARDEN"},
	}
}

// Create creates a blog as the author behind token and returns it.
func (a *App) Create(t testing.TB, token string, body map[string]any) Blog {
	t.Helper()
	var b Blog
	a.Do(t, http.MethodPost, "/author", token, body).Want(t, 200, "blog created successfully").Decode(t, &b)
	return b
}

// Publish takes a blog of the author behind token through submit and
// publish.
func (a *App) Publish(t testing.TB, token, id string) {
	t.Helper()
	a.Do(t, http.MethodPut, "/author/submit/id/"+id, token, nil).Want(t, 200, "blog submitted successfully")
	a.Do(t, http.MethodPut, "/editor/publish/id/"+id, EditorToken, nil).Want(t, 200, "blog published successfully")
}

// IDs lists the _id of every item in a list response.
func IDs(t testing.TB, r Response) []string {
	t.Helper()
	var items []Blog
	r.Decode(t, &items)
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// CountBlogs counts the documents of the app's blogs collection.
func (a *App) CountBlogs(t testing.TB) int64 {
	t.Helper()
	n, err := a.Store.Collection().CountDocuments(context.Background(), map[string]any{})
	if err != nil {
		t.Fatalf("count blogs: %v", err)
	}
	return n
}
