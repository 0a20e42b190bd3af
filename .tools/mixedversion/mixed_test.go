// Package mixedversion starts this platform's services on databases the
// reference implementation wrote (devkit/refdata: its document shapes and
// index names) and checks every route answers as for our own data, that the
// start-up migrations bring the data up to our shapes exactly once with two
// replicas starting together, and that a later start is a no-op.
package mixedversion

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	authconfig "blogplatform/auth_service/config"
	"blogplatform/auth_service/migrations"
	authstartup "blogplatform/auth_service/startup"
	blogconfig "blogplatform/blog_service/config"
	blogmigrations "blogplatform/blog_service/migrations"
	blogstartup "blogplatform/blog_service/startup"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/migrate"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/envelope"
	"blogplatform/devkit/refdata"
	"blogplatform/devkit/testinfra"
	"blogplatform/tools/internal/keypair"
)

var env *testinfra.Env

func TestMain(m *testing.M) { os.Exit(testinfra.Run(m, &env)) }

// The reference's data: three users besides the seeded admin, and blogs in
// every state, two of them sharing distinctive title words (similar), one by
// an author that no longer exists.
var (
	// The hashes are bcrypt cost 5 of the passwords, as the reference's
	// sign-up stored them.
	author = refdata.User{Name: "Ref Author", Email: "author@ref.example", Password: "author-pass",
		PasswordHash: "$2a$05$qGfQ.IqIbLGZHPcR2vilQeges1mJAb7/TejbQsLwaS06zR0g3BsLG", ProfilePicURL: "https://img.ref.example/a.png", Roles: []string{refdata.Learner, refdata.Author}}
	editor = refdata.User{Name: "Ref Editor", Email: "editor@ref.example", Password: "editor-pass",
		PasswordHash: "$2a$05$MwpBGfgYKQtmTq8O0W4LWuPINXmf28ewCBkZ53aKQ3qHK3hf87nRy", Roles: []string{refdata.Learner, refdata.Editor}}
	learner = refdata.User{Name: "Ref Learner", Email: "learner@ref.example", Password: "learner-pass",
		PasswordHash: "$2a$05$/FATcjxieryiGYxevnlM7O3Fz5ATGl17c4/eW6lzQKH.tOsiP389O", Roles: []string{refdata.Learner}}
)

func referenceBlogs(authorID bson.ObjectID) []refdata.Blog {
	gone := bson.NewObjectID() // an author deleted since
	return []refdata.Blog{
		{Title: "Quasar gardening with kelp", Description: "Growing kelp under quasar light", DraftText: "kelp text", Text: "kelp text",
			Tags: []string{"GARDEN"}, Author: authorID, Slug: "quasar-gardening-kelp", ImgURL: "https://img.ref.example/k.png", Published: true},
		{Title: "Quasar gardening in winter", Description: "Kelp and quasar nights", DraftText: "winter text", Text: "winter text",
			Tags: []string{"GARDEN", "WINTER"}, Author: authorID, Slug: "quasar-gardening-winter", Published: true},
		{Title: "Unrelated pottery notes", Description: "Clay and glaze", DraftText: "clay", Tags: []string{"CRAFT"},
			Author: authorID, Slug: "pottery-notes", Drafted: true},
		{Title: "Submitted sailing log", Description: "Wind and tide", DraftText: "sail", Tags: []string{"SEA"},
			Author: authorID, Slug: "sailing-log", Submitted: true},
		{Title: "Orphan essay", Description: "Its author left", DraftText: "orphan", Text: "orphan",
			Tags: []string{"MISC"}, Author: gone, Slug: "orphan-essay", Published: true},
	}
}

type stack struct {
	t              *testing.T
	authDB, blogDB string
	priv, pub      string
	privateKey     *rsa.PrivateKey
	mongo          *mongo.Client
	auth           *refdata.Auth
	blogs          []refdata.Blog
	// Redis logical databases of this stack, so cached entries of another
	// test's blogs (same slugs) are never seen.
	authRedis, blogRedis int
}

