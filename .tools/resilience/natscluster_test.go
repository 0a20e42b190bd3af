package resilience

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	authopenapi "blogplatform/auth_service/openapi"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/envelope"
	"blogplatform/devkit/openapi"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

// The NATS cluster run's shape: a few clients sending protected reads
// back to back, the node killed a second into a run of a few seconds.
const (
	clusterWorkers = 4
	// clusterNATSTimeout is blog's NATS request timeout in this test: the
	// production default's half, yet far above a round trip even under the
	// race detector on two busy cores (a tighter one fails requests
	// before any node is lost there).
	clusterNATSTimeout = time.Second
	clusterWarmup      = time.Second
	clusterAfterKill   = 3 * time.Second
	// clusterSlack is what a request may take beyond the NATS request
	// timeout: the HTTP hop and blog's own store query.
	clusterSlack = 500 * time.Millisecond
	// clusterRecoveryBound is how soon after the kill every request must
	// succeed again.
	clusterRecoveryBound = 2 * time.Second
	// clusterFailureBound bounds the failed requests of one node loss: at
	// most the requests in flight when it happened, twice over.
	clusterFailureBound = 2 * clusterWorkers
)

// clusterSample is one protected read, timed from the run's start.
type clusterSample struct {
	start, end time.Duration
	status     int    // 0 on a transport error
	message    string // the error envelope's message
}

