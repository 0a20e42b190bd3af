package blogcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/cache"
	"blogplatform/devkit/testinfra"
	"blogplatform/devkit/wait"
)

// flakyRedis fails every command while down is set, leaving the data in
// Redis intact: a network blip rather than a restart.
type flakyRedis struct{ down atomic.Bool }

var errBlip = errors.New("injected: redis unreachable")

func (f *flakyRedis) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *flakyRedis) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.down.Load() {
			cmd.SetErr(errBlip)
			return errBlip
		}
		return next(ctx, cmd)
	}
}
func (f *flakyRedis) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

const retryInterval = 20 * time.Millisecond

func newCache(t *testing.T) (*Cache, *redis.Client, *flakyRedis) {
	t.Helper()
	env := testinfra.NewEnv(t)
	rdb := redis.NewClient(&redis.Options{Addr: env.RedisAddr(), DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	flaky := &flakyRedis{}
	rdb.AddHook(flaky)
	c := New(cache.New(rdb, "test", nil, nil), Options{
		TTLs: TTLs{Blog: time.Minute, Similar: time.Minute, List: time.Minute}, RetryInterval: retryInterval,
	})
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, rdb, flaky
}

func value(v string) Loader {
	return func(context.Context) (any, error) { return v, nil }
}

func fetch(t *testing.T, c *Cache, e Entry, load Loader) string {
	t.Helper()
	b, err := c.Fetch(context.Background(), e, load)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func blog(id bson.ObjectID) *model.Blog {
	return &model.Blog{ID: id, Slug: "some-slug", Author: bson.NewObjectID(), Status: true, Published: true}
}

// TestFailedInvalidationReplayedBeforeNextRead: an invalidation lost to a
// Redis blip is replayed before this replica trusts the cache again, so
// the entry it should have removed is never served.
func TestFailedInvalidationReplayedBeforeNextRead(t *testing.T) {
	c, rdb, flaky := newCache(t)
	id := bson.NewObjectID()
	e := c.BlogByID(id.Hex())
	v1 := `{"_id":"` + id.Hex() + `","v":1}`
	v2 := `{"_id":"` + id.Hex() + `","v":2}`
	raw := func(v string) Loader {
		return func(context.Context) (any, error) { return rawJSON(v), nil }
	}
	if got := fetch(t, c, e, raw(v1)); got != v1 {
		t.Fatalf("first read %s", got)
	}
	if got := fetch(t, c, e, raw(v2)); got != v1 {
		t.Fatalf("second read %s, want the cached %s", got, v1)
	}

	flaky.down.Store(true)
	c.Changed(context.Background(), blog(id)) // the store now holds v2
	if !c.Pending() {
		t.Fatal("failed invalidation not remembered")
	}
	if got := fetch(t, c, e, raw(v2)); got != v2 {
		t.Errorf("read during the blip served %s", got)
	}
	flaky.down.Store(false)
	if got := fetch(t, c, e, raw(v2)); got != v2 {
		t.Errorf("read right after the blip served %s", got)
	}
	wait.Eventually(t, 5*time.Second, "failure window over", func() bool { return !c.failedRecently() })
	if got := fetch(t, c, e, raw(v2)); got != v2 {
		t.Errorf("read after the retry interval served %s", got)
	}
	if c.Pending() {
		t.Error("invalidation still pending after a read with Redis back")
	}
	if got, _ := rdb.Get(context.Background(), e.Key("")).Result(); got != v2 {
		t.Errorf("cache holds %s, want %s", got, v2)
	}
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// TestFailedInvalidationReplayedInBackground: without any read, the retry
// loop replays the invalidation once Redis answers.
func TestFailedInvalidationReplayedInBackground(t *testing.T) {
	c, _, flaky := newCache(t)
	c.Start()
	id := bson.NewObjectID()
	e := c.Similar(id.Hex())
	fetch(t, c, e, value("cached"))
	flaky.down.Store(true)
	c.Changed(context.Background(), blog(id))
	flaky.down.Store(false)
	wait.Eventually(t, 5*time.Second, "invalidation replayed", func() bool { return !c.Pending() })
	// Past the failure window, the read below trusts Redis.
	wait.Eventually(t, 5*time.Second, "failure window over", func() bool { return !c.failedRecently() })
	if got := fetch(t, c, e, value("fresh")); got != `"fresh"` {
		t.Errorf("similar list survived the replayed invalidation: %s", got)
	}
}

// TestWriteBackRefusedAfterInvalidation: a read that started before a write
// must not store what it read.
func TestWriteBackRefusedAfterInvalidation(t *testing.T) {
	c, _, _ := newCache(t)
	id := bson.NewObjectID()
	// Page 2: a first page would also be refreshed after the write, running
	// this one-shot loader again.
	e := c.Latest(model.Page{Number: 2, Size: 10})
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		b, _ := c.Fetch(context.Background(), e, func(context.Context) (any, error) {
			close(started)
			<-release
			return "old state", nil
		})
		done <- string(b)
	}()
	<-started
	c.Changed(context.Background(), blog(id)) // a public blog: drops the public lists
	close(release)
	if got := <-done; got != `"old state"` {
		t.Fatalf("reader got %s", got)
	}
	if got := fetch(t, c, e, value("new state")); got != `"new state"` {
		t.Errorf("next read %s", got)
	}
}

// TestConcurrentMissesShareOneLoad: a burst of misses on one key queries
// the store once.
func TestConcurrentMissesShareOneLoad(t *testing.T) {
	c, rdb, _ := newCache(t)
	e := c.Tag("GO", model.Page{Number: 1, Size: 10})
	// Each Fetch of a list reads its version and entry in one script; the
	// load below is held until all 16 have missed, so every caller arrives
	// while it runs.
	missed := &commandCounter{match: func(cmd redis.Cmder, err error) bool {
		return err == nil && (cmd.Name() == "evalsha" || cmd.Name() == "eval")
	}}
	rdb.AddHook(missed)
	var loads atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _ = c.Fetch(context.Background(), e, func(context.Context) (any, error) {
				loads.Add(1)
				if !wait.For(5*time.Second, func() bool { return missed.n.Load() >= 16 }) {
					t.Errorf("only %d of 16 callers missed", missed.n.Load())
				}
				return []int{1}, nil
			})
		}()
	}
	close(start)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1", n)
	}
}

