package blogcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/localcache"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

// replica is one blog replica's cache tiers: its own first-level cache,
// the shared Redis, and its own NATS connection following SubjectChanged.
type replica struct {
	*Cache
	flaky *flakyRedis
	nc    *nats.Conn
}

// newReplicas starts n replicas on one private environment (Redis and
// NATS), each publishing and following change events like a service does.
func newReplicas(t *testing.T, n int) (*testinfra.Env, []replica) {
	t.Helper()
	env := testinfra.NewEnv(t)
	out := make([]replica, n)
	for i := range out {
		rdb := redis.NewClient(&redis.Options{Addr: env.RedisAddr(), DisableIdentity: true, MaxRetries: -1})
		t.Cleanup(func() { _ = rdb.Close() })
		flaky := &flakyRedis{}
		rdb.AddHook(flaky)
		nc, err := nats.Connect(env.NATSURL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		local := localcache.New[[]byte](localcache.Options{Name: "test", MaxEntries: 100, TTL: time.Minute})
		feed, err := changefeed.NewFeed(nc, SubjectChanged, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := New(cache.New(rdb, "test", nil, nil), Options{
			TTLs:          TTLs{Blog: time.Minute, Similar: time.Minute, List: time.Minute},
			RetryInterval: retryInterval, Local: local, Events: feed,
		})
		c.Start()
		if err := c.Follow(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = c.Close(context.Background())
			feed.Close()
		})
		out[i] = replica{Cache: c, flaky: flaky, nc: nc}
	}
	for _, r := range out {
		wait.Eventually(t, 5*time.Second, "replicas know each other", func() bool { return r.Peers() == n-1 })
	}
	return env, out
}

// counted is a loader serving *state and counting its calls (store
// queries).
func counted(state *atomic.Value, calls *atomic.Int32) Loader {
	return func(context.Context) (any, error) {
		calls.Add(1)
		return rawJSON(state.Load().(string)), nil
	}
}

func publicBlog(id bson.ObjectID, v int) string {
	return `{"_id":"` + id.Hex() + `","v":` + string(rune('0'+v)) + `}`
}

// TestLocalServesAndWriterDropsItsOwn: a hit in the first-level cache asks
// neither Redis nor the store, and the replica that writes drops its own
// entries before Changed returns, even with Redis unreachable.
func TestLocalServesAndWriterDropsItsOwn(t *testing.T) {
	_, rs := newReplicas(t, 1)
	a := rs[0]
	id := bson.NewObjectID()
	var state atomic.Value
	var calls atomic.Int32
	state.Store(publicBlog(id, 1))
	e := a.BlogByID(id.Hex())
	fetch(t, a.Cache, e, counted(&state, &calls))
	a.flaky.down.Store(true) // nothing below the first level answers now
	if got := fetch(t, a.Cache, e, counted(&state, &calls)); got != publicBlog(id, 1) || calls.Load() != 1 {
		t.Fatalf("second read %s after %d loads, want a local hit", got, calls.Load())
	}
	state.Store(publicBlog(id, 2))
	a.Changed(context.Background(), blog(id))
	if got := fetch(t, a.Cache, e, counted(&state, &calls)); got != publicBlog(id, 2) {
		t.Fatalf("writer served %s after its own write", got)
	}
}

// TestOtherReplicaSeesWriteAtOnce: after Changed returns on replica A, the
// very next read on replica B (which had the old state in its first-level
// cache) serves the new state, for a blog by id and by slug and for lists.
func TestOtherReplicaSeesWriteAtOnce(t *testing.T) {
	_, rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	id := bson.NewObjectID()
	changed := blog(id)
	var state atomic.Value
	var calls atomic.Int32
	entries := []Entry{b.BlogByID(id.Hex()), b.BlogBySlug(changed.Slug),
		b.Latest(model.Page{Number: 1, Size: 10}), b.Tag("GO", model.Page{Number: 2, Size: 5})}
	for v := 1; v <= 20; v++ {
		state.Store(publicBlog(id, v%10))
		if v > 1 {
			a.Changed(context.Background(), changed)
		}
		for _, e := range entries {
			if got := fetch(t, b.Cache, e, counted(&state, &calls)); got != publicBlog(id, v%10) {
				t.Fatalf("write %d: replica B served %s for %s", v, got, e.localKey())
			}
		}
		// The second read is a local hit (nothing changed since).
		before := calls.Load()
		for _, e := range entries {
			fetch(t, b.Cache, e, counted(&state, &calls))
		}
		if calls.Load() != before {
			t.Fatalf("write %d: repeated reads on B loaded %d times", v, calls.Load()-before)
		}
	}
	if b.Local().Len() == 0 {
		t.Fatal("replica B never cached locally")
	}
}

// TestLocalSuspendedWhileNATSDown: while a replica cannot hear change
// events its first-level cache neither serves nor stores, and it starts
// empty when the connection is back.
func TestLocalSuspendedWhileNATSDown(t *testing.T) {
	env, rs := newReplicas(t, 1)
	b := rs[0]
	id := bson.NewObjectID()
	var state atomic.Value
	var calls atomic.Int32
	state.Store(publicBlog(id, 1))
	e := b.Similar(id.Hex())
	fetch(t, b.Cache, e, counted(&state, &calls))
	if b.Local().Len() != 1 {
		t.Fatalf("local cache holds %d entries, want 1", b.Local().Len())
	}
	env.NATS.Shutdown()
	wait.Eventually(t, 5*time.Second, "local cache suspended", func() bool { return b.Local().Suspended() })
	if b.Local().Len() != 0 {
		t.Error("suspended local cache kept its entries")
	}
	// Reads still work (from Redis) and store nothing locally.
	b.flaky.down.Store(true) // and from the store once Redis is away too
	before := calls.Load()
	for range 3 {
		if got := fetch(t, b.Cache, e, counted(&state, &calls)); got != publicBlog(id, 1) {
			t.Fatalf("read while NATS is down served %s", got)
		}
	}
	if calls.Load()-before != 3 || b.Local().Len() != 0 {
		t.Errorf("while suspended: %d loads for 3 reads, %d local entries; want 3 and 0", calls.Load()-before, b.Local().Len())
	}
	b.flaky.down.Store(false)
	if err := env.NATS.Restart(); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, "local cache resumed", func() bool { return !b.Local().Suspended() })
	fetch(t, b.Cache, e, counted(&state, &calls))
	if b.Local().Len() != 1 {
		t.Errorf("after reconnect the local cache holds %d entries, want 1", b.Local().Len())
	}
}

