package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authopenapi "blogplatform/auth_service/openapi"
	"blogplatform/blog_service/blogcache"
	blogopenapi "blogplatform/blog_service/openapi"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

// blogRedisDB is blog's default Redis database.
const blogRedisDB = 2

// sentinelPlatform is auth and two blog replicas whose Redis is a
// Sentinel-managed primary with one replica (real redis-server processes).
type sentinelPlatform struct {
	*platform
	sentinel    *embedded.RedisSentinel
	blogs       []string // the blog replicas' base URLs
	blogMetrics []string
}

func startSentinelPlatform(t *testing.T) *sentinelPlatform {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := embedded.StartRedisSentinel(ctx, embedded.RedisSentinelOptions{Password: "sentinel-resilience"})
	if err != nil {
		t.Fatal(err) // redis-server missing: fail, never skip
	}
	t.Cleanup(func() { _ = s.Close() })
	infra := testinfra.NewEnv(t)
	p := &platform{t: t, infra: infra, client: &http.Client{Timeout: 10 * time.Second}}
	if p.authSpec, err = openapi.Load(authopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	if p.blogSpec, err = openapi.Load(blogopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	common := mergeEnv(replicaEnv(infra), map[string]string{
		"REDIS_SENTINEL_ADDRS": strings.Join(s.SentinelAddrs(), ","), "REDIS_SENTINEL_MASTER": s.MasterName(),
		"REDIS_PASSWORD": s.Password(),
		// NATS_REQUEST_TIMEOUT keeps its default (2 s): while Redis fails
		// over, auth answers from the store, which on a starved machine
		// can take longer than the other tests' short timeout.
		"NATS_URL": infra.NATSURL(),
		// No first-level caches: every cached answer comes from Redis,
		// the tier under test (with them, a stale Redis entry shows
		// once their few seconds have passed, for the entry's TTL).
		"LOCAL_CACHE_TTL": "0",
	})
	priv, pub := writeKeys(t)
	auth := startAuth(t, mergeEnv(common, authEnv(priv, pub), map[string]string{"DB_NAME": "auth-sentinel"}),
		runtime.Options{LogWriter: io.Discard})
	p.authURL, p.cancelAuth = auth.url, auth.cancel
	sp := &sentinelPlatform{platform: p, sentinel: s}
	for i := 0; i < 2; i++ {
		blog := startBlog(t, mergeEnv(common, map[string]string{"DB_NAME": "blog-sentinel"}), runtime.Options{LogWriter: io.Discard})
		sp.blogs = append(sp.blogs, blog.url)
		sp.blogMetrics = append(sp.blogMetrics, "http://"+blog.rt.MetricsAddr())
	}
	p.blogURL = sp.blogs[0]
	return sp
}

// titled is what the read checks need of a blog in any answer.
type titled struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
}

// titleIn extracts the title of blog id from an answer's data: the blog
// itself, or a list holding it ("" when the list lacks it).
func titleIn(data json.RawMessage, id string) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(string(data)), "[") {
		var list []titled
		if err := json.Unmarshal(data, &list); err != nil {
			return "", err
		}
		for _, b := range list {
			if b.ID == id {
				return b.Title, nil
			}
		}
		return "", nil
	}
	var b titled
	err := json.Unmarshal(data, &b)
	return b.Title, err
}

// readLoad reads one blog in a loop on every blog replica, public routes
// (by id, by slug, the latest list) and a protected one (the author's
// view, which also asks auth over NATS), and checks every answer against
// the titles allowed when the request started or ended (a write that
// landed meanwhile may show).
type readLoad struct {
	allowed          atomic.Pointer[[]string]
	began            time.Time // failures are noted at their offset from it
	requests, failed atomic.Int64
	failedProtected  atomic.Int64 // of failed, those of the protected route
	mu               sync.Mutex
	wrong            []string // answers with a title that was no longer allowed
	failures         []string // first failures, for the log
}

func (l *readLoad) allow(titles ...string) { l.allowed.Store(&titles) }

