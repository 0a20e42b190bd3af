// Package blogcache is blog_service's Redis cache: the reference's keys of a
// blog by id and by slug plus cached lists (similar blogs and list pages),
// all holding the exact JSON sent as the envelope's data, so a hit is
// written out without decoding.
//
// Key space. No value a client controls can name a key of another kind, of
// another entity, or one of the cache's own control keys:
//   - blog_<id> and blog_<slug> are the reference's names and are kept: ids
//     are validated 24-character hex and written in lower case, and every key
//     this package writes other than these two starts with "blogcache:",
//     which no "blog_..." key can equal. The one overlap left, a slug that
//     is itself 24 lower-case hex characters and so could equal another
//     blog's id, is moved to blogcache:slug:<slug>; a slug with "{" or "}"
//     (which would choose a Redis Cluster hash slot) to
//     blogcache:slugx:<hex of the slug>.
//   - Everything else lives under "blogcache:" with a fixed layout per kind
//     (kind, version, then only hex, digits and constant words, separated by
//     ":"); a tag, the only free text that reaches a list key, is
//     hex-encoded. So the kind and the fields of a key are always
//     recoverable from it, and two different requests never share a key.
//     The reference's similar_blogs_<id> is not kept: a similar list must be
//     dropped whenever any public blog changes, which needs either a set of
//     every cached list (what the reference's name would force) or a version
//     in the name; see below.
//
// Coherence: after any write returns, no endpoint serves the old state.
//   - Blogs by id and slug: every write calls Changed after the store write.
//     For each of the blog's keys (by id, by every slug it had) it renews
//     that key's generation (blogcache:gen:{<key>}, a random token) and
//     then deletes the key. A read that misses notes the key's generation
//     before reading the store and writes its result back only while the
//     generation is unchanged, so a slow reader cannot put back a state
//     that a write has already invalidated.
//   - Lists are versioned: each family (the public lists and similar lists,
//     the editors' lists, one author's lists) has a version key holding a
//     random token, and a list's key embeds its family's current token. The
//     same script that drops the blog's keys sets a fresh token on every
//     family that may show the blog (see affected), which orphans all of
//     their cached pages at once in O(1): nothing tracks cached keys, so
//     nothing grows with the number of distinct requests and invalidation
//     never has to delete an unbounded set. Orphans expire with their TTL.
//     A reader reads the token and the entry in one script and writes its
//     result under the token it read, so a reader that raced a write stores
//     into an orphaned key nobody reads. Tokens are random (never reused), so
//     a version key that expires or is evicted only costs misses: a reader
//     that finds none creates a fresh token, it never revives old pages.
//   - Bounds: only the first MaxCachedPage pages with at most
//     MaxCachedLimit items are cached, and an empty tag page is not cached
//     (random tags find nothing), so the cache holds at most a fixed number
//     of pages per family and per existing tag.
//   - Concurrent misses on one key share one store query (single flight per
//     key, and per generation for blogs: a request that arrives after a
//     write's invalidation never joins a query started before it).
//   - Redis failures never fail a request: reads fall back to the store. An
//     invalidation that fails is remembered (keys and version keys) and
//     retried in the background every retry interval and, before that, by
//     every cached read of this replica, which bypasses the cache until the
//     retry succeeds. So after a Redis blip this replica never serves what a
//     failed invalidation should have removed. Other replicas read the same
//     Redis and are covered as soon as the retry lands (within one retry
//     interval of Redis answering again); TTLs bound anything else.
//
// In front of Redis, each replica may keep a first-level cache
// (Options.Local) of the same bytes, keyed without versions and tagged by
// blog id, slug and list family. Changed drops this replica's entries after
// the Redis invalidation, then publishes a Change that every replica
// applies the same way (events.go); the writer answers only once every
// live replica has acknowledged it. Fills note the first-level generation
// before asking Redis, so a fill that raced an event is refused. While a
// replica cannot hear events (NATS down) its first-level cache is
// suspended. After a write the writer also reloads the first pages readers
// use, in the background (refresh.go).
//
// Redis Cluster. Every script and guarded write keeps its keys in one hash
// slot, and the slots spread with the data:
//   - a blog key and its generation share the key's slot (the generation's
//     name carries the key as its hash tag, "blogcache:gen:{blog_<id>}"),
//     so blogs spread over the slots by id and slug;
//   - a list page shares the slot of the version key it is read with: each
//     author's family has its own tag ({author-<id>}), the editors' one
//     ({editor}), and the public family, read by everyone, is split into
//     publicShards copies ({public-0} ...), a page using the copy its name
//     hashes to; a write renews every copy, so invalidation stays O(1);
//   - an invalidation is then one atomic script on a single server (as
//     before) and, on a Cluster, one pipeline of per-slot commands
//     (renew each generation and version, then delete each key), which the
//     client sends to the nodes in parallel.
//
// Every key is under "blog_" or "blogcache:", which is what a Redis ACL for
// this service must allow (~blog_* ~blogcache:*).
package blogcache

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/localcache"
	"blogplatform/chassis/metrics"
)

