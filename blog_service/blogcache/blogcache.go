// Package blogcache is blog_service's Redis cache: the reference's keys
// (blog_<id>, blog_<slug>, similar_blogs_<id>) plus cached list pages, all
// holding the exact JSON sent as the envelope's data, so a hit is written
// out without decoding.
//
// Coherence: after any write returns, no endpoint serves the old state.
//   - Every write calls Changed after the store write. It bumps the
//     generation key and deletes, in one atomic script, the blog's keys (by
//     id, by every slug it had, its similar list) and the track sets of every
//     list the blog appears or appeared in (see affected).
//   - A read that misses notes the generation before reading the store and
//     writes its result back only while the generation is unchanged, so a
//     slow reader cannot put back a state that a write has already
//     invalidated. Concurrent misses on one key share one store query
//     (single flight per key and generation: a request that arrives after a
//     write's invalidation never joins a query started before it).
//   - Redis failures never fail a request: reads fall back to the store. An
//     invalidation that fails is remembered (keys and sets) and retried in
//     the background every retry interval and, before that, by every cached
//     read of this replica, which bypasses the cache until the retry
//     succeeds. So after a Redis blip this replica never serves what a
//     failed invalidation should have removed. Other replicas read the same
//     Redis and are covered as soon as the retry lands (within one retry
//     interval of Redis answering again); TTLs bound anything else.
package blogcache

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/cache"
)

// GenerationKey is bumped by every invalidation.
const GenerationKey = "blog_cache_gen"

// Track sets: each lists the cached keys of one family of lists, so one
// write can drop them all.
const (
	publicListsSet = "blog_cache_track_public_lists"
	similarSet     = "blog_cache_track_similar"
	editorListsSet = "blog_cache_track_editor_lists"
)

func authorListsSet(author string) string { return "blog_cache_track_author_" + author }

// BlogKey is the reference's key of a PublicBlog by id or by slug.
func BlogKey(idOrSlug string) string { return "blog_" + idOrSlug }

// SimilarKey is the reference's key of a blog's similar list.
func SimilarKey(id string) string { return "similar_blogs_" + id }

// Keys of list pages (this platform's; the reference caches no list).
func latestKey(p model.Page) string { return "blogs_latest_" + pageSuffix(p) }
func tagKey(tag string, p model.Page) string {
	return "blogs_tag_" + tag + "_" + pageSuffix(p)
}
func authorListKey(author string, list model.AuthorList, p model.Page) string {
	return "blogs_author_" + author + "_" + string(list) + "_" + pageSuffix(p)
}
func editorListKey(list model.AuthorList, p model.Page) string {
	return "blogs_editor_" + string(list) + "_" + pageSuffix(p)
}

func pageSuffix(p model.Page) string {
	return strconv.FormatInt(p.Number, 10) + "_" + strconv.FormatInt(p.Size, 10)
}

// TTLs per family.
type TTLs struct {
	Blog, Similar, List time.Duration
}

