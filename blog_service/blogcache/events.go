package blogcache

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/localcache"
)

// Subjects of blog_service's change events (all under events.blog.>).
const (
	// SubjectChanged carries a Change to every blog replica after each
	// write.
	SubjectChanged = "events.blog.changed"
	// SubjectPresence carries each following replica's heartbeat (a
	// Presence), so a writer knows whose acknowledgements to wait for.
	SubjectPresence = "events.blog.presence"
	// subjectAck + origin carries the acknowledgements (an Ack) of the
	// Changes the replica origin published.
	subjectAck = "events.blog.ack."
)

// Presence timings: a replica announces itself every presenceEvery and is
// counted as a peer until presenceFor has passed without its heartbeat (a
// replica that died, or lost NATS, stops being waited for then).
const (
	presenceEvery = time.Second
	presenceFor   = 3 * time.Second
)

// Change is the payload of SubjectChanged (JSON): what a write may have
// changed, so each replica drops the first-level cache entries that may
// show it. Redis has already been invalidated when it is published.
type Change struct {
	// IDs and Slugs name the blogs changed (every slug they had or have).
	IDs   []string `json:"ids,omitempty"`
	Slugs []string `json:"slugs,omitempty"`
	// Families are the lists that may show them: "public" (latest, tag and
	// similar lists), "editor", "author:<user id>".
	Families []string `json:"families,omitempty"`
	// All: anything may have changed (an invalidation that had failed was
	// replayed); every entry goes.
	All bool `json:"all,omitempty"`
	// Origin and Seq identify the event: replicas acknowledge it on
	// events.blog.ack.<Origin> (see publish).
	Origin string `json:"origin,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
}

// Presence is the payload of SubjectPresence.
type Presence struct {
	Origin string `json:"origin"`
	// Gone: the replica is shutting down; stop waiting for it now.
	Gone bool `json:"gone,omitempty"`
}

// Ack is the payload of an acknowledgement: replica Origin has applied the
// publisher's event Seq.
type Ack struct {
	Origin string `json:"origin"`
	Seq    uint64 `json:"seq"`
}

// Tags of first-level cache entries (see Entry.localTags).
const (
	tagID     = "id:"
	tagSlug   = "slug:"
	tagFamily = "family:"
)

func (ch Change) tags() []string {
	tags := make([]string, 0, len(ch.IDs)+len(ch.Slugs)+len(ch.Families))
	for _, id := range ch.IDs {
		tags = append(tags, tagID+id)
	}
	for _, slug := range ch.Slugs {
		tags = append(tags, tagSlug+slug)
	}
	for _, f := range ch.Families {
		tags = append(tags, tagFamily+f)
	}
	return tags
}

// events is the replica's side of the change-event protocol.
type events struct {
	following bool // set once by Follow, before any event
	mu        sync.Mutex
	seq       uint64
	peers     map[string]time.Time       // origin → last heartbeat
	waiting   map[uint64]map[string]bool // seq → origins yet to acknowledge
	done      map[uint64]chan struct{}
	stop      chan struct{}
	stopped   chan struct{}
}

// publish tells every replica about ch (this one has already dropped its
// own entries) and, when this replica follows the events, returns only
// once every live peer and this replica itself have applied it, or after
// changefeed.PublishTimeout. So a client that got the write's answer finds
// no replica serving the old state: the NATS server fans an event out to
// the replicas in parallel with nothing ordering it before the client's
// next request, and the acknowledgements supply that order. A peer that
// does not answer (it died, or lost NATS and so suspended its cache) costs
// the writes of the next presenceFor at most the timeout, then is no
// longer waited for. A failure is logged and the write stands: TTLs bound
// what the others serve.
func (c *Cache) publish(ctx context.Context, ch Change) {
	if c.opts.Events == nil {
		return
	}
	var done chan struct{}
	if c.ev.following && !c.local.Suspended() {
		done = c.expectAcks(&ch)
		defer c.forget(ch.Seq)
	}
	ctx, cancel := context.WithTimeout(ctx, changefeed.PublishTimeout)
	defer cancel()
	if err := c.opts.Events.Publish(ctx, SubjectChanged, ch); err != nil {
		c.opts.Logger.Warn("blog change event not published; other replicas' local caches keep the old state until their TTL",
			"error", err.Error(), "ids", ch.IDs)
		return
	}
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		c.ev.mu.Lock()
		missing := make([]string, 0, len(c.ev.waiting[ch.Seq]))
		for origin := range c.ev.waiting[ch.Seq] {
			missing = append(missing, origin)
		}
		c.ev.mu.Unlock()
		c.opts.Logger.Warn("blog change event not acknowledged by every replica in time", "missing", missing)
	}
}

// expectAcks numbers ch and notes whose acknowledgements to wait for.
func (c *Cache) expectAcks(ch *Change) chan struct{} {
	now := time.Now()
	c.ev.mu.Lock()
	defer c.ev.mu.Unlock()
	c.ev.seq++
	ch.Origin, ch.Seq = c.origin, c.ev.seq
	want := map[string]bool{c.origin: true}
	for origin, seen := range c.ev.peers {
		if now.Sub(seen) > presenceFor {
			delete(c.ev.peers, origin)
			continue
		}
		want[origin] = true
	}
	done := make(chan struct{})
	c.ev.waiting[ch.Seq] = want
	c.ev.done[ch.Seq] = done
	return done
}

func (c *Cache) forget(seq uint64) {
	c.ev.mu.Lock()
	delete(c.ev.waiting, seq)
	delete(c.ev.done, seq)
	c.ev.mu.Unlock()
}

// acked records that origin applied this replica's event seq.
func (c *Cache) acked(origin string, seq uint64) {
	c.ev.mu.Lock()
	defer c.ev.mu.Unlock()
	want, ok := c.ev.waiting[seq]
	if !ok || !want[origin] {
		return
	}
	delete(want, origin)
	if len(want) == 0 {
		close(c.ev.done[seq])
		delete(c.ev.done, seq)
	}
}

// Follow subscribes this replica to the change events with follow
// (runtime.Runtime's Follow, or changefeed.Follow): Apply on SubjectChanged
// guarding the first-level cache, the peers' heartbeats, and the
// acknowledgements of its own events; and it starts its own heartbeat
// (stopped by Close). Without a first-level cache there is nothing to
// follow.
func (c *Cache) Follow(follow func(subject string, handle func(subject string, data []byte), guarded ...changefeed.Guarded) error) error {
	if c.local == nil || c.opts.Events == nil {
		return nil
	}
	if err := follow(subjectAck+c.origin, c.applyAck); err != nil {
		return err
	}
	if err := follow(SubjectPresence, c.applyPresence); err != nil {
		return err
	}
	if err := follow(SubjectChanged, c.Apply, c.local); err != nil {
		return err
	}
	c.ev.following = true
	go c.heartbeat()
	return nil
}

func (c *Cache) heartbeat() {
	defer close(c.ev.stopped)
	t := time.NewTicker(presenceEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), changefeed.PublishTimeout)
		_ = c.opts.Events.Publish(ctx, SubjectPresence, Presence{Origin: c.origin})
		cancel()
		select {
		case <-c.ev.stop:
			return
		case <-t.C:
		}
	}
}

// stopHeartbeat stops announcing this replica and tells the peers it is
// going (the runtime closes the cache while NATS is still connected), so
// their writes stop waiting for it at once rather than after presenceFor.
func (c *Cache) stopHeartbeat(ctx context.Context) {
	if !c.ev.following {
		return
	}
	close(c.ev.stop)
	<-c.ev.stopped
	ctx, cancel := context.WithTimeout(ctx, changefeed.PublishTimeout)
	defer cancel()
	_ = c.opts.Events.Publish(ctx, SubjectPresence, Presence{Origin: c.origin, Gone: true})
}

func (c *Cache) applyPresence(_ string, data []byte) {
	var p Presence
	if json.Unmarshal(data, &p) != nil || p.Origin == "" || p.Origin == c.origin {
		return
	}
	if !p.Gone {
		c.ev.mu.Lock()
		c.ev.peers[p.Origin] = time.Now()
		c.ev.mu.Unlock()
		return
	}
	c.ev.mu.Lock()
	delete(c.ev.peers, p.Origin)
	var waits []uint64
	for seq := range c.ev.waiting {
		waits = append(waits, seq)
	}
	c.ev.mu.Unlock()
	for _, seq := range waits {
		c.acked(p.Origin, seq)
	}
}

func (c *Cache) applyAck(_ string, data []byte) {
	var a Ack
	if json.Unmarshal(data, &a) == nil {
		c.acked(a.Origin, a.Seq)
	}
}

// Apply handles one event of SubjectChanged (the handler to follow it
// with, guarding Options.Local): it drops the first-level cache entries
// the Change names, then acknowledges the event to its publisher. An event
// it cannot read empties the cache.
func (c *Cache) Apply(_ string, data []byte) {
	if c.local == nil {
		return
	}
	var ch Change
	if err := json.Unmarshal(data, &ch); err != nil {
		c.opts.Logger.Warn("unreadable blog change event; local cache emptied", "error", err.Error())
		c.local.Clear()
		return
	}
	if ch.All {
		c.local.Clear()
	} else {
		c.local.Invalidate(ch.tags()...)
	}
	switch {
	case ch.Origin == "" || c.opts.Events == nil:
	case ch.Origin == c.origin:
		c.acked(c.origin, ch.Seq)
	default:
		ctx, cancel := context.WithTimeout(context.Background(), changefeed.PublishTimeout)
		defer cancel()
		_ = c.opts.Events.Publish(ctx, subjectAck+ch.Origin, Ack{Origin: c.origin, Seq: ch.Seq})
	}
}

// Local is this replica's first-level cache (nil when turned off).
func (c *Cache) Local() *localcache.Cache[[]byte] { return c.local }

// Peers is the number of other replicas this one currently waits for when
// it publishes a change.
func (c *Cache) Peers() int {
	now := time.Now()
	c.ev.mu.Lock()
	defer c.ev.mu.Unlock()
	n := 0
	for _, seen := range c.ev.peers {
		if now.Sub(seen) <= presenceFor {
			n++
		}
	}
	return n
}
