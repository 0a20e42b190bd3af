package blogcache

import (
	"context"
	"encoding/json"
	"errors"

	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/localcache"
)

// SubjectChanged carries a Change to every blog replica after each write.
// It is published and followed through a changefeed.Feed, which numbers
// the events and collects the replicas' acknowledgements.
const SubjectChanged = "events.blog.changed"

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

// publish tells every replica about ch (this one has already dropped its
// own entries) and returns once every live replica following the events
// has applied it, or after changefeed.PublishTimeout (see changefeed.Feed):
// so a client that got the write's answer finds no replica serving the old
// state. A failure is logged and the write stands: TTLs bound what the
// others serve.
func (c *Cache) publish(ctx context.Context, ch Change) {
	if c.opts.Events == nil {
		return
	}
	err := c.opts.Events.Publish(ctx, ch)
	switch {
	case err == nil:
	case errors.Is(err, changefeed.ErrNotAcknowledged):
		c.opts.Logger.Warn("blog change event not acknowledged by every replica in time", "error", err.Error(), "ids", ch.IDs)
	default:
		c.opts.Logger.Warn("blog change event not published; other replicas' local caches keep the old state until their TTL",
			"error", err.Error(), "ids", ch.IDs)
	}
}

// Follow makes this replica a follower of the change events: Apply on
// each, guarding the first-level cache, acknowledged to the writer by the
// feed. Without a first-level cache there is nothing to follow (the
// replica still publishes, and waits for those that follow).
func (c *Cache) Follow() error {
	if c.local == nil || c.opts.Events == nil {
		return nil
	}
	return c.opts.Events.Follow(c.Apply, c.local)
}

// Apply handles one event of SubjectChanged (the handler to follow it
// with, guarding Options.Local): it drops the first-level cache entries
// the Change names. An event it cannot read empties the cache.
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
}

// Local is this replica's first-level cache (nil when turned off).
func (c *Cache) Local() *localcache.Cache[[]byte] { return c.local }

// Peers is the number of other replicas this one currently waits for when
// it publishes a change.
func (c *Cache) Peers() int {
	if c.opts.Events == nil {
		return 0
	}
	return c.opts.Events.Peers()
}