// TestIDAndSlugKeysDoNotCollide: blog_<id> and blog_<slug> share a key
// space; a slug that equals another blog's id never serves that blog.
func TestIDAndSlugKeysDoNotCollide(t *testing.T) {
	c, _, _ := newCache(t)
	idBlog := bson.NewObjectID().Hex()
	byID := `{"_id":"` + idBlog + `"}`
	bySlug := `{"_id":"` + bson.NewObjectID().Hex() + `","slug":"` + idBlog + `"}`
	load := func(v string) Loader {
		return func(context.Context) (any, error) { return rawJSON(v), nil }
	}
	fetch(t, c, c.BlogByID(idBlog), load(byID))
	if got := fetch(t, c, c.BlogBySlug(idBlog), load(bySlug)); got != bySlug {
		t.Errorf("slug read served %s", got)
	}
	if got := fetch(t, c, c.BlogByID(idBlog), load(byID)); got != byID {
		t.Errorf("id read served %s", got)
	}
}

// TestKeysNeverCollide: keys of different kinds, or of one kind for
// different values, are different, and none is a control key, for values
// chosen to spell other keys. Versions are all "v" here, the worst case for
// versioned keys.
func TestKeysNeverCollide(t *testing.T) {
	c := New(cache.New(redis.NewClient(&redis.Options{}), "test", nil, nil), Options{})
	id := "66a1f0c2e4b0a1b2c3d4e5f6"
	page := model.Page{Number: 1, Size: 10}
	hostile := []string{
		id, "cache_gen", "blog_cache_gen", GenerationKey(BlogKey(id)), GenerationKey("blog_" + id), "gen", "gen:{blog_" + id + "}",
		Prefix + "ver:{public-0}", "ver:{public-0}", "ver:{editor}", "{public-0}", "{x}", "}{", "a}b", "{", "}",
		"latest:v:1:10", Prefix + "latest:v:1:10", "tag:v:41:1:10", "slug:" + id, Prefix + "slug:" + id,
		"similar:v:" + id, "similar_blogs_" + id, "1:10", "v:1:10", "", ":", "blog_" + id,
		Prefix + "slugx:7b7d", "slugx:7b7d",
	}
	control := append(versionKeys(familyPublic), versionKeys(familyEditor)...)
	control = append(control, versionKeys(familyAuthor(id))...)
	control = append(control, GenerationKey(BlogKey(id)))
	for _, h := range hostile {
		control = append(control, GenerationKey(c.BlogBySlug(h).Key("v")))
	}
	owner := map[string]string{}
	claim := func(what, key string) {
		t.Helper()
		if slices.Contains(control, key) {
			t.Errorf("%s is the control key %s", what, key)
		}
		if prev, ok := owner[key]; ok && prev != what {
			t.Errorf("%s and %s share the key %s", prev, what, key)
		}
		owner[key] = what
	}
	claim("blog by id "+id, c.BlogByID(id).Key("v"))
	claim("similar of "+id, c.Similar(id).Key("v"))
	claim("latest", c.Latest(page).Key("v"))
	claim("latest 11:0", c.Latest(model.Page{Number: 11, Size: 0}).Key("v"))
	claim("editor submitted", c.EditorList(model.SubmittedBlogs, page).Key("v"))
	claim("author drafts", c.AuthorList(id, model.Drafts, page).Key("v"))
	for _, h := range hostile {
		claim("slug "+h, c.BlogBySlug(h).Key("v"))
		claim("tag "+h, c.Tag(h, page).Key("v"))
		claim("tag "+h+" page 11", c.Tag(h, model.Page{Number: 11, Size: 0}).Key("v"))
	}
	if got := c.BlogBySlug(id).Key("v"); got == BlogKey(id) || !strings.HasPrefix(got, Prefix) {
		t.Errorf("a slug that looks like an id has key %s", got)
	}
	if got := c.BlogBySlug("qgbasics").Key("v"); got != "blog_qgbasics" {
		t.Errorf("an ordinary slug keeps the reference's key, got %s", got)
	}
	// Every key and its generation share a Redis Cluster hash slot, and no
	// slug, whatever its braces, chooses the slot of a key.
	blogKeys := []string{BlogKey(id)}
	for _, h := range hostile {
		blogKeys = append(blogKeys, c.BlogBySlug(h).Key("v"))
	}
	for _, k := range blogKeys {
		if strings.ContainsAny(k, "{}") {
			t.Errorf("blog key %s has a brace: it would choose its own hash slot", k)
		}
		if cache.SlotTag(GenerationKey(k)) != k {
			t.Errorf("generation %s is not in the slot of %s", GenerationKey(k), k)
		}
	}
}