// Prefix starts every key of this package except the reference's blog_<id>
// and blog_<slug>.
const Prefix = "blogcache:"

// GenerationKey is the generation of a blog key (BlogKey, SlugKey): renewed
// by every invalidation of that key, it guards the key's writes. It lives
// in the key's hash slot.
func GenerationKey(key string) string { return cache.SameSlot(Prefix+"gen:", key) }

// List families: every cached list belongs to one, and a write drops whole
// families (see affected).
const (
	familyPublic = "public" // latest, tag and similar lists
	familyEditor = "editor"
)

func familyAuthor(author string) string { return "author:" + author }

// publicShards is how many copies the public family's version has, each in
// its own hash slot: every reader reads one, so on a Redis Cluster the
// public lists spread over up to this many slots instead of loading one
// node. A write renews them all.
const publicShards = 8

// familyTags are the hash-slot tags of a family's version copies; an
// author's id is hex and the rest are constants, so no tag holds a brace.
func familyTags(family string) []string {
	switch family {
	case familyPublic:
		return publicTags
	case familyEditor:
		return []string{"editor"}
	}
	return []string{"author-" + family[len("author:"):]}
}

var publicTags = func() []string {
	tags := make([]string, publicShards)
	for i := range tags {
		tags[i] = "public-" + strconv.Itoa(i)
	}
	return tags
}()

// shardTag is the tag of the family's version copy that the list page
// named by kind and rest uses.
func shardTag(family, kind, rest string) string {
	tags := familyTags(family)
	if len(tags) == 1 {
		return tags[0]
	}
	h := fnv.New32a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(rest))
	return tags[h.Sum32()%uint32(len(tags))]
}

// versionKey is the Redis key holding the current version token of the
// family copy with this tag.
func versionKey(tag string) string { return Prefix + "ver:{" + tag + "}" }

// versionKeys are every version copy of a family.
func versionKeys(family string) []string {
	tags := familyTags(family)
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = versionKey(t)
	}
	return keys
}

// Caching bounds of list pages.
const (
	MaxCachedPage  = 5
	MaxCachedLimit = 100
)

// BlogKey is the reference's key of a PublicBlog by id (24 hex characters).
func BlogKey(id string) string { return "blog_" + id }

// SlugKey is the key of a PublicBlog by slug: the reference's blog_<slug>,
// except for a slug that could be an id (24 lower-case hex characters),
// which would share blog_<id> with that blog.
func SlugKey(slug string) string {
	switch {
	case looksLikeID(slug):
		return Prefix + "slug:" + slug
	case strings.ContainsAny(slug, "{}"):
		// Braces would let the slug choose the Redis Cluster hash slot and
		// break the generation key that must share it.
		return Prefix + "slugx:" + hex.EncodeToString([]byte(slug))
	}
	return "blog_" + slug
}

func looksLikeID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func pageSuffix(p model.Page) string {
	return strconv.FormatInt(p.Number, 10) + ":" + strconv.FormatInt(p.Size, 10)
}