func (l *readLoad) run(ctx context.Context, p *sentinelPlatform, id, slug, token string, workers int) *sync.WaitGroup {
	paths := []struct{ path, token string }{
		{"/id/" + id, ""}, {"/slug/" + slug, ""}, {"/list/latest?page=1&limit=10", ""}, {"/author/id/" + id, token},
	}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				base := p.blogs[i%len(p.blogs)]
				route := paths[(i/len(p.blogs))%len(paths)]
				allowed := slices.Clone(*l.allowed.Load())
				reply, err := lossClient{http: client, base: base, token: route.token}.send(ctx, "GET", route.path, nil)
				if ctx.Err() != nil {
					return
				}
				l.requests.Add(1)
				if err != nil || reply.status != http.StatusOK {
					l.failed.Add(1)
					if route.token != "" {
						l.failedProtected.Add(1)
					}
					l.note(&l.failures, fmt.Sprintf("at %s: %s%s: %d %v %s", time.Since(l.began).Round(time.Millisecond),
						base, route.path, reply.status, err, reply.body))
					continue
				}
				var env struct {
					Data json.RawMessage `json:"data"`
				}
				title, err := "", json.Unmarshal(reply.body, &env)
				if err == nil {
					title, err = titleIn(env.Data, id)
				}
				// A write that landed during the request may show too.
				allowed = append(allowed, *l.allowed.Load()...)
				if err != nil || !slices.Contains(allowed, title) {
					l.note(&l.wrong, fmt.Sprintf("%s%s: title %q, allowed %q", base, route.path, title, allowed))
				}
			}
		}()
	}
	return &wg
}

func (l *readLoad) note(to *[]string, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(*to) < 10 {
		*to = append(*to, s)
	}
}