// TestListPagesShareTheirVersionSlot: a list page is read in one script with
// its family's version key, so both carry the same hash tag; the public
// family's pages spread over several copies, the other families use one.
func TestListPagesShareTheirVersionSlot(t *testing.T) {
	c := New(cache.New(redis.NewClient(&redis.Options{}), "test", nil, nil), Options{})
	author := "66a1f0c2e4b0a1b2c3d4e5f6"
	publicTags := map[string]bool{}
	for n := int64(1); n <= MaxCachedPage; n++ {
		for _, size := range []int64{5, 10, 20, 50, 100} {
			p := model.Page{Number: n, Size: size}
			for _, e := range []Entry{c.Latest(p), c.Tag("science", p), c.Tag("go", p), c.Similar(fmt.Sprintf("%024x", n*size))} {
				tag := cache.SlotTag(e.Key("tok"))
				if versionKey(e.tag) != cache.SameSlot(Prefix+"ver:", e.Key("tok")) || !slices.Contains(versionKeys(familyPublic), versionKey(tag)) {
					t.Fatalf("%s is not in the slot of a public version copy", e.Key("tok"))
				}
				publicTags[tag] = true
			}
			for _, e := range []Entry{c.AuthorList(author, model.Drafts, p), c.EditorList(model.SubmittedBlogs, p)} {
				if got, want := versionKey(cache.SlotTag(e.Key("tok"))), versionKeys(e.family); len(want) != 1 || got != want[0] {
					t.Fatalf("%s: version %s, want %v", e.Key("tok"), got, want)
				}
			}
		}
	}
	if len(publicTags) != publicShards {
		t.Errorf("public pages use %d of the %d version copies", len(publicTags), publicShards)
	}
}

