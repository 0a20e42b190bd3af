// Package change applies one write to a blog and keeps the cache coherent,
// the same way for author and editor writes.
package change

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/model"
)

// Applier writes blogs.
type Applier struct {
	store *model.Store
	cache *blogcache.Cache
}

func NewApplier(store *model.Store, cache *blogcache.Cache) *Applier {
	return &Applier{store: store, cache: cache}
}

// Apply $sets fields of the blog the caller read as before, only while the
// blog still matches expect (the conditions the caller checked on before)
// and is still in the state the caller read (its updatedAt unchanged: every
// write moves updatedAt, see model.NextUpdatedAt, so this makes each write a
// compare-and-set on the whole state); mutate makes the same change to a
// copy of before in memory. matched is false when the blog no longer
// matches; then nothing was written and the caller reads it again.
//
// After the write it reads the blog back and invalidates the cache for every
// state involved: before, the computed state, and the read-back state, which
// is what the write left (including a slug or publication change made
// concurrently by someone else), so nothing that could show the blog as it
// was before this write survives it. When the read-back fails the computed
// state stands in for it.
func (a *Applier) Apply(ctx context.Context, before *model.Blog, expect, set bson.D, mutate func(*model.Blog)) (after *model.Blog, matched bool, err error) {
	computed := *before
	mutate(&computed)
	expect = append(append(bson.D{}, expect...), bson.E{Key: "updatedAt", Value: before.UpdatedAt})
	matched, err = a.store.Update(ctx, before.ID, expect, set)
	if err != nil || !matched {
		return nil, matched, err
	}
	after, readErr := a.store.FindByID(ctx, before.ID)
	if readErr != nil {
		after = &computed
	}
	a.cache.Changed(ctx, before, &computed, after)
	return after, true, nil
}

// Exclusive runs fn, which reads, checks and writes the blog with id,
// while no other writer of this blog (on any replica) runs (see
// blogcache.Cache.Lock).
func (a *Applier) Exclusive(ctx context.Context, id bson.ObjectID, fn func() error) error {
	release := a.cache.Lock(ctx, id.Hex())
	defer release()
	return fn()
}

// Created invalidates what a new blog may appear in (its author's drafts).
func (a *Applier) Created(ctx context.Context, b *model.Blog) { a.cache.Changed(ctx, b) }

// Conflict is a write refused because of the blog's current state in a way
// the client can resolve (look at the blog again): a 409.
type Conflict struct{ Message string }

func (c *Conflict) Error() string { return c.Message }

// MaxAttempts bounds re-reading a blog whose conditional update lost a race
// against another write of it.
const MaxAttempts = 3
