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
// blog still matches expect (the conditions the caller checked on before);
// mutate makes the same change to a copy of before in memory. matched is
// false when the blog no longer matches; then nothing was written.
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

// Created invalidates what a new blog may appear in (its author's drafts).
func (a *Applier) Created(ctx context.Context, b *model.Blog) { a.cache.Changed(ctx, b) }