// TestVersionedReadsNeedNoTracking: caching many list pages leaves only
// their string entries and the version keys, and one invalidation orphans
// all of them at once (work independent of how many are cached).
func TestVersionedReadsNeedNoTracking(t *testing.T) {
	c, rdb, _ := newCache(t)
	ctx := context.Background()
	// Second pages: first pages are refreshed after a write with the
	// loader they were read with, which here would still say "page".
	page := model.Page{Number: 2, Size: 10}
	for i := 0; i < 200; i++ {
		fetch(t, c, c.Tag("T"+strconv.Itoa(i), page), value("page"))
	}
	for _, k := range rdb.Keys(ctx, "*").Val() {
		if typ := rdb.Type(ctx, k).Val(); typ != "string" {
			t.Errorf("%s is a %s", k, typ)
		}
	}
	c.Changed(ctx, blog(bson.NewObjectID()))
	for i := 0; i < 200; i++ {
		if got := fetch(t, c, c.Tag("T"+strconv.Itoa(i), page), value("new")); got != `"new"` {
			t.Fatalf("tag %d served %s after the invalidation", i, got)
		}
	}
}

// commandCounter counts the completed Redis commands that match, so a test
// can wait until a concurrent caller has reached a given step.
type commandCounter struct {
	match func(cmd redis.Cmder, err error) bool
	n     atomic.Int32
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c.match(cmd, err) {
			c.n.Add(1)
		}
		return err
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLockSerialisesWritersOfOneBlog: a second writer of a blog waits for
// the first to release; writers of other blogs do not wait; with Redis
// unreachable a writer goes ahead at once.
func TestLockSerialisesWritersOfOneBlog(t *testing.T) {
	c, rdb, flaky := newCache(t)
	ctx := context.Background()
	id, other := bson.NewObjectID().Hex(), bson.NewObjectID().Hex()

	release, _ := c.LockWrite(ctx, id)
	start := time.Now()
	release2, _ := c.LockWrite(ctx, other) // another blog: no wait
	release2()
	if waited := time.Since(start); waited > 100*time.Millisecond {
		t.Errorf("a writer of another blog waited %s", waited)
	}
	// A refused SET NX of the lock key.
	refused := &commandCounter{match: func(cmd redis.Cmder, err error) bool {
		b, ok := cmd.(*redis.BoolCmd)
		return ok && err == nil && !b.Val() && cmd.Name() == "set" &&
			len(cmd.Args()) > 1 && cmd.Args()[1] == Prefix+"lock:"+id
	}}
	rdb.AddHook(refused)
	acquired := make(chan time.Time)
	go func() {
		r, _ := c.LockWrite(ctx, id)
		at := time.Now()
		r() // before reporting, so the check that the lock was released is not a race
		acquired <- at
	}()
	// Release only once the second writer has asked for the lock and been
	// refused, so the check below can fail.
	wait.Eventually(t, 5*time.Second, "second writer refused the lock", func() bool { return refused.n.Load() > 0 })
	released := time.Now()
	release()
	if at := <-acquired; at.Before(released) {
		t.Error("the second writer got the lock while the first held it")
	}
	if n := rdb.Exists(ctx, Prefix+"lock:"+id).Val(); n != 0 {
		t.Error("lock not released")
	}

	flaky.down.Store(true)
	start = time.Now()
	release3, _ := c.LockWrite(ctx, id)
	release3()
	if waited := time.Since(start); waited > 100*time.Millisecond {
		t.Errorf("a writer waited %s for an unreachable Redis", waited)
	}
}

// TestLockWriteRefusesWhileHeld: a strict writer does not write while
// another holds the blog's lock: after lockWait it gets ErrLockBusy, and
// the holder still holds the lock.
func TestLockWriteRefusesWhileHeld(t *testing.T) {
	c, rdb, _ := newCache(t)
	ctx := context.Background()
	id := bson.NewObjectID().Hex()
	release, err := c.LockWrite(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	start := time.Now()
	if _, err := c.LockWrite(ctx, id); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("second writer: %v, want ErrLockBusy", err)
	}
	if waited := time.Since(start); waited < lockWait {
		t.Errorf("refused after %s, before lockWait", waited)
	}
	if n := rdb.Exists(ctx, Prefix+"lock:"+id).Val(); n != 1 {
		t.Error("the holder lost the lock")
	}
}