// TestReplayedInvalidationEmptiesEveryLocal: a replica that followed the
// event of a write whose Redis invalidation failed may have refilled from
// the stale Redis entry; once the invalidation is replayed, every replica
// drops its first-level cache.
func TestReplayedInvalidationEmptiesEveryLocal(t *testing.T) {
	_, rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	id := bson.NewObjectID()
	var state atomic.Value
	var calls atomic.Int32
	state.Store(publicBlog(id, 1))
	e := b.BlogByID(id.Hex())
	fetch(t, b.Cache, e, counted(&state, &calls))

	a.flaky.down.Store(true)
	state.Store(publicBlog(id, 2))
	a.Changed(context.Background(), blog(id))
	// B dropped its entry on the event, then refilled from the entry the
	// failed invalidation left in Redis.
	wait.Eventually(t, 5*time.Second, "B refilled from stale Redis", func() bool {
		b, _ := b.Fetch(context.Background(), e, counted(&state, &calls))
		return string(b) == publicBlog(id, 1) && calls.Load() == 1
	})
	a.flaky.down.Store(false) // A's retry loop replays the invalidation
	wait.Eventually(t, 5*time.Second, "B serves the new state", func() bool {
		got, _ := b.Fetch(context.Background(), e, counted(&state, &calls))
		return string(got) == publicBlog(id, 2)
	})
	if a.Pending() {
		t.Error("invalidation still pending")
	}
}