// TestNATSClusterNodeLoss: three routed NATS nodes; auth replicas on node 1
// and node 2, blog on node 3 (each replica lists its own node first and
// keeps the listed order, NATS_SERVER_ORDER=listed, so the placement is
// known; production keeps nats.go's random order). Blog's session cache is
// off, so every protected read is a round trip to auth over NATS. Under a
// steady load of protected reads the node of one auth replica is killed,
// then, after it is back, the node blog uses: each time the failed
// requests are few, none outlasts the NATS request timeout, and every
// request succeeds again within clusterRecoveryBound.
func TestNATSClusterNodeLoss(t *testing.T) {
	cluster, err := embedded.StartNATSCluster(embedded.NATSClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Shutdown)
	urls := cluster.ClientURLs()
	// list is every node, starting with the first-th.
	list := func(first int) string {
		return strings.Join(append(slices.Clone(urls[first:]), urls[:first]...), ",")
	}
	infra := testinfra.NewEnvWith(t, testinfra.Options{Store: embedded.StoreOptions{Dir: t.TempDir()}})
	common := mergeEnv(replicaEnv(infra), map[string]string{
		"REDIS_HOST": infra.Redis.Host(), "REDIS_PORT": fmt.Sprint(infra.Redis.Port()), "REDIS_PASSWORD": infra.RedisPassword(),
		"NATS_REQUEST_TIMEOUT": clusterNATSTimeout.String(), "NATS_SERVER_ORDER": "listed",
	})
	priv, pub := writeKeys(t)
	var authURL string
	var auths []*runtime.Runtime
	for i := range 2 {
		auth := startAuth(t, mergeEnv(common, authEnv(priv, pub), map[string]string{
			"NATS_URL": list(i), "DB_NAME": "auth-natscluster", "REDIS_DB": "0",
		}), runtime.Options{LogWriter: io.Discard})
		authURL = auth.url
		auths = append(auths, auth.rt)
	}
	blogReplica := startBlog(t, mergeEnv(common, map[string]string{
		"NATS_URL": list(2), "DB_NAME": "blog-natscluster", "REDIS_DB": "2",
		"LOCAL_CACHE_TTL": "0", // every protected read asks auth
	}), runtime.Options{LogWriter: io.Discard})
	blogURL, blog := blogReplica.url, blogReplica.rt

	replicas := map[string]*runtime.Runtime{"auth1": auths[0], "auth2": auths[1], "blog": blog}
	placed := func(want map[string]int) {
		t.Helper()
		for name, node := range want {
			rt := replicas[name]
			if !wait.For(5*time.Second, func() bool { return rt.NATS.IsConnected() && rt.NATS.ConnectedUrl() == urls[node] }) {
				t.Fatalf("%s on %q, want node %d (%s)", name, rt.NATS.ConnectedUrl(), node+1, urls[node])
			}
		}
	}
	placed(map[string]int{"auth1": 0, "auth2": 1, "blog": 2})

	p := &platform{t: t, authURL: authURL, client: &http.Client{Timeout: 10 * time.Second}}
	if p.authSpec, err = openapi.Load(authopenapi.Spec); err != nil {
		t.Fatal(err)
	}
	token := p.signIn()
	read := func(client *http.Client) clusterSample {
		req, _ := http.NewRequest(http.MethodGet, blogURL+"/author/drafts?page=1&limit=10", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return clusterSample{}
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		s := clusterSample{status: res.StatusCode}
		if s.status != http.StatusOK {
			if env, err := envelope.Decode(body); err == nil {
				s.message = env.Message
			}
		}
		return s
	}
	probe := &http.Client{Timeout: 5 * time.Second}
	wait.Eventually(t, 10*time.Second, "protected reads through auth succeed", func() bool { return read(probe).status == 200 })

	for _, sc := range []struct {
		name   string
		node   int
		moved  string // the replica that loses its node
		placed map[string]int
	}{
		// auth1 moves to the next node of its list; blog's requests go to
		// auth2 meanwhile (and then to either).
		{"node of an auth replica", 0, "auth1", map[string]int{"auth1": 1, "auth2": 1, "blog": 2}},
		// blog moves to node 1, back since the first scenario.
		{"node of the blog replica", 2, "blog", map[string]int{"auth1": 1, "auth2": 1, "blog": 0}},
	} {
		moved := replicas[sc.moved].NATS
		var reconnected time.Duration
		samples, killAt := runClusterLoad(func() clusterSample {
			return read(&http.Client{Timeout: 10 * time.Second})
		}, func() {
			killed := time.Now()
			cluster.Node(sc.node).Shutdown()
			if !wait.For(5*time.Second, func() bool { return moved.IsConnected() && moved.ConnectedUrl() != urls[sc.node] }) {
				t.Errorf("%s: %s did not reconnect to another node", sc.name, sc.moved)
			}
			reconnected = time.Since(killed)
		})
		st := analyseCluster(samples, killAt)
		t.Logf("kill the %s (node %d): %s reconnected in %s; %d requests (%.0f/s before the kill, %.0f/s after), %d failed %v, slowest %s, p99 %s, all successful again %s after the kill",
			sc.name, sc.node+1, sc.moved, reconnected.Round(time.Millisecond), st.total, st.rateBefore, st.rateAfter, st.failed, st.failures,
			st.slowest.Round(time.Millisecond), st.p99.Round(time.Millisecond), st.recovery.Round(time.Millisecond))
		if st.total < 20 {
			t.Errorf("%s: only %d requests: no steady load", sc.name, st.total)
		}
		if st.beforeFailed > 0 {
			t.Errorf("%s: %d requests failed before the kill (failures by status: %v)", sc.name, st.beforeFailed, st.statuses)
		}
		if st.failed > clusterFailureBound {
			t.Errorf("%s: %d requests failed, want at most %d (failures by status: %v)", sc.name, st.failed, clusterFailureBound, st.statuses)
		}
		if st.slowest > clusterNATSTimeout+clusterSlack {
			t.Errorf("%s: slowest request %s, want at most the NATS timeout %s plus %s", sc.name, st.slowest, clusterNATSTimeout, clusterSlack)
		}
		if st.recovery > clusterRecoveryBound {
			t.Errorf("%s: requests failed until %s after the kill, want at most %s", sc.name, st.recovery, clusterRecoveryBound)
		}
		placed(sc.placed)
		// Both auth replicas answer again, the moved one included.
		if got := microInstances(t, urls[(sc.node+1)%len(urls)], "auth"); got != 2 {
			t.Errorf("%s: %d auth instances answer discovery, want 2", sc.name, got)
		}
		if err := cluster.Node(sc.node).Restart(); err != nil {
			t.Fatal(err)
		}
		if err := cluster.WaitRouted(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// runClusterLoad sends requests with clusterWorkers clients back to back,
// calls kill after clusterWarmup and stops clusterAfterKill later; it
// returns every request, timed from the start, and the kill's time.
func runClusterLoad(do func() clusterSample, kill func()) ([]clusterSample, time.Duration) {
	begin := time.Now()
	stop := begin.Add(clusterWarmup + clusterAfterKill)
	var mu sync.Mutex
	var all []clusterSample
	var wg sync.WaitGroup
	for range clusterWorkers {
		wg.Go(func() {
			var mine []clusterSample
			for time.Now().Before(stop) {
				start := time.Since(begin)
				s := do()
				s.start, s.end = start, time.Since(begin)
				mine = append(mine, s)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(clusterWarmup)
	killAt := time.Since(begin)
	kill()
	wg.Wait()
	return all, killAt
}

type clusterStats struct {
	total, failed, beforeFailed int
	statuses                    map[int]int // failures by HTTP status (0: transport error)
	// failures are the failed requests after the kill: when each ended
	// (from the kill), its status and message.
	failures []string
	// rateBefore and rateAfter are the requests per second started before
	// and after the kill.
	rateBefore, rateAfter float64
	slowest, p99          time.Duration
	// recovery is when, after the kill, the last failed request ended (0
	// without failures): every request after it succeeded.
	recovery time.Duration
}

func analyseCluster(samples []clusterSample, killAt time.Duration) clusterStats {
	st := clusterStats{total: len(samples), statuses: map[int]int{}}
	latencies := make([]time.Duration, 0, len(samples))
	var before, after int
	var last time.Duration
	for _, s := range samples {
		if s.start < killAt {
			before++
		} else {
			after++
		}
		last = max(last, s.end)
		d := s.end - s.start
		latencies = append(latencies, d)
		st.slowest = max(st.slowest, d)
		if s.status == http.StatusOK {
			continue
		}
		st.statuses[s.status]++
		if s.end < killAt {
			st.beforeFailed++
			continue
		}
		st.failed++
		st.failures = append(st.failures, fmt.Sprintf("+%s %d %q", (s.end-killAt).Round(time.Millisecond), s.status, s.message))
		st.recovery = max(st.recovery, s.end-killAt)
	}
	st.rateBefore = float64(before) / killAt.Seconds()
	if last > killAt {
		st.rateAfter = float64(after) / (last - killAt).Seconds()
	}
	slices.Sort(latencies)
	if len(latencies) > 0 {
		st.p99 = latencies[len(latencies)*99/100]
	}
	return st
}

// microInstances counts the instances of the micro service name that answer
// a discovery ping ($SRV.PING.<name>) sent through url within a second.
func microInstances(t *testing.T, url, name string) int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$SRV.PING."+name, inbox, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	deadline := time.Now().Add(time.Second)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return len(ids)
		}
		var ping struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &ping) == nil && ping.ID != "" {
			ids[ping.ID] = true
		}
	}
}