// Options configure a Cache.
type Options struct {
	TTLs TTLs
	// RetryInterval paces retries of failed invalidations.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Cache is safe for concurrent use. Start the retry loop with Start and stop
// it with Close.
type Cache struct {
	kv   *cache.Cache
	opts Options

	flights singleflight.Group

	// Pending invalidations: each key and track set maps to the sequence
	// number of the latest write that needs it dropped, so a replay removes
	// only what it covered and never a later write's need.
	mu          sync.Mutex
	seq         uint64
	pendingKeys map[string]uint64
	pendingSets map[string]uint64
	hasPending  atomic.Bool
	lastFailure atomic.Int64 // unix nanoseconds of the last failed Redis call

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

func New(kv *cache.Cache, o Options) *Cache {
	if o.RetryInterval <= 0 {
		o.RetryInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Cache{
		kv: kv, opts: o,
		pendingKeys: map[string]uint64{}, pendingSets: map[string]uint64{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Entry describes one cached value.
type Entry struct {
	Key      string
	TTL      time.Duration
	TrackSet string // "" for entries invalidated by key
	// Accept, when set, vets a hit; a refused hit is treated as a miss.
	Accept func(cached []byte) bool
}

// BlogByID is blog_<id>. blog_<id> and blog_<slug> share the reference's key
// space, so a slug equal to another blog's id would collide: a hit counts
// only if it is the blog with that id.
func (c *Cache) BlogByID(id string) Entry {
	prefix := []byte(`{"_id":"` + id + `"`)
	return Entry{Key: BlogKey(id), TTL: c.opts.TTLs.Blog, Accept: func(b []byte) bool { return bytes.HasPrefix(b, prefix) }}
}

// BlogBySlug is blog_<slug>; a hit that is the blog whose id equals the slug
// (written by BlogByID) does not count.
func (c *Cache) BlogBySlug(slug string) Entry {
	prefix := []byte(`{"_id":"` + slug + `"`)
	return Entry{Key: BlogKey(slug), TTL: c.opts.TTLs.Blog, Accept: func(b []byte) bool { return !bytes.HasPrefix(b, prefix) }}
}

func (c *Cache) Similar(id string) Entry {
	return Entry{Key: SimilarKey(id), TTL: c.opts.TTLs.Similar, TrackSet: similarSet}
}

func (c *Cache) Latest(p model.Page) Entry {
	return Entry{Key: latestKey(p), TTL: c.opts.TTLs.List, TrackSet: publicListsSet}
}

func (c *Cache) Tag(tag string, p model.Page) Entry {
	return Entry{Key: tagKey(tag, p), TTL: c.opts.TTLs.List, TrackSet: publicListsSet}
}

func (c *Cache) AuthorList(author string, list model.AuthorList, p model.Page) Entry {
	return Entry{Key: authorListKey(author, list, p), TTL: c.opts.TTLs.List, TrackSet: authorListsSet(author)}
}

func (c *Cache) EditorList(list model.AuthorList, p model.Page) Entry {
	return Entry{Key: editorListKey(list, p), TTL: c.opts.TTLs.List, TrackSet: editorListsSet}
}

// Loader produces the value of an entry on a miss; its error is returned
// as is (and nothing is cached).
type Loader func(ctx context.Context) (any, error)

// Fetch returns the entry's JSON: the cached bytes on a hit, otherwise the
// encoded result of load, stored for the next reader unless a write
// invalidated the cache meanwhile.
func (c *Cache) Fetch(ctx context.Context, e Entry, load Loader) ([]byte, error) {
	if !c.usable(ctx) {
		return encode(ctx, load)
	}
	if b, ok := c.kv.GetRaw(ctx, e.Key); ok && (e.Accept == nil || e.Accept(b)) {
		return b, nil
	}
	gen, ok := c.kv.Generation(ctx, GenerationKey)
	if !ok {
		c.markFailure()
		return encode(ctx, load)
	}
	v, err, _ := c.flights.Do(e.Key+"\x00"+gen, func() (any, error) {
		// The query is shared by every waiting request: it must not stop
		// because the first of them went away.
		ctx := context.WithoutCancel(ctx)
		b, err := encode(ctx, load)
		if err != nil {
			return nil, err
		}
		c.kv.SetIfGeneration(ctx, GenerationKey, gen, e.Key, json.RawMessage(b), e.TTL, e.TrackSet)
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func encode(ctx context.Context, load Loader) ([]byte, error) {
	v, err := load(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Changed invalidates everything that may show the blog in any of the given
// states (its state before a write and after it; nil states are skipped).
// Call it after the store write, before answering. It always tries Redis at
// once (even right after a failure: writes are rare and the other replicas
// rely on it); what fails stays pending for the retries.
func (c *Cache) Changed(ctx context.Context, states ...*model.Blog) {
	keys, sets := affected(states)
	c.mu.Lock()
	c.seq++
	for _, k := range keys {
		c.pendingKeys[k] = c.seq
	}
	for _, s := range sets {
		c.pendingSets[s] = c.seq
	}
	c.hasPending.Store(true)
	c.mu.Unlock()
	_ = c.flush(context.WithoutCancel(ctx))
}

// affected lists the keys and track sets that may hold a blog in states:
//   - its own keys: by id, by slug, its similar list;
//   - its author's lists, whatever the state;
//   - the editors' lists when it is or was submitted or published;
//   - the public lists and every similar list when it is or was public.
func affected(states []*model.Blog) (keys, sets []string) {
	public, editor := false, false
	for _, s := range states {
		if s == nil {
			continue
		}
		id := s.ID.Hex()
		keys = append(keys, BlogKey(id), BlogKey(s.Slug), SimilarKey(id))
		sets = append(sets, authorListsSet(s.Author.Hex()))
		public = public || s.IsPublic()
		editor = editor || s.Status && (s.Submitted || s.Published)
	}
	if public {
		sets = append(sets, publicListsSet, similarSet)
	}
	if editor {
		sets = append(sets, editorListsSet)
	}
	return keys, sets
}

// usable reports whether cached values may be trusted and Redis is worth
// asking: not within one retry interval of a Redis failure (so an outage
// costs reads one failed call per interval, not one per request), and only
// once every failed invalidation has been replayed.
func (c *Cache) usable(ctx context.Context) bool {
	if c.failedRecently() {
		return false
	}
	if !c.hasPending.Load() {
		return true
	}
	return c.flush(context.WithoutCancel(ctx)) == nil
}

func (c *Cache) markFailure() { c.lastFailure.Store(time.Now().UnixNano()) }

func (c *Cache) failedRecently() bool {
	return time.Since(time.Unix(0, c.lastFailure.Load())) < c.opts.RetryInterval
}

// flush replays every pending invalidation in one script.
func (c *Cache) flush(ctx context.Context) error {
	c.mu.Lock()
	covered := c.seq
	keys := make([]string, 0, len(c.pendingKeys))
	for k := range c.pendingKeys {
		keys = append(keys, k)
	}
	sets := make([]string, 0, len(c.pendingSets))
	for s := range c.pendingSets {
		sets = append(sets, s)
	}
	c.mu.Unlock()
	if len(keys) == 0 && len(sets) == 0 {
		return nil
	}
	if err := c.kv.Invalidate(ctx, GenerationKey, keys, sets); err != nil {
		c.markFailure()
		return err
	}
	c.mu.Lock()
	for _, k := range keys {
		if c.pendingKeys[k] <= covered {
			delete(c.pendingKeys, k)
		}
	}
	for _, s := range sets {
		if c.pendingSets[s] <= covered {
			delete(c.pendingSets, s)
		}
	}
	c.hasPending.Store(len(c.pendingKeys)+len(c.pendingSets) > 0)
	c.mu.Unlock()
	return nil
}

// Pending reports whether an invalidation is waiting to be replayed.
func (c *Cache) Pending() bool { return c.hasPending.Load() }

// Start runs the background retry of failed invalidations until Close.
func (c *Cache) Start() {
	if !c.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.opts.RetryInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				if c.hasPending.Load() {
					if err := c.flush(context.Background()); err == nil {
						c.opts.Logger.Info("cache invalidation replayed after a Redis failure")
					}
				}
			}
		}
	}()
}

// Close stops the retry loop after one last attempt (Redis is still open
// when the runtime calls it), reporting an invalidation that could not land.
func (c *Cache) Close(ctx context.Context) error {
	if c.started.Load() {
		close(c.stop)
		<-c.done
	}
	if c.hasPending.Load() {
		if err := c.flush(ctx); err != nil {
			c.opts.Logger.Error("cache invalidation lost at shutdown; entries expire with their TTL", "error", err.Error())
		}
	}
	return nil
}