// gate holds the loads of a page until released and records how many ran
// at once.
type gate struct {
	mu              sync.Mutex
	state           string
	running, most   int
	loads           int
	release         chan struct{}
	blockFirstLoads int // loads after this many block on release
}

func (g *gate) load(context.Context) (any, error) {
	g.mu.Lock()
	g.loads++
	n := g.loads
	g.running++
	g.most = max(g.most, g.running)
	g.mu.Unlock()
	if n > g.blockFirstLoads {
		<-g.release
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	return rawJSON(g.state), nil
}

func (g *gate) set(s string) { g.mu.Lock(); g.state = s; g.mu.Unlock() }

// TestRefreshAfterWrite: after a write, the first page readers asked for is
// reloaded in the background: the next reader is served without loading,
// at most one refresh of the page runs at a time however many writes come,
// and a refresh that read before a later write stores nothing.
func TestRefreshAfterWrite(t *testing.T) {
	_, rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	page := a.Latest(model.Page{Number: 1, Size: 10})
	g := &gate{state: `["v0"]`, release: make(chan struct{}), blockFirstLoads: 1}
	if got := fetch(t, a.Cache, page, g.load); got != `["v0"]` {
		t.Fatalf("first read %s", got)
	}

	// A burst of writes while the first refresh is held.
	g.set(`["v1"]`)
	a.Changed(context.Background(), blog(bson.NewObjectID()))
	wait.Eventually(t, 5*time.Second, "refresh started", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running == 1
	})
	for range 20 {
		a.Changed(context.Background(), blog(bson.NewObjectID()))
	}
	g.set(`["v21"]`) // the state after the last write
	close(g.release)
	wait.Eventually(t, 5*time.Second, "refreshes done", func() bool { return a.RefreshesRunning() == 0 })
	g.mu.Lock()
	most, loads := g.most, g.loads
	g.mu.Unlock()
	if most != 1 {
		t.Errorf("%d loads of the page ran at once, want 1", most)
	}
	if loads != 3 { // the first read, the held refresh, one more for the burst
		t.Errorf("%d loads, want 3", loads)
	}
	// Warm on the writer (local) and on the other replica (Redis), and
	// never the state the held refresh read before the burst.
	for _, r := range []replica{a, b} {
		got, err := r.Fetch(context.Background(), page, func(context.Context) (any, error) {
			t.Error("the page was cold after the refresh")
			return rawJSON(`["cold"]`), nil
		})
		if err != nil || string(got) != `["v21"]` {
			t.Errorf("served %s, %v; want the state after the last write", got, err)
		}
	}
}

// TestRefreshOnlyHotFamilies: a write refreshes only first pages of the
// families it touches, and nothing when no reader asked for a page.
func TestRefreshOnlyHotFamilies(t *testing.T) {
	_, rs := newReplicas(t, 1)
	a := rs[0]
	var state atomic.Value
	state.Store(`["x"]`)
	var latestLoads, editorLoads atomic.Int32
	latest := a.Latest(model.Page{Number: 1, Size: 10})
	editor := a.EditorList(model.SubmittedBlogs, model.Page{Number: 1, Size: 10})
	fetch(t, a.Cache, latest, counted(&state, &latestLoads))
	fetch(t, a.Cache, editor, counted(&state, &editorLoads))

	draft := &model.Blog{ID: bson.NewObjectID(), Slug: "d", Author: bson.NewObjectID(), Status: true, Drafted: true}
	a.Changed(context.Background(), draft) // only its author's lists
	wait.Eventually(t, 5*time.Second, "refreshes done", func() bool { return a.RefreshesRunning() == 0 })
	if latestLoads.Load() != 1 || editorLoads.Load() != 1 {
		t.Errorf("a draft's write reloaded latest %d, editor %d times; want 1, 1", latestLoads.Load(), editorLoads.Load())
	}
	a.Changed(context.Background(), blog(bson.NewObjectID())) // public and published: both
	wait.Eventually(t, 5*time.Second, "both refreshed", func() bool {
		return latestLoads.Load() == 2 && editorLoads.Load() == 2 && a.RefreshesRunning() == 0
	})
}