func newStack(t *testing.T) *stack {
	s := &stack{t: t, authDB: env.UniqueDBName("ref-auth"), blogDB: env.UniqueDBName("ref-blog"),
		authRedis: env.NextRedisDB(), blogRedis: env.NextRedisDB()}
	c, err := mongo.Connect(options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	s.mongo = c
	// The key pair both families share (the reference's keys/ folder).
	dir := t.TempDir()
	if err := keypair.Write(dir, 2048, false); err != nil {
		t.Fatal(err)
	}
	s.priv, s.pub = keypair.Paths(dir)
	raw, err := os.ReadFile(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("private key file holds no PEM block")
	}
	if s.privateKey, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) seed() {
	ctx := context.Background()
	var err error
	if s.auth, err = refdata.SeedAuth(ctx, s.mongo.Database(s.authDB), []refdata.User{author, editor, learner}); err != nil {
		s.t.Fatal(err)
	}
	var skipped []string
	if s.blogs, skipped, err = refdata.SeedBlogs(ctx, s.mongo.Database(s.blogDB), referenceBlogs(s.auth.Users[author.Email].ID)); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("reference data written; indexes the store refused: %v", skipped)
}

func (s *stack) common() map[string]string {
	return map[string]string{
		"GO_MODE": "release", "LOG_LEVEL": "error", "METRICS_PORT": "0", "ALLOW_EXAMPLE_SECRETS": "true",
		"DB_HOST": env.Store.Host(), "DB_PORT": fmt.Sprint(env.Store.Port()),
		"REDIS_HOST": env.Redis.Host(), "REDIS_PORT": fmt.Sprint(env.Redis.Port()), "REDIS_PASSWORD": env.RedisPassword(),
		"NATS_URL": env.NATSURL(), "DB_SERVER_SELECTION_TIMEOUT": "2s", "SHUTDOWN_GRACE_PERIOD": "2s",
	}
}

func with(base map[string]string, extra map[string]string) map[string]string {
	m := maps.Clone(base)
	maps.Copy(m, extra)
	return m
}

// start starts n auth replicas together, then n blog replicas together.
// (Tests of this package run one after the other: the auth subjects are
// fixed, so two tests' replicas must not serve at once.)
func (s *stack) start(n int) (auths []*authstartup.App, blogs []*blogstartup.App) {
	t := s.t
	ctx := context.Background()
	acfg, err := authconfig.Load(chassisconfig.FromMap(with(s.common(), map[string]string{
		"DB_NAME": s.authDB, "REDIS_DB": fmt.Sprint(s.authRedis), "NATS_SERVICE_NAME": "auth",
		"RSA_PRIVATE_KEY_PATH": s.priv, "RSA_PUBLIC_KEY_PATH": s.pub, "BCRYPT_COST": "4",
	})))
	if err != nil {
		t.Fatal(err)
	}
	bcfg, err := blogconfig.Load(chassisconfig.FromMap(with(s.common(), map[string]string{
		"DB_NAME": s.blogDB, "REDIS_DB": fmt.Sprint(s.blogRedis), "NATS_SERVICE_NAME": "blog",
	})))
	if err != nil {
		t.Fatal(err)
	}
	auths = make([]*authstartup.App, n)
	blogs = make([]*blogstartup.App, n)
	together(t, n, func(i int) error {
		a, err := authstartup.New(ctx, acfg, runtime.Options{LogWriter: io.Discard})
		auths[i] = a
		return err
	})
	together(t, n, func(i int) error {
		b, err := blogstartup.New(ctx, bcfg, runtime.Options{LogWriter: io.Discard})
		blogs[i] = b
		return err
	})
	for _, a := range auths {
		t.Cleanup(func() { _ = a.Close(context.Background()) })
	}
	for _, b := range blogs {
		t.Cleanup(func() { _ = b.Runtime.Close(context.Background()) })
	}
	return auths, blogs
}

func together(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; errs[i] = f(i) }()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (s *stack) records(db string) map[string]migrate.Record {
	s.t.Helper()
	cur, err := s.mongo.Database(db).Collection("migrations").Find(context.Background(), bson.D{{Key: "lock", Value: bson.D{{Key: "$exists", Value: false}}}})
	if err != nil {
		s.t.Fatal(err)
	}
	var recs []migrate.Record
	if err := cur.All(context.Background(), &recs); err != nil {
		s.t.Fatal(err)
	}
	m := map[string]migrate.Record{}
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

type answer struct {
	status  int
	message string
	data    json.RawMessage
}

func call(t *testing.T, h http.Handler, method, path, token string, body any, header ...string) answer {
	t.Helper()
	var payload io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		payload = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, payload)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	e, err := envelope.Decode(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{status: rec.Code, message: e.Message, data: e.Data}
}

func (a answer) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.data, v); err != nil {
		t.Fatalf("data %s: %v", a.data, err)
	}
}

