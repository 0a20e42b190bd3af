package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	authopenapi "blogplatform/auth_service/openapi"
	blogopenapi "blogplatform/blog_service/openapi"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
)

// clusterBurst is the address limiter's burst in the Redis Cluster run:
// small, so the shared budget is quickly spent.
const clusterBurst = 6

// TestServicesOnRedisCluster runs both services on a real three-primary
// Redis Cluster (REDIS_CLUSTER_ADDRS; no single Redis at all): two auth
// replicas and two blog replicas, sharing the cluster as they would share
// one server. A journey touches every Redis use (sign-in and sign-up
// address limits, the per-account sign-in limit, sessions, blogs by id and
// slug, every list family, write locks, invalidation) and asserts:
//   - the answers are right on both blog replicas, including right after
//     an update and an unpublish (no stale value on either);
//   - the limits are shared: the address budget is spent after clusterBurst
//     sign-ups in total across both auth replicas, and the account budget
//     after SIGNIN_FAILURE_LIMIT failures in total (a limiter that could
//     not use Redis would fall back to a budget per replica, twice as
//     large);
//   - no Redis call failed (every service's cache error counter stays 0:
//     the cache hides failures from clients, so the counter is what shows
//     a CROSSSLOT) and the caches did hit;
//   - the keys really spread: both services' keys are on every node, over
//     many slots, and no key of one service has the other's prefix.
func TestServicesOnRedisCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := embedded.StartRedisCluster(ctx, embedded.RedisClusterOptions{Password: "cluster-services"})
	if err != nil {
		t.Fatal(err) // a missing redis-server fails here, with the install line
	}
	t.Cleanup(func() { _ = cluster.Close() })
	infra := testinfra.NewEnvWith(t, testinfra.Options{Store: embedded.StoreOptions{Dir: t.TempDir()}})

	common := mergeEnv(replicaEnv(infra), map[string]string{
		// Only the cluster: the single-server variables stay unset.
		"REDIS_CLUSTER_ADDRS": strings.Join(cluster.Addrs(), ","), "REDIS_PASSWORD": cluster.Password(),
		"NATS_URL": infra.NATSURL(), "NATS_REQUEST_TIMEOUT": natsTimeout.String(),
	})
	priv, pub := writeKeys(t)
	var authURLs, blogURLs, metricsURLs []string
	for i := 0; i < 2; i++ {
		auth := startAuth(t, mergeEnv(common, authEnv(priv, pub), map[string]string{
			"DB_NAME":               "auth-rediscluster",
			"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_BURST": strconv.Itoa(clusterBurst),
			"SIGNIN_FAILURE_LIMIT": "3",
		}), runtime.Options{LogWriter: io.Discard})
		if r := auth.rt.Config.Redis; r.DB != 0 || len(r.ClusterAddrs) != 3 {
			t.Fatalf("auth redis options %+v", r)
		}
		authURLs = append(authURLs, auth.url)
		metricsURLs = append(metricsURLs, "http://"+auth.rt.MetricsAddr()+"/metrics")
	}
	for i := 0; i < 2; i++ {
		// Blog's default database (2) silently becomes the cluster's only one.
		blog := startBlog(t, mergeEnv(common, map[string]string{"DB_NAME": "blog-rediscluster"}), runtime.Options{LogWriter: io.Discard})
		if db := blog.rt.Config.Redis.DB; db != 0 {
			t.Fatalf("blog redis db %d on a cluster", db)
		}
		blogURLs = append(blogURLs, blog.url)
		metricsURLs = append(metricsURLs, "http://"+blog.rt.MetricsAddr()+"/metrics")
	}
	authSpec, err := openapi.Load(authopenapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	blogSpec, err := openapi.Load(blogopenapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	// replica[i] is auth i and blog i, so p.do validates each answer
	// against the right service's document.
	replica := make([]*platform, 2)
	for i := range replica {
		replica[i] = &platform{t: t, infra: infra, authURL: authURLs[i], blogURL: blogURLs[i],
			authSpec: authSpec, blogSpec: blogSpec, client: &http.Client{Timeout: 30 * time.Second}}
	}
	p := replica[0]

	// Sessions and the per-account limit, across both auth replicas.
	token := p.signIn()
	for i := 0; i < 3; i++ {
		a := replica[i%2].do("POST", replica[i%2].authURL, "/signin/basic", "", map[string]string{"email": adminEmail, "password": "wrong-password"})
		if a.status != 400 && a.status != 401 && a.status != 404 {
			t.Fatalf("failed sign-in %d: %d %s", i+1, a.status, a.raw)
		}
	}
	for _, r := range replica {
		if a := r.do("POST", r.authURL, "/signin/basic", "", map[string]string{"email": adminEmail, "password": adminPassword}); a.status != 429 || a.message != "too many failed sign-ins, try again later" {
			t.Fatalf("sign-in after 3 failures in total over two replicas: %d %s, want the account limit", a.status, a.raw)
		}
	}

	// Blogs: written on replica 0, read on both.
	type published struct{ id, slug string }
	var blogs []published
	for i := 0; i < 6; i++ {
		id, slug := p.publish(token, fmt.Sprintf("Cluster Journey %c Gardening", 'A'+i))
		blogs = append(blogs, published{id, slug})
	}
	lists := []string{"/list/latest?page=1&limit=10", "/list/latest?page=1&limit=5", "/list/latest?page=2&limit=5",
		"/list/tag/RESILIENCE?page=1&limit=10", "/list/similar/id/" + blogs[0].id}
	protected := []string{"/author/published?page=1&limit=10", "/editor/published?page=1&limit=10", "/author/drafts?page=1&limit=10"}
	readAll := func(round int) {
		t.Helper()
		for _, r := range replica {
			for _, b := range blogs {
				for _, path := range []string{"/id/" + b.id, "/slug/" + b.slug} {
					if a := r.do("GET", r.blogURL, path, "", nil); a.status != 200 {
						t.Fatalf("round %d %s on %s: %d %s", round, path, r.blogURL, a.status, a.raw)
					}
				}
			}
			for _, path := range lists {
				if a := r.do("GET", r.blogURL, path, "", nil); a.status != 200 {
					t.Fatalf("round %d %s: %d %s", round, path, a.status, a.raw)
				}
			}
			for _, path := range protected {
				if a := r.do("GET", r.blogURL, path, token, nil); a.status != 200 {
					t.Fatalf("round %d %s: %d %s", round, path, a.status, a.raw)
				}
			}
		}
	}
	readAll(1)
	readAll(2) // from the caches now

	// An update on replica 0, read back at once on both replicas by id, by
	// the new slug, and in the lists; the old slug is gone everywhere.
	edited := blogs[1]
	newTitle, newSlug := "Cluster Journey Edited Title", "cluster-journey-edited"
	if a := p.do("PUT", p.blogURL, "/author", token, map[string]any{"_id": edited.id, "title": newTitle, "slug": newSlug}); a.status != 200 {
		t.Fatalf("update: %d %s", a.status, a.raw)
	}
	for _, r := range replica {
		for _, path := range []string{"/id/" + edited.id, "/slug/" + newSlug} {
			a := r.do("GET", r.blogURL, path, "", nil)
			var got struct{ Title, Slug string }
			_ = json.Unmarshal(a.data, &got)
			if a.status != 200 || got.Title != newTitle || got.Slug != newSlug {
				t.Fatalf("%s on %s right after the update: %d %s", path, r.blogURL, a.status, a.raw)
			}
		}
		if a := r.do("GET", r.blogURL, "/slug/"+edited.slug, "", nil); a.status != 404 {
			t.Fatalf("old slug on %s after the update: %d %s", r.blogURL, a.status, a.raw)
		}
		a := r.do("GET", r.blogURL, "/list/latest?page=1&limit=10", "", nil)
		if !strings.Contains(a.raw, newTitle) {
			t.Fatalf("latest list on %s after the update lacks the new title: %s", r.blogURL, a.raw)
		}
	}
	// An unpublish on replica 1 (the other writer), gone at once everywhere.
	gone := blogs[2]
	if a := replica[1].do("PUT", replica[1].blogURL, "/editor/unpublish/id/"+gone.id, token, nil); a.status != 200 {
		t.Fatalf("unpublish: %d %s", a.status, a.raw)
	}
	for _, r := range replica {
		for _, path := range []string{"/id/" + gone.id, "/slug/" + gone.slug} {
			if a := r.do("GET", r.blogURL, path, "", nil); a.status != 404 {
				t.Fatalf("%s on %s after the unpublish: %d %s", path, r.blogURL, a.status, a.raw)
			}
		}
		for _, path := range append(slices.Clone(lists[:4]), "/editor/published?page=1&limit=10") {
			tok := ""
			if strings.HasPrefix(path, "/editor") {
				tok = token
			}
			if a := r.do("GET", r.blogURL, path, tok, nil); strings.Contains(a.raw, gone.id) {
				t.Fatalf("%s on %s still lists the unpublished blog", path, r.blogURL)
			}
		}
	}

	// The sign-up address budget, spent alternately on both auth replicas:
	// clusterBurst requests pass in total, the next is refused on each.
	passed := 0
	for i := 0; i < 2*clusterBurst; i++ {
		r := replica[i%2]
		a := r.do("POST", r.authURL, "/signup/basic", "", map[string]string{
			"name": "Cluster User", "email": fmt.Sprintf("cluster%d@example.com", i), "password": "cluster-password-1"})
		if a.status == 429 {
			if a.message != "too many requests" {
				t.Fatalf("sign-up %d: %s", i+1, a.raw)
			}
			break
		}
		passed++
	}
	if passed != clusterBurst {
		t.Fatalf("%d sign-ups passed over two replicas before the first 429, want %d (one shared budget)", passed, clusterBurst)
	}
	for _, r := range replica {
		if a := r.do("POST", r.authURL, "/signup/basic", "", map[string]string{"name": "x", "email": "late@example.com", "password": "cluster-password-1"}); a.status != 429 {
			t.Fatalf("sign-up on %s after the shared budget: %d", r.authURL, a.status)
		}
	}

	// No Redis call failed anywhere, and the caches were used.
	var hits float64
	for _, url := range metricsURLs {
		errs, h := cacheCounters(t, url)
		if errs != 0 {
			t.Errorf("%s: %v cache errors on the cluster", url, errs)
		}
		hits += h
	}
	if hits == 0 {
		t.Error("no cache hit on the cluster")
	}

	// Where the keys are: every node holds keys of both services, over
	// many slots.
	admin := cluster.Client()
	defer admin.Close()
	var mu sync.Mutex
	perNode := map[string]map[string]int{} // node -> service -> keys
	slots := map[string]map[int64]bool{"auth": {}, "blog": {}}
	err = admin.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, "*").Result()
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for _, k := range keys {
			service := "other"
			switch {
			case strings.HasPrefix(k, "auth_"):
				service = "auth"
			case strings.HasPrefix(k, "blog_"), strings.HasPrefix(k, "blogcache:"):
				service = "blog"
			}
			counts[service]++
			if service != "other" {
				slot, err := node.ClusterKeySlot(ctx, k).Result()
				if err != nil {
					return err
				}
				mu.Lock()
				slots[service][slot] = true
				mu.Unlock()
			}
		}
		mu.Lock()
		perNode[node.Options().Addr] = counts
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keys per node: %v; distinct slots: auth %d, blog %d", perNode, len(slots["auth"]), len(slots["blog"]))
	if len(perNode) != 3 {
		t.Fatalf("%d primaries answered, want 3", len(perNode))
	}
	for node, counts := range perNode {
		if counts["other"] != 0 {
			t.Errorf("%s holds %d keys outside both services' prefixes", node, counts["other"])
		}
		if counts["blog"] == 0 {
			t.Errorf("%s holds no blog key: blog's keys do not spread", node)
		}
	}
	nodesWithAuth := 0
	for _, counts := range perNode {
		if counts["auth"] > 0 {
			nodesWithAuth++
		}
	}
	if nodesWithAuth < 2 {
		t.Errorf("auth's keys on %d node(s), want them spread", nodesWithAuth)
	}
	if len(slots["blog"]) < 12 || len(slots["auth"]) < 4 {
		t.Errorf("keys in %d blog slots and %d auth slots: not spread", len(slots["blog"]), len(slots["auth"]))
	}
}

// cacheCounters sums a service's cache_lookups_total by result: errors and
// hits.
func cacheCounters(t *testing.T, url string) (errors, hits float64) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "cache_lookups_total{") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `result="error"`):
			errors += v
		case strings.Contains(line, `result="hit"`):
			hits += v
		}
	}
	return errors, hits
}
