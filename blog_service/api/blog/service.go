// Package blog serves published blogs to everyone, by id and by slug, from
// the cache or the store. The author's public profile is stored with the
// blog; a blog stored without one (written by the reference, not yet
// reached by the start-up backfill) gets it from auth_service through
// package authorprofile, and is cached with it.
package blog

import (
	"context"
	"encoding/json"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/authorprofile"
	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
)

// NotFoundMessage is the 404 of every public read.
const NotFoundMessage = "blog not found"

type Service struct {
	store    *model.Store
	cache    *blogcache.Cache
	profiles *authorprofile.Resolver
}

func NewService(store *model.Store, cache *blogcache.Cache, profiles *authorprofile.Resolver) *Service {
	return &Service{store: store, cache: cache, profiles: profiles}
}

// ByID returns the PublicBlog JSON of the published blog with id (hex).
func (s *Service) ByID(ctx context.Context, id bson.ObjectID) ([]byte, error) {
	return s.fetch(ctx, s.cache.BlogByID(id.Hex()), func(ctx context.Context) (*model.Blog, error) {
		return s.store.FindByID(ctx, id)
	})
}

// BySlug returns the PublicBlog JSON of the published blog with slug.
func (s *Service) BySlug(ctx context.Context, slug string) ([]byte, error) {
	return s.fetch(ctx, s.cache.BlogBySlug(slug), func(ctx context.Context) (*model.Blog, error) {
		return s.store.FindBySlug(ctx, slug)
	})
}

// withoutAuthor is a PublicBlog whose author's profile could not be
// resolved (auth_service did not answer). It travels as the loader's error
// only so that the cache does not keep it: the blog is served as it is
// (author name ""), and the next read tries the author again.
type withoutAuthor struct{ view dto.PublicBlog }

func (withoutAuthor) Error() string { return "author profile unresolved" }

func (s *Service) fetch(ctx context.Context, e blogcache.Entry, find func(context.Context) (*model.Blog, error)) ([]byte, error) {
	data, err := s.cache.Fetch(ctx, e, func(ctx context.Context) (any, error) {
		b, err := find(ctx)
		if errors.Is(err, model.ErrNotFound) || err == nil && !b.IsPublic() {
			return nil, apperr.Missing(NotFoundMessage)
		}
		if err != nil {
			return nil, err
		}
		if !s.profiles.Fill(ctx, b) {
			return nil, withoutAuthor{dto.NewPublicBlog(b)}
		}
		return dto.NewPublicBlog(b), nil
	})
	var partial withoutAuthor
	if errors.As(err, &partial) {
		return json.Marshal(partial.view)
	}
	return data, err
}