func expect(t *testing.T, what string, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %q %s, want %d", what, a.status, a.message, a.data, status)
	}
}

type publicBlog struct {
	ID     string `json:"_id"`
	Title  string `json:"title"`
	Slug   string `json:"slug"`
	Text   string `json:"text"`
	Author struct {
		ID            string `json:"_id"`
		Name          string `json:"name"`
		ProfilePicURL string `json:"profilePicUrl"`
	} `json:"author"`
	Tags []string `json:"tags"`
}

type item struct {
	ID   string `json:"_id"`
	Slug string `json:"slug"`
}

func slugs(t *testing.T, a answer) []string {
	t.Helper()
	var items []item
	a.into(t, &items)
	var out []string
	for _, i := range items {
		out = append(out, i.Slug)
	}
	return out
}

func signIn(t *testing.T, h http.Handler, email, password string) string {
	t.Helper()
	res := call(t, h, "POST", "/signin/basic", "", map[string]string{"email": email, "password": password})
	expect(t, "sign-in "+email, res, 200)
	var d struct {
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	res.into(t, &d)
	return d.Tokens.AccessToken
}

// referenceToken is an access token as the reference signs it, with the
// key both services share.
func (s *stack) referenceToken(ks refdata.Keystore) string {
	tok, err := refdata.AccessToken(s.privateKey, ks, authconfig.DefaultIssuer, authconfig.DefaultAudience, time.Now(), time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func waitBackground(t *testing.T, apps []*blogstartup.App) {
	t.Helper()
	for _, b := range apps {
		select {
		case <-b.Migrations.BackgroundDone():
		case <-time.After(60 * time.Second):
			t.Fatal("blog background migrations did not finish in 60s")
		}
	}
}

func TestServicesStartOnReferenceData(t *testing.T) {
	s := newStack(t)
	s.seed()
	begin := time.Now()
	auths, blogs := s.start(2)
	t.Logf("two auth and two blog replicas started together on the reference data in %s", time.Since(begin).Round(time.Millisecond))
	waitBackground(t, blogs)
	t.Logf("blog backfills done %s after the start", time.Since(begin).Round(time.Millisecond))

	// Every migration ran exactly once, by one of the replicas.
	authRecs, blogRecs := s.records(s.authDB), s.records(s.blogDB)
	for db, want := range map[string][]string{
		s.authDB: {migrations.StepIndexes},
		s.blogDB: {blogmigrations.TermsStep, blogmigrations.AuthorProfileStep},
	} {
		recs := authRecs
		if db == s.blogDB {
			recs = blogRecs
		}
		for _, name := range want {
			if r := recs[name]; r.State != migrate.StateDone || r.Attempts != 1 {
				t.Errorf("%s: record %+v, want done after exactly one attempt", name, r)
			}
		}
	}
	// The backfills reached every reference blog.
	missing, err := s.mongo.Database(s.blogDB).Collection("blogs").CountDocuments(context.Background(), bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "authorProfile", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "terms", Value: bson.D{{Key: "$exists", Value: false}}}},
	}}})
	if err != nil || missing != 0 {
		t.Errorf("%d blogs still without authorProfile or terms (%v)", missing, err)
	}

	s.checkRoutes(t, auths[1].Engine, blogs[0].Engine)

	// A later start (a new replica of each) finds everything done: it runs
	// nothing and writes no record.
	again, againBlogs := s.start(1)
	waitBackground(t, againBlogs)
	for db, before := range map[string]map[string]migrate.Record{s.authDB: authRecs, s.blogDB: blogRecs} {
		after := s.records(db)
		for name, r := range before {
			if a := after[name]; a.Attempts != r.Attempts || !a.UpdatedAt.Equal(r.UpdatedAt) {
				t.Errorf("%s: a second start changed the record: %+v -> %+v", name, r, a)
			}
		}
	}
	s.checkRoutes(t, again[0].Engine, againBlogs[0].Engine)
}

