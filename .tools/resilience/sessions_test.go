package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"

	authconfig "blogplatform/auth_service/config"
	authopenapi "blogplatform/auth_service/openapi"
	authstartup "blogplatform/auth_service/startup"
	blogconfig "blogplatform/blog_service/config"
	blogopenapi "blogplatform/blog_service/openapi"
	blogstartup "blogplatform/blog_service/startup"
	"blogplatform/chassis/authwire"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

// sessionStack is two auth replicas and two blog replicas on one NATS
// server, the blog replicas keeping verified sessions far longer than any
// test runs (LOCAL_CACHE_TTL), so only auth's change events can end an
// entry. blog2 reaches NATS through a proxy the test can cut.
type sessionStack struct {
	*platform
	auths []*authstartup.App
	blogs []string // base URLs, blog1 then blog2
	blog2 *blogstartup.App
	proxy *cutProxy
	// checksConn and checksSeen see a copy of every
	// auth.authenticate.authorize request any blog replica sends.
	checksConn *nats.Conn
	checksSeen *nats.Subscription
}

const (
	drafts         = "/author/drafts?page=1&limit=10"
	sessionNoCache = "permission denied: invalid access token"
)

func startSessionStack(t *testing.T) *sessionStack {
	t.Helper()
	infra := testinfra.NewEnv(t)
	s := &sessionStack{platform: &platform{t: t, infra: infra, client: &http.Client{Timeout: 30 * time.Second}}}
	var err error
	if s.authSpec, err = openapi.Load(authopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	if s.blogSpec, err = openapi.Load(blogopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	s.proxy = startCutProxy(t, strings.TrimPrefix(infra.NATSURL(), "nats://"))
	settings := func(natsURL string, extra map[string]string) *chassisconfig.Source {
		m := map[string]string{
			"GO_MODE": "release", "LOG_LEVEL": "error", "METRICS_PORT": "0", "ALLOW_EXAMPLE_SECRETS": "true",
			"DB_HOST": infra.Store.Host(), "DB_PORT": fmt.Sprint(infra.Store.Port()),
			"REDIS_HOST": infra.Redis.Host(), "REDIS_PORT": fmt.Sprint(infra.Redis.Port()), "REDIS_PASSWORD": infra.RedisPassword(),
			"NATS_URL": natsURL, "NATS_REQUEST_TIMEOUT": natsTimeout.String(), "LOCAL_CACHE_TTL": "1h",
		}
		for k, v := range extra {
			m[k] = v
		}
		return chassisconfig.FromMap(m)
	}

	priv, pub := writeKeys(t)
	for range 2 {
		cfg, err := authconfig.Load(settings(infra.NATSURL(), map[string]string{
			"DB_NAME": "auth-sessions", "REDIS_DB": "0", "NATS_SERVICE_NAME": "auth",
			"RSA_PRIVATE_KEY_PATH": priv, "RSA_PUBLIC_KEY_PATH": pub, "BCRYPT_COST": "4",
			"SEED_API_KEY": apiKey, "SEED_ADMIN_EMAIL": adminEmail, "SEED_ADMIN_PASSWORD": adminPassword,
		}))
		if err != nil {
			t.Fatal(err)
		}
		app, err := authstartup.New(context.Background(), cfg, runtime.Options{LogWriter: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		url, _ := serve(t, app.Run)
		s.auths = append(s.auths, app)
		if s.authURL == "" {
			s.authURL = url // clients talk to auth1; auth2 answers NATS requests too
		}
	}
	for i, natsURL := range []string{infra.NATSURL(), "nats://" + s.proxy.addr()} {
		cfg, err := blogconfig.Load(settings(natsURL, map[string]string{
			"DB_NAME": "blog-sessions", "REDIS_DB": "2", "NATS_SERVICE_NAME": "blog",
		}))
		if err != nil {
			t.Fatal(err)
		}
		app, err := blogstartup.New(context.Background(), cfg, runtime.Options{LogWriter: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		url, _ := serve(t, app.Run)
		s.blogs = append(s.blogs, url)
		if i == 1 {
			s.blog2 = app
		}
	}
	s.blogURL = s.blogs[0]

	// A plain subscription sees a copy of every request the auth replicas
	// answer in their queue group: how many checks reached auth.
	nc, err := nats.Connect(infra.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s.checksConn = nc
	if s.checksSeen, err = nc.SubscribeSync(authwire.SubjectAuthenticateAuthorize); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

type session struct{ access, refresh, userID string }

func (s *sessionStack) sessionFrom(a answer, what string) session {
	s.t.Helper()
	if a.status != 200 {
		s.t.Fatalf("%s: %d %s", what, a.status, a.raw)
	}
	var data struct {
		User *struct {
			ID string `json:"_id"`
		} `json:"user"`
		Tokens *struct {
			AccessToken  string `json:"accessToken"`
			RefreshToken string `json:"refreshToken"`
		} `json:"tokens"`
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.Unmarshal(a.data, &data); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	if data.Tokens != nil {
		data.AccessToken, data.RefreshToken = data.Tokens.AccessToken, data.Tokens.RefreshToken
	}
	out := session{access: data.AccessToken, refresh: data.RefreshToken}
	if data.User != nil {
		out.userID = data.User.ID
	}
	if out.access == "" {
		s.t.Fatalf("%s: no access token in %s", what, a.raw)
	}
	return out
}

func (s *sessionStack) signInAdmin() session {
	s.t.Helper()
	return s.sessionFrom(s.do("POST", s.authURL, "/signin/basic", "", map[string]string{"email": adminEmail, "password": adminPassword}), "sign-in")
}

// expectEverywhere sends one protected request per blog replica, once, and
// checks each answer's status.
func (s *sessionStack) expectEverywhere(token string, status int, why string) {
	s.t.Helper()
	for i, blog := range s.blogs {
		if a := s.do("GET", blog, drafts, token, nil); a.status != status {
			s.t.Fatalf("%s: blog%d answered %d %s, want %d", why, i+1, a.status, a.raw, status)
		}
	}
}

// authChecks counts the checks that reached auth so far. The server queued
// each request to this subscription before passing it to auth, so it is
// here once the round trip of a flush is over.
func (s *sessionStack) authChecks() int {
	s.t.Helper()
	if err := s.checksConn.Flush(); err != nil {
		s.t.Fatal(err)
	}
	n, _, err := s.checksSeen.Pending()
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// expectCached is expectEverywhere, answered by every replica without
// asking auth.
func (s *sessionStack) expectCached(token string, why string) {
	s.t.Helper()
	before := s.authChecks()
	s.expectEverywhere(token, 200, why)
	if n := s.authChecks() - before; n != 0 {
		s.t.Fatalf("%s: auth was asked %d times; the session cache did not answer", why, n)
	}
}

// warm has every blog replica verify token once, then checks that a
// second round is answered from the session caches.
func (s *sessionStack) warm(token string) {
	s.t.Helper()
	s.expectEverywhere(token, 200, "first request")
	s.expectCached(token, "second request")
}

// TestSessionCacheAcrossReplicas: protected requests are answered from each
// blog replica's session cache, and whatever ends a session in auth ends it
// on every blog replica for the very next request (no waiting, no retry,
// and a cache TTL of an hour, so only auth's change events can do it).
func TestSessionCacheAcrossReplicas(t *testing.T) {
	s := startSessionStack(t)

	t.Run("sign-out", func(t *testing.T) {
		s.t = t
		signedOut, other := s.signInAdmin(), s.signInAdmin()
		s.warm(signedOut.access)
		s.warm(other.access)
		if a := s.do("DELETE", s.authURL, "/signout", signedOut.access, nil); a.status != 200 {
			t.Fatalf("sign-out: %d %s", a.status, a.raw)
		}
		s.expectEverywhere(signedOut.access, 401, "the very next request after sign-out")
		// Only that session ended: the user's other one is still served
		// from the cache.
		s.expectCached(other.access, "another session of the same user")
	})

	t.Run("refresh", func(t *testing.T) {
		s.t = t
		old := s.signInAdmin()
		s.warm(old.access)
		refreshed := s.sessionFrom(s.do("POST", s.authURL, "/token/refresh", old.access, map[string]string{"refreshToken": old.refresh}), "refresh")
		s.expectEverywhere(old.access, 401, "the very next request with the replaced access token")
		s.warm(refreshed.access)
	})

	t.Run("role removed", func(t *testing.T) {
		s.t = t
		email := fmt.Sprintf("role-%d@example.com", time.Now().UnixNano())
		u := s.sessionFrom(s.do("POST", s.authURL, "/signup/basic", "", map[string]string{
			"email": email, "password": "secret-password", "name": "Role Changer"}), "sign-up")
		s.expectEverywhere(u.access, 403, "a learner on an author route")
		s.setAuthorRole(u.userID, true)
		s.warm(u.access)
		s.setAuthorRole(u.userID, false)
		s.expectEverywhere(u.access, 403, "the very next request after the role was removed")
	})

	// Events are not kept for a replica that is away: blog2 misses the
	// sign-out while cut off from NATS, and must not serve the session
	// then or after it is back (its cache is suspended, then emptied).
	t.Run("event lost while a replica is disconnected", func(t *testing.T) {
		s.t = t
		revoked, other := s.signInAdmin(), s.signInAdmin()
		s.warm(revoked.access)
		s.warm(other.access)

		s.proxy.setCut(true)
		wait.Eventually(t, 5*time.Second, "blog2 sees its NATS connection go", func() bool { return !s.blog2.Runtime.NATS.IsConnected() })
		if a := s.do("DELETE", s.authURL, "/signout", revoked.access, nil); a.status != 200 {
			t.Fatalf("sign-out: %d %s", a.status, a.raw)
		}
		if a := s.do("GET", s.blogs[0], drafts, revoked.access, nil); a.status != 401 {
			t.Fatalf("blog1 (connected): %d %s", a.status, a.raw)
		}
		if a := s.do("GET", s.blogs[1], drafts, revoked.access, nil); a.status != 503 || a.message != "authentication service unavailable" {
			t.Fatalf("blog2 while cut off served %d %s; want 503 (it cannot ask auth, and must not trust its cache)", a.status, a.raw)
		}

		s.proxy.setCut(false)
		wait.Eventually(t, 10*time.Second, "blog2 answers again through auth", func() bool {
			return s.blog2.Runtime.NATS.IsConnected() && s.do("GET", s.blogs[1], drafts, other.access, nil).status == 200
		})
		if a := s.do("GET", s.blogs[1], drafts, revoked.access, nil); a.status != 401 || a.message != sessionNoCache {
			t.Fatalf("blog2 after reconnecting served the revoked session: %d %s", a.status, a.raw)
		}
	})
}

// setAuthorRole grants or removes the AUTHOR role in auth's store, then
// tells auth the user changed (what any operation changing a user's roles
// does): auth announces it to every replica of every service.
func (s *sessionStack) setAuthorRole(userID string, grant bool) {
	s.t.Helper()
	ctx := context.Background()
	db := s.auths[1].Runtime.DB.Database
	var role struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := db.Collection("roles").FindOne(ctx, bson.M{"code": "AUTHOR"}).Decode(&role); err != nil {
		s.t.Fatal(err)
	}
	id, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		s.t.Fatal(err)
	}
	op := "$pull"
	if grant {
		op = "$addToSet"
	}
	res, err := db.Collection("users").UpdateOne(ctx, bson.M{"_id": id}, bson.M{op: bson.M{"roles": role.ID}})
	if err != nil || res.ModifiedCount != 1 {
		s.t.Fatalf("%s AUTHOR for %s: %v (%d modified)", op, userID, err, res.ModifiedCount)
	}
	s.auths[1].Users.Forget(ctx, userID)
}

// cutProxy forwards TCP connections to target until cut: then it closes
// every connection and refuses new ones (a replica cut off from NATS),
// until restored.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setCut(true)
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *cutProxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}
	go pipe(up, c)
	go pipe(c, up)
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}