func cacheable(p model.Page) bool {
	return p.Number >= 1 && p.Number <= MaxCachedPage && p.Size >= 1 && p.Size <= MaxCachedLimit
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
	// Metrics, when set, counts the list lookups (hit, miss, error) under
	// Name, like the chassis cache counts the others.
	Metrics *metrics.Metrics
	Name    string
	// Local is this replica's first-level cache in front of Redis (nil:
	// none). It must follow SubjectChanged on every replica (Apply, with
	// Local guarded), so a write on any replica drops its entries.
	Local *localcache.Cache[[]byte]
	// Events, when set, publishes a Change on SubjectChanged after each
	// invalidation, before the write is answered, and follows them
	// (Follow): a changefeed.Feed of SubjectChanged.
	Events Feed
	// RefreshTimeout bounds one background refresh of a list page after a
	// write (default 5s); the request that caused it does not.
	RefreshTimeout time.Duration
}

// Feed is the acknowledged change feed of SubjectChanged
// (changefeed.Feed).
type Feed interface {
	Publish(ctx context.Context, event any) error
	Follow(handle func(subject string, data []byte), guarded ...changefeed.Guarded) error
	Peers() int
}

// Cache is safe for concurrent use. Start the retry loop with Start and stop
// it with Close.
type Cache struct {
	kv   *cache.Cache
	rdb  redis.UniversalClient
	opts Options
	// versionTTL bounds version keys: longer than any entry, so a family's
	// pages are normally orphaned by a write, not by expiry.
	versionTTL time.Duration

	flights singleflight.Group
	local   *localcache.Cache[[]byte]
	// replayed is set when an invalidation failed: once it lands, every
	// replica's first-level cache is emptied, since they may have refilled
	// from the entries it should have removed.
	replayed atomic.Bool

	refresh refresher

	// Pending invalidations: each key and version key maps to the sequence
	// number of the latest write that needs it dropped (bumped), so a replay
	// removes only what it covered and never a later write's need.
	mu              sync.Mutex
	seq             uint64
	pendingKeys     map[string]uint64
	pendingVersions map[string]uint64
	hasPending      atomic.Bool
	lastFailure     atomic.Int64 // unix nanoseconds of the last failed Redis call

	started atomic.Bool
	closed  atomic.Bool
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
	if o.Name == "" {
		o.Name = "blog"
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = 5 * time.Second
	}
	return &Cache{
		kv: kv, rdb: kv.Client(), opts: o, local: o.Local, refresh: newRefresher(),
		versionTTL:  2 * max(o.TTLs.Blog, o.TTLs.Similar, o.TTLs.List, time.Hour),
		pendingKeys: map[string]uint64{}, pendingVersions: map[string]uint64{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Entry describes one cached value: either a fixed key guarded by its
// generation (a blog by id or slug) or a list whose key embeds its family's
// version: Prefix + kind + ":{" + tag + "}:" + version + ":" + rest, where
// tag names the family's version copy (and so the hash slot) it goes with.
type Entry struct {
	TTL time.Duration
	// key is the fixed key; "" for a versioned entry.
	key string
	// id and slug name the blog of a fixed entry (one of them is set).
	id, slug string
	// family, kind, rest make up a versioned entry's key (family names its
	// version keys); tag is the version copy's hash-slot tag.
	family, kind, rest, tag string
	// uncached entries go straight to the store (pages past the bounds).
	uncached bool
	// first marks the first page of a list: it is refreshed in the
	// background after a write (see Changed).
	first bool
	// skipEmpty: an empty list ("[]") is not worth caching.
	skipEmpty bool
}

// Key is a fixed entry's key, or the key of a versioned entry under
// version.
func (e Entry) Key(version string) string {
	if e.key != "" {
		return e.key
	}
	return e.keyPrefix() + version + ":" + e.rest
}

// keyPrefix is a versioned entry's key up to its version.
func (e Entry) keyPrefix() string { return Prefix + e.kind + ":{" + e.tag + "}:" }

// localKey names the entry in the first-level cache, where no version is
// needed: events drop entries by tag.
func (e Entry) localKey() string {
	if e.key != "" {
		return e.key
	}
	return Prefix + e.kind + "::" + e.rest
}

// localTags are the tags a Change drops the entry by (see Change.tags). A
// blog read by slug is also tagged with the id it holds.
func (e Entry) localTags(value []byte) []string {
	switch {
	case e.id != "":
		return []string{tagID + e.id}
	case e.slug != "":
		if id, ok := publicBlogID(value); ok {
			return []string{tagSlug + e.slug, tagID + id}
		}
		return []string{tagSlug + e.slug}
	}
	return []string{tagFamily + e.family}
}

// Cached reports whether the entry is ever stored.
func (e Entry) Cached() bool { return !e.uncached }

// accept vets a Redis hit; a refused hit is treated as a miss. A blog entry
// counts only if it is a PublicBlog (and, by id, the one with that id):
// earlier versions of this service kept control values (a counter, sets)
// under "blog_..." names that a slug can spell, and one of them may still be
// in Redis.
func (e Entry) accept(b []byte) bool {
	switch {
	case e.id != "":
		id, ok := publicBlogID(b)
		return ok && id == e.id
	case e.slug != "":
		return bytes.HasPrefix(b, publicBlogPrefix)
	}
	return true
}

// keeps says whether a loaded value is worth caching.
func (e Entry) keeps(b []byte) bool { return !e.skipEmpty || !bytes.Equal(b, []byte("[]")) }

var publicBlogPrefix = []byte(`{"_id":"`)

// publicBlogID is the id a PublicBlog's JSON starts with.
func publicBlogID(b []byte) (string, bool) {
	const n = len(`{"_id":"`)
	if len(b) < n+25 || !bytes.HasPrefix(b, publicBlogPrefix) || b[n+24] != '"' {
		return "", false
	}
	return string(b[n : n+24]), true
}

// BlogByID is blog_<id>.
func (c *Cache) BlogByID(id string) Entry {
	return Entry{key: BlogKey(id), id: id, TTL: c.opts.TTLs.Blog}
}

// BlogBySlug is SlugKey(slug).
func (c *Cache) BlogBySlug(slug string) Entry {
	return Entry{key: SlugKey(slug), slug: slug, TTL: c.opts.TTLs.Blog}
}

// Similar is the similar list of the blog with id (24 hex characters).
func (c *Cache) Similar(id string) Entry {
	return Entry{family: familyPublic, kind: "similar", rest: id, tag: shardTag(familyPublic, "similar", id), TTL: c.opts.TTLs.Similar}
}

func (c *Cache) Latest(p model.Page) Entry {
	return c.list(familyPublic, "latest", pageSuffix(p), p)
}

// Tag is one page of a tag's list. The tag is hex-encoded (it is the one
// free text that reaches a list key), and an empty page is not cached.
func (c *Cache) Tag(tag string, p model.Page) Entry {
	e := c.list(familyPublic, "tag", hex.EncodeToString([]byte(tag))+":"+pageSuffix(p), p)
	e.skipEmpty = true
	return e
}

// AuthorList is one page of an author's list; author is the user id (hex).
func (c *Cache) AuthorList(author string, list model.AuthorList, p model.Page) Entry {
	return c.list(familyAuthor(author), "author", author+":"+string(list)+":"+pageSuffix(p), p)
}

func (c *Cache) EditorList(list model.AuthorList, p model.Page) Entry {
	return c.list(familyEditor, "editor", string(list)+":"+pageSuffix(p), p)
}

func (c *Cache) list(family, kind, rest string, p model.Page) Entry {
	return Entry{family: family, kind: kind, rest: rest, tag: shardTag(family, kind, rest),
		TTL: c.opts.TTLs.List, uncached: !cacheable(p), first: p.Number == 1}
}

// Loader produces the value of an entry on a miss; its error is returned
// as is (and nothing is cached). It must use only the context it is given:
// a first page's loader is kept to refresh the page after writes.
type Loader func(ctx context.Context) (any, error)

// Fetch returns the entry's JSON: from this replica's first-level cache,
// else from Redis, else the encoded result of load, stored for the next
// reader in both tiers unless a write invalidated them meanwhile. The bytes
// returned are shared: callers must not modify them.
func (c *Cache) Fetch(ctx context.Context, e Entry, load Loader) ([]byte, error) {
	return c.fetchAll(ctx, e, load, true)
}

// fetchAll is Fetch; read says a reader asks (a refresh does not make a
// page hot).
func (c *Cache) fetchAll(ctx context.Context, e Entry, load Loader, read bool) ([]byte, error) {
	if e.uncached {
		return encode(ctx, load)
	}
	if c.local == nil {
		if e.first && read {
			c.refresh.remember(e.localKey(), e, load)
		}
		return c.fetch(ctx, e, load)
	}
	key := e.localKey()
	if b, ok := c.local.Get(key); ok {
		return b, nil
	}
	// Read before asking Redis or the store: an event that lands meanwhile
	// refuses the Set below.
	gen := c.local.Generation()
	if e.first && read {
		c.refresh.remember(key, e, load)
	}
	b, err := c.fetch(ctx, e, load)
	if err == nil && e.keeps(b) {
		c.local.Set(key, b, gen, e.localTags(b)...)
	}
	return b, err
}

// fetch is Fetch below the first-level cache: Redis, then the store.
func (c *Cache) fetch(ctx context.Context, e Entry, load Loader) ([]byte, error) {
	if !c.usable(ctx) {
		return encode(ctx, load)
	}
	if e.key == "" {
		return c.fetchVersioned(ctx, e, load)
	}
	if b, ok := c.kv.GetRaw(ctx, e.key); ok && e.accept(b) {
		return b, nil
	}
	genKey := GenerationKey(e.key)
	gen, ok := c.kv.Generation(ctx, genKey)
	if !ok {
		c.markFailure()
		return encode(ctx, load)
	}
	return c.shared(ctx, e.key+"\x00"+gen, e.key, load, e, func(ctx context.Context, b []byte) {
		c.kv.SetIfGeneration(ctx, genKey, gen, e.key, json.RawMessage(b), e.TTL)
	})
}

// shared runs load once for every concurrent caller with the same flight
// key and stores its result with store (when the entry keeps it). The
// Redis key is read once more first: a caller that missed it just before
// the previous flight stored it arrives after that flight ended and starts
// a new one, which then finds the value instead of querying the store.
func (c *Cache) shared(ctx context.Context, flight, key string, load Loader, e Entry, store func(context.Context, []byte)) ([]byte, error) {
	v, err, _ := c.flights.Do(flight, func() (any, error) {
		// The query is shared by every waiting request: it must not stop
		// because the first of them went away.
		ctx := context.WithoutCancel(ctx)
		if b, err := c.rdb.Get(ctx, key).Bytes(); err == nil && e.accept(b) {
			return b, nil
		}
		b, err := encode(ctx, load)
		if err != nil {
			return nil, err
		}
		if e.keeps(b) {
			store(ctx, b)
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// readVersioned returns a family's version and the entry under it, creating
// the version (ARGV[3]) when the family has none.
// KEYS[1] version key; ARGV[1] key prefix, ARGV[2] key suffix (the entry's
// key is ARGV[1] .. version .. ARGV[2], in KEYS[1]'s hash slot: both carry
// the same tag), ARGV[3] fresh token, ARGV[4] its TTL in milliseconds.
var readVersioned = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  v = ARGV[3]
  redis.call('SET', KEYS[1], v, 'PX', ARGV[4])
end
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}`)

func (c *Cache) fetchVersioned(ctx context.Context, e Entry, load Loader) ([]byte, error) {
	res, err := readVersioned.Run(ctx, c.rdb, []string{versionKey(e.tag)},
		e.keyPrefix(), ":"+e.rest, newToken(), c.versionTTL.Milliseconds()).Slice()
	if err != nil || len(res) == 0 {
		c.lookup("error")
		c.opts.Logger.Warn("cache unavailable; falling back", "cache", c.opts.Name, "op", "read_versioned", "kind", e.kind, "error", errString(err))
		c.markFailure()
		return encode(ctx, load)
	}
	version, _ := res[0].(string)
	if len(res) > 1 {
		if s, ok := res[1].(string); ok && e.accept([]byte(s)) {
			c.lookup("hit")
			return []byte(s), nil
		}
	}
	c.lookup("miss")
	key := e.Key(version)
	return c.shared(ctx, key, key, load, e, func(ctx context.Context, b []byte) {
		// No guard needed: if a write changed the version since it was read,
		// this key is orphaned and never read.
		if err := c.rdb.Set(ctx, key, b, e.TTL).Err(); err != nil {
			c.lookup("error")
			c.opts.Logger.Warn("cache unavailable; falling back", "cache", c.opts.Name, "op", "set", "kind", e.kind, "error", err.Error())
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "empty reply"
	}
	return err.Error()
}

func (c *Cache) lookup(result string) { c.opts.Metrics.Cache(c.opts.Name, result) }

// newToken is a fresh version token: random, so never one that was used
// before (64 bits, in base 36: no ":" can appear).
func newToken() string { return strconv.FormatUint(rand.Uint64(), 36) }

func encode(ctx context.Context, load Loader) ([]byte, error) {
	v, err := load(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Changed invalidates everything that may show the blog in any of the given
// states (its state before a write and after it; nil states are skipped).
// Call it after the store write, before answering. In order:
//   - Redis: always tried at once (even right after a failure: writes are
//     rare and the other replicas rely on it); what fails stays pending for
//     the retries;
//   - this replica's first-level cache, synchronously;
//   - every other replica's, by publishing the Change on SubjectChanged
//     (flushed to the NATS server before returning; a failure is logged and
//     the write stands: TTLs bound what the others serve);
//   - the first pages of the affected lists that readers asked for lately
//     are refreshed in the background, so the next reader finds them warm.
//
// Redis goes first: a replica that drops an entry on the event and reads it
// again must find Redis already invalidated.
func (c *Cache) Changed(ctx context.Context, states ...*model.Blog) {
	ch := affected(states)
	keys, versions := ch.redisKeys()
	c.mu.Lock()
	c.seq++
	for _, k := range keys {
		c.pendingKeys[k] = c.seq
	}
	for _, v := range versions {
		c.pendingVersions[v] = c.seq
	}
	c.hasPending.Store(true)
	c.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	_ = c.flush(ctx)
	c.local.Invalidate(ch.tags()...)
	c.publish(ctx, ch)
	c.refreshFirstPages(ctx, ch.Families)
}

// affected is what may hold a blog in states:
//   - its own keys: by id and by slug;
//   - its author's lists, whatever the state;
//   - the editors' lists when it is or was submitted or published;
//   - the public lists and every similar list when it is or was public.
func affected(states []*model.Blog) Change {
	var ch Change
	public, editor := false, false
	for _, s := range states {
		if s == nil {
			continue
		}
		ch.IDs = appendNew(ch.IDs, s.ID.Hex())
		ch.Slugs = appendNew(ch.Slugs, s.Slug)
		ch.Families = appendNew(ch.Families, familyAuthor(s.Author.Hex()))
		public = public || s.IsPublic()
		editor = editor || s.Status && (s.Submitted || s.Published)
	}
	if public {
		ch.Families = append(ch.Families, familyPublic)
	}
	if editor {
		ch.Families = append(ch.Families, familyEditor)
	}
	return ch
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// redisKeys are the Redis keys a Change deletes and the keys it renews: the
// generation of each deleted key and every version copy of each family.
func (ch Change) redisKeys() (keys, renewed []string) {
	for _, id := range ch.IDs {
		keys = append(keys, BlogKey(id))
	}
	for _, slug := range ch.Slugs {
		keys = append(keys, SlugKey(slug))
	}
	for _, k := range keys {
		renewed = append(renewed, GenerationKey(k))
	}
	for _, f := range ch.Families {
		renewed = append(renewed, versionKeys(f)...)
	}
	return keys, renewed
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

// invalidate sets a fresh token on each generation and version key, then
// deletes the other keys, atomically. Its work is proportional to the keys
// it is given (a few per write), never to what is cached.
// KEYS[1 .. ARGV[1]] generation and version keys, then keys to delete;
// ARGV[2] the new token, ARGV[3] its TTL in milliseconds.
var invalidate = redis.NewScript(`
local renewed = tonumber(ARGV[1])
for i = 1, renewed do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
if #KEYS > renewed then redis.call('DEL', unpack(KEYS, renewed + 1)) end
return 1`)

// runInvalidate applies an invalidation: one atomic script on a single
// server or behind Sentinel; on a Redis Cluster, whose scripts cannot span
// slots, two pipelines: the first renews every generation and version, and
// only once it has been answered does the second delete the keys. So a
// key's generation is always renewed before the key goes, even while its
// slot migrates (an ASK redirect replays a command later, which could let a
// delete overtake a renewal within one pipeline): a reader whose guarded
// write lands in between is refused, as with the script. The second round
// trip is paid by writes only, and only on a Cluster.
func (c *Cache) runInvalidate(ctx context.Context, renewed, keys []string) error {
	token, ttl := newToken(), c.versionTTL
	if !cache.IsCluster(c.rdb) {
		all := make([]string, 0, len(renewed)+len(keys))
		all = append(append(all, renewed...), keys...)
		return invalidate.Run(ctx, c.rdb, all, len(renewed), token, ttl.Milliseconds()).Err()
	}
	renew := c.rdb.Pipeline()
	for _, k := range renewed {
		renew.Set(ctx, k, token, ttl)
	}
	if _, err := renew.Exec(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	del := c.rdb.Pipeline()
	for _, k := range keys {
		del.Del(ctx, k)
	}
	_, err := del.Exec(ctx)
	return err
}

// flush replays every pending invalidation in one script.
func (c *Cache) flush(ctx context.Context) error {
	c.mu.Lock()
	covered := c.seq
	versions := make([]string, 0, len(c.pendingVersions))
	for v := range c.pendingVersions {
		versions = append(versions, v)
	}
	keys := make([]string, 0, len(c.pendingKeys))
	for k := range c.pendingKeys {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	if len(keys) == 0 && len(versions) == 0 {
		return nil
	}
	if err := c.runInvalidate(ctx, versions, keys); err != nil {
		c.lookup("error")
		c.opts.Logger.Warn("cache invalidation failed; will retry", "cache", c.opts.Name, "error", err.Error())
		c.markFailure()
		c.replayed.Store(true)
		return err
	}
	c.mu.Lock()
	for _, k := range keys {
		if c.pendingKeys[k] <= covered {
			delete(c.pendingKeys, k)
		}
	}
	for _, v := range versions {
		if c.pendingVersions[v] <= covered {
			delete(c.pendingVersions, v)
		}
	}
	c.hasPending.Store(len(c.pendingKeys)+len(c.pendingVersions) > 0)
	c.mu.Unlock()
	if c.replayed.CompareAndSwap(true, false) {
		// While the invalidation was pending, replicas that followed its
		// event refilled their first-level caches from entries it should
		// have removed: they all start again from Redis.
		c.local.Clear()
		c.publish(ctx, Change{All: true})
	}
	return nil
}

// Lock timings: a lock expires on its own after lockTTL (its holder died;
// a live holder renews it every lockTTL/3), and a writer waits at most
// lockWait for it.
const (
	lockTTL   = 5 * time.Second
	lockWait  = 2 * time.Second
	lockPause = 5 * time.Millisecond
)

var unlock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

var renew = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

// ErrLockBusy: another writer held the blog's lock for all of lockWait.
var ErrLockBusy = errors.New("blog write lock busy")

// LockWrite serialises the writes of one blog (id: 24 hex characters)
// across replicas: it returns once this caller holds blogcache:lock:<id>,
// and the returned func releases it. Every conditional update of a blog is
// atomic on MongoDB, but a store that applies an update as "find, then
// replace" (the embedded FerretDB of tests and the local platform) lets two
// concurrent conditional updates both match, the later silently undoing
// the earlier; holding this lock around read, check and update closes that
// gap. The holder renews the lock while it holds it, so a slow write keeps
// it; one whose holder died expires after lockTTL.
//
// When Redis cannot answer, the write goes ahead without the lock, on the
// store's own guarantees. When the lock stays taken for lockWait, the
// answer is ErrLockBusy: the caller must not write (writing anyway could
// undo the holder's write on such a store).
func (c *Cache) LockWrite(ctx context.Context, id string) (release func(), err error) {
	if c.failedRecently() {
		return func() {}, nil
	}
	key, token := Prefix+"lock:"+id, newToken()
	deadline := time.Now().Add(lockWait)
	for {
		ok, err := c.rdb.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return func() {}, nil
		}
		if ok {
			return c.holdLock(ctx, key, token), nil
		}
		if time.Now().After(deadline) {
			return nil, ErrLockBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPause):
		}
	}
}

// holdLock renews the held lock until the returned release deletes it.
func (c *Cache) holdLock(ctx context.Context, key, token string) (release func()) {
	ctx = context.WithoutCancel(ctx)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = renew.Run(ctx, c.rdb, []string{key}, token, lockTTL.Milliseconds()).Err()
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		_ = unlock.Run(ctx, c.rdb, []string{key}, token).Err()
	}
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
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.stopRefreshes()
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