// checkRoutes: every route answers on the reference's data as on ours.
func (s *stack) checkRoutes(t *testing.T, auth, blog http.Handler) {
	ref := map[string]refdata.Blog{}
	for _, b := range s.blogs {
		ref[b.Slug] = b
	}
	authorID := s.auth.Users[author.Email].ID.Hex()

	expect(t, "reference api key", call(t, auth, "GET", "/verify/apikey", "", nil, "x-api-key", refdata.APIKey), 200)
	expect(t, "unknown api key", call(t, auth, "GET", "/verify/apikey", "", nil, "x-api-key", "nope"), 403)

	// The seeded admin (bcrypt cost 10 hash) and signed-up users (cost 5).
	adminToken := signIn(t, auth, refdata.AdminEmail, refdata.AdminPassword)
	authorToken := signIn(t, auth, author.Email, author.Password)
	editorToken := signIn(t, auth, editor.Email, editor.Password)
	expect(t, "wrong password", call(t, auth, "POST", "/signin/basic", "", map[string]string{"email": learner.Email, "password": "wrong-pass"}), 401)

	var mine struct {
		Email string `json:"email"`
		Roles []struct {
			Code string `json:"code"`
		} `json:"roles"`
	}
	res := call(t, auth, "GET", "/profile/mine", adminToken, nil)
	expect(t, "admin profile", res, 200)
	res.into(t, &mine)
	if mine.Email != refdata.AdminEmail || len(mine.Roles) != 4 {
		t.Errorf("admin profile %+v, want its email and four roles", mine)
	}
	var public struct {
		Name          string `json:"name"`
		ProfilePicURL string `json:"profilePicUrl"`
	}
	res = call(t, auth, "GET", "/profile/id/"+authorID, "", nil)
	expect(t, "public profile", res, 200)
	res.into(t, &public)
	if public.Name != author.Name || public.ProfilePicURL != author.ProfilePicURL {
		t.Errorf("public profile %+v", public)
	}
	// A session the reference opened (its keystore, its token) still works.
	ks := s.auth.Keystores[0]
	expect(t, "reference session", call(t, auth, "GET", "/profile/mine", s.referenceToken(ks), nil), 200)

	// Public blog reads show the author, resolved from auth.
	for _, path := range []string{"/id/" + ref["quasar-gardening-kelp"].ID.Hex(), "/slug/quasar-gardening-kelp"} {
		var b publicBlog
		res := call(t, blog, "GET", path, "", nil)
		expect(t, path, res, 200)
		res.into(t, &b)
		if b.Author.ID != authorID || b.Author.Name != author.Name || b.Author.ProfilePicURL != author.ProfilePicURL || b.Text != "kelp text" {
			t.Errorf("%s: %+v", path, b)
		}
	}
	var orphan publicBlog
	res = call(t, blog, "GET", "/slug/orphan-essay", "", nil)
	expect(t, "blog of a deleted author", res, 200)
	res.into(t, &orphan)
	if orphan.Author.Name != "" {
		t.Errorf("blog of a deleted author shows author %+v", orphan.Author)
	}
	expect(t, "draft is not public", call(t, blog, "GET", "/slug/pottery-notes", "", nil), 404)

	// Lists include the reference's blogs; similar finds the other one.
	if got := slugs(t, call(t, blog, "GET", "/list/latest?page=1&limit=20", "", nil)); !slices.Contains(got, "quasar-gardening-winter") || !slices.Contains(got, "orphan-essay") {
		t.Errorf("latest %v", got)
	}
	if got := slugs(t, call(t, blog, "GET", "/list/tag/GARDEN?page=1&limit=20", "", nil)); len(got) != 2 {
		t.Errorf("tag GARDEN %v, want the two garden blogs", got)
	}
	if got := slugs(t, call(t, blog, "GET", "/list/similar/id/"+ref["quasar-gardening-kelp"].ID.Hex(), "", nil)); !slices.Contains(got, "quasar-gardening-winter") {
		t.Errorf("similar to the kelp blog %v, want the winter blog", got)
	}

	// Author routes on the reference's blogs.
	if got := slugs(t, call(t, blog, "GET", "/author/published?page=1&limit=20", authorToken, nil)); len(got) != 2 {
		t.Errorf("author published %v", got)
	}
	if got := slugs(t, call(t, blog, "GET", "/author/drafts?page=1&limit=20", authorToken, nil)); !slices.Contains(got, "pottery-notes") {
		t.Errorf("author drafts %v", got)
	}
	var private publicBlog
	res = call(t, blog, "GET", "/author/id/"+ref["pottery-notes"].ID.Hex(), authorToken, nil)
	expect(t, "author reads a reference draft", res, 200)
	res.into(t, &private)
	if private.Author.Name != author.Name {
		t.Errorf("author view %+v", private)
	}
	// Editor routes: the reference's submitted blog can be published.
	if got := slugs(t, call(t, blog, "GET", "/editor/submitted?page=1&limit=20", editorToken, nil)); !slices.Contains(got, "sailing-log") {
		t.Errorf("editor submitted %v", got)
	}
	res = call(t, blog, "GET", "/editor/id/"+ref["quasar-gardening-winter"].ID.Hex(), editorToken, nil)
	expect(t, "editor reads a reference blog", res, 200)
	res.into(t, &private)
	if private.Author.Name != author.Name {
		t.Errorf("editor view %+v", private)
	}
	expect(t, "learner is no author", call(t, blog, "GET", "/author/drafts?page=1&limit=20", signIn(t, auth, learner.Email, learner.Password), nil), 403)
}

// Writes through our services on reference blogs: the editor publishes the
// reference's submitted blog, which then reads like any other.
func TestEditorPublishesReferenceBlog(t *testing.T) {
	s := newStack(t)
	s.seed()
	auths, blogs := s.start(1)
	waitBackground(t, blogs)
	auth, blog := auths[0].Engine, blogs[0].Engine
	editorToken := signIn(t, auth, editor.Email, editor.Password)
	var id string
	for _, b := range s.blogs {
		if b.Slug == "sailing-log" {
			id = b.ID.Hex()
		}
	}
	expect(t, "publish the reference's submitted blog", call(t, blog, "PUT", "/editor/publish/id/"+id, editorToken, nil), 200)
	var b publicBlog
	res := call(t, blog, "GET", "/slug/sailing-log", "", nil)
	expect(t, "read it", res, 200)
	res.into(t, &b)
	if b.Author.Name != author.Name || b.Text != "sail" {
		t.Errorf("published reference blog %+v", b)
	}
}