// The Redis primary is SIGKILLed under a steady load of public and
// protected reads on two blog replicas. The cache is an optimisation only,
// so every read keeps answering with the current blog (failures counted and
// bounded), the services move to the promoted replica (cache hits resume
// there) and nothing stale is served afterwards, although the promoted
// replica really held stale entries: it was held back while the primary
// acknowledged the invalidations of an update, as a lagging replica is
// (Redis replicates asynchronously). A blog updated while no primary
// answers, and one updated after the failover, read back on every replica.
func TestRedisSentinelFailover(t *testing.T) {
	p := startSentinelPlatform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	token := p.signIn()
	id, slug := p.publish(token, "Sentinel Title One")
	// Written while no primary answers; the first blog is not written
	// between the kill and the check of what the new primary serves, so
	// nothing but the failover handling can repair its stale entries.
	other, otherSlug := p.publish(token, "Sentinel Outage One")
	for _, base := range p.blogs { // fill the caches
		if a := p.do("GET", base, "/id/"+id, "", nil); a.status != 200 {
			t.Fatalf("warm read on %s: %d %s", base, a.status, a.raw)
		}
	}
	load := &readLoad{began: time.Now()}
	load.allow("Sentinel Title One")
	loadCtx, stopLoad := context.WithCancel(ctx)
	workers := load.run(loadCtx, p, id, slug, token, 4)
	defer func() { stopLoad(); workers.Wait() }()
	time.Sleep(300 * time.Millisecond)

	primaryAddr, err := p.sentinel.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var replicaAddr string
	for _, a := range p.sentinel.DataAddrs() {
		if a != primaryAddr {
			replicaAddr = a
		}
	}
	replica := p.sentinel.Client(replicaAddr, blogRedisDB)
	defer replica.Close()
	// Hold the replica back: it keeps reading the replication stream but
	// applies none of it while paused.
	if err := replica.Do(ctx, "CLIENT", "PAUSE", "2500", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	armed := time.Now()
	load.allow("Sentinel Title One", "Sentinel Title Two")
	p.update(token, id, "Sentinel Title Two")
	load.allow("Sentinel Title Two")
	stale, _ := replica.Get(ctx, blogcache.BlogKey(id)).Result()
	if !strings.Contains(stale, "Sentinel Title One") {
		t.Fatalf("the replica holds %q for the blog: the hazard is not armed", stale)
	}
	if since := time.Since(armed); since > 2*time.Second {
		t.Fatalf("arming took %s, longer than the replica's pause", since)
	}

	killedAt := time.Now()
	t.Logf("primary killed at %s", killedAt.Sub(load.began).Round(time.Millisecond))
	if _, err := p.sentinel.KillMaster(ctx); err != nil {
		t.Fatal(err)
	}
	type promotion struct {
		addr string
		err  error
		took time.Duration
	}
	promoted := make(chan promotion, 1)
	go func() {
		addr, err := p.sentinel.WaitNewMaster(ctx, primaryAddr)
		promoted <- promotion{addr, err, time.Since(killedAt)}
	}()
	// Written while no primary answers: its invalidation waits for Redis.
	p.update(token, other, "Sentinel Outage Two")
	pr := <-promoted
	if pr.err != nil {
		t.Fatal(pr.err)
	}
	newPrimary, failover := pr.addr, pr.took
	hitsAtPromotion := blogRedisHits(t, p)
	time.Sleep(time.Second) // reads on the new primary

	load.allow("Sentinel Title Two", "Sentinel Title Three")
	p.update(token, id, "Sentinel Title Three")
	load.allow("Sentinel Title Three")
	readBack := []struct{ id, slug, title string }{
		{id, slug, "Sentinel Title Three"}, {other, otherSlug, "Sentinel Outage Two"},
	}
	for _, base := range p.blogs {
		for _, b := range readBack {
			for _, path := range []string{"/id/" + b.id, "/slug/" + b.slug, "/list/latest?page=1&limit=10", "/author/id/" + b.id} {
				tok := ""
				if strings.HasPrefix(path, "/author/") {
					tok = token
				}
				a := p.do("GET", base, path, tok, nil)
				if title, _ := titleIn(a.data, b.id); a.status != 200 || title != b.title {
					t.Errorf("%s%s after the failover: %d %q, want %q", base, path, a.status, title, b.title)
				}
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	workers.Wait()

	np := p.sentinel.Client(newPrimary, blogRedisDB)
	defer np.Close()
	wait.Eventually(t, 5*time.Second, "blog's cache fills the new primary", func() bool {
		v, _ := np.Get(ctx, blogcache.BlogKey(id)).Result()
		return strings.Contains(v, "Sentinel Title Three")
	})
	if hits := blogRedisHits(t, p); hits <= hitsAtPromotion {
		t.Errorf("Redis hits of blog: %v at the promotion, %v at the end: the cache did not resume", hitsAtPromotion, hits)
	}
	// Both services checked the new primary before using it.
	info, _ := np.Info(ctx, "server").Result()
	authDB := p.sentinel.Client(newPrimary, 0)
	defer authDB.Close()
	for _, m := range []struct {
		service string
		get     func() (string, error)
	}{
		{"blog", np.Get(ctx, blogcache.Prefix+"failover:primary").Result},
		{"auth", authDB.Get(ctx, "auth_failover_primary").Result},
	} {
		if marker, _ := m.get(); marker == "" || !strings.Contains(info, "run_id:"+marker+"\r\n") {
			t.Errorf("%s's failover marker on the new primary is %q, not its run_id: its stale keys were not discarded", m.service, marker)
		}
	}

	requests, failed, protected := load.requests.Load(), load.failed.Load(), load.failedProtected.Load()
	t.Logf("failover %s → %s in %s; %d reads, %d failed (%.2f%%; %d of them protected)", primaryAddr, newPrimary,
		failover.Round(time.Millisecond), requests, failed, 100*float64(failed)/float64(max(requests, 1)), protected)
	for _, f := range load.failures {
		t.Logf("failed: %s", f)
	}
	if len(load.wrong) > 0 {
		t.Errorf("stale or wrong answers: %q", load.wrong)
	}
	if requests < 100 {
		t.Errorf("only %d reads ran", requests)
	}
	// Redis errors fall through to the store, so no public read may fail.
	// A protected read also waits for auth, which answers every session
	// from the store while no primary answers: on a starved machine (the
	// race detector instruments the in-process store too) a few answer
	// later than the NATS timeout, and the breaker then refuses a few more.
	if public := failed - protected; public > 0 {
		t.Errorf("%d public reads failed while the cache failed over (the store must answer them)", public)
	}
	limit := requests / 50
	if raceEnabled {
		limit = requests / 20
	}
	if protected > limit {
		t.Errorf("%d of %d reads were protected reads that failed, more than %d", protected, requests, limit)
	}
}

// update changes the blog's title through the API.
func (p *sentinelPlatform) update(token, id, title string) {
	p.t.Helper()
	if a := p.do("PUT", p.blogs[1], "/author", token, map[string]any{"_id": id, "title": title}); a.status != 200 {
		p.t.Fatalf("update to %q: %d %s", title, a.status, a.raw)
	}
}

// blogRedisHits sums the Redis hits of blog's caches over its replicas.
func blogRedisHits(t *testing.T, p *sentinelPlatform) float64 {
	t.Helper()
	var sum float64
	for _, m := range p.blogMetrics {
		res, err := http.Get(m + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, `cache_lookups_total{cache="blog",result="hit"`) {
				var v float64
				if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
					sum += v
				}
			}
		}
	}
	return sum
}
