// Package blogrepo is the one way blogs are written: it stores a change
// made by the domain (package model) with an optimistic concurrency check
// and keeps the cache coherent in the same call, so no caller can forget
// either.
package blogrepo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
)

// MaxAttempts bounds the re-reads of a blog whose write lost a race against
// another write of it.
const MaxAttempts = 3

// Repository writes blogs.
type Repository struct {
	store *model.Store
	cache *blogcache.Cache
}

func New(store *model.Store, cache *blogcache.Cache) *Repository {
	return &Repository{store: store, cache: cache}
}

// Create stores a new blog (a taken slug is model.ErrSlugTaken) and
// invalidates what it may appear in (its author's drafts) on every replica
// before returning, like Update.
func (r *Repository) Create(ctx context.Context, b *model.Blog) error {
	if err := r.store.Insert(ctx, b); err != nil {
		return err
	}
	r.cache.Changed(ctx, b)
	return nil
}

// Update reads the blog with id, applies change to it and writes the result
// back, only while the stored blog is still the version it read (see
// model.Store.Save). When another write got in between, it reads the blog
// again and applies change to the new state, so change always judges the
// state it changes; after MaxAttempts lost races the answer is a Conflict.
// An error from change is returned as is and nothing is written. A missing
// blog is model.ErrNotFound.
//
// The cache entries of the blog in its state before and after the write
// (by id, by both slugs, and every list that may show either state) are
// invalidated before Update returns: in Redis, in this replica's local
// cache, and, through the change event published before returning, in
// every other replica's (see blogcache.Cache.Changed).
//
// Writes of one blog also hold its lock (blogcache.Cache.LockWrite) across
// replicas: on MongoDB the version check alone is atomic, but the embedded
// FerretDB of tests and the local platform matches an update's filter and
// writes in two steps, so two concurrent writes could both match one
// version. The lock closes that gap. A lock another writer keeps for too
// long is the same Conflict as a blog that kept changing.
func (r *Repository) Update(ctx context.Context, id bson.ObjectID, change func(*model.Blog) error) (*model.Blog, error) {
	release, err := r.cache.LockWrite(ctx, id.Hex())
	if errors.Is(err, blogcache.ErrLockBusy) {
		return nil, busy(id)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		before, err := r.store.FindByID(ctx, id)
		if err != nil {
			return nil, err
		}
		after := before.Clone()
		if err := change(after); err != nil {
			return nil, err
		}
		saved, err := r.store.Save(ctx, before, after)
		if err != nil {
			return nil, err
		}
		if saved {
			r.cache.Changed(ctx, before, after)
			return after, nil
		}
	}
	return nil, busy(id)
}

// busy answers a write that lost every attempt to concurrent writes.
func busy(id bson.ObjectID) error {
	return apperr.New(apperr.Conflict, fmt.Sprintf("blog for _id %s kept changing during the update; try again", id.Hex()))
}
