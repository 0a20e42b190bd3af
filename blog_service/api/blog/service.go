// Package blog serves published blogs to everyone, by id and by slug, from
// the cache or the store. It never asks auth_service: the author's public
// profile is stored with the blog.
package blog

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
)

// NotFoundMessage is the 404 of every public read.
const NotFoundMessage = "blog not found"

type Service struct {
	store *model.Store
	cache *blogcache.Cache
}

func NewService(store *model.Store, cache *blogcache.Cache) *Service {
	return &Service{store: store, cache: cache}
}

// ByID returns the PublicBlog JSON of the published blog with id (hex).
func (s *Service) ByID(ctx context.Context, id bson.ObjectID) ([]byte, error) {
	return s.cache.Fetch(ctx, s.cache.BlogByID(id.Hex()), func(ctx context.Context) (any, error) {
		return public(s.store.FindByID(ctx, id))
	})
}

// BySlug returns the PublicBlog JSON of the published blog with slug.
func (s *Service) BySlug(ctx context.Context, slug string) ([]byte, error) {
	return s.cache.Fetch(ctx, s.cache.BlogBySlug(slug), func(ctx context.Context) (any, error) {
		return public(s.store.FindBySlug(ctx, slug))
	})
}

func public(b *model.Blog, err error) (any, error) {
	if errors.Is(err, model.ErrNotFound) || err == nil && !b.IsPublic() {
		return nil, apperr.Missing(NotFoundMessage)
	}
	if err != nil {
		return nil, err
	}
	return dto.NewPublicBlog(b), nil
}
