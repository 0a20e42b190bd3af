// Package list serves the public lists: latest blogs, blogs by tag and
// similar blogs. None of them asks auth_service.
package list

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/api/blog"
	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
)

type Service struct {
	store *model.Store
	cache *blogcache.Cache
}

func NewService(store *model.Store, cache *blogcache.Cache) *Service {
	return &Service{store: store, cache: cache}
}

// Latest returns the [ItemBlog] JSON of one page of published blogs, most
// recently updated first (then higher score, then newer id).
func (s *Service) Latest(ctx context.Context, p model.Page) ([]byte, error) {
	e := s.cache.Latest(p)
	return s.cache.Fetch(ctx, e, func(ctx context.Context) (any, error) {
		return items(s.listPublic(ctx, e, "", p))
	})
}

// Tagged is Latest restricted to blogs carrying tag.
func (s *Service) Tagged(ctx context.Context, tag string, p model.Page) ([]byte, error) {
	e := s.cache.Tag(tag, p)
	return s.cache.Fetch(ctx, e, func(ctx context.Context) (any, error) {
		return items(s.listPublic(ctx, e, tag, p))
	})
}

// listPublic reads a page for entry e. Only a page the cache never keeps
// may come from a secondary (DB_READ_PREFERENCE). A page it keeps is read
// from the primary: the cache's coherence rests on a fill reading the store
// after the invalidation of the last write (it notes the generation or list
// version first), and a lagging secondary could still answer with the state
// before that write, which the fill would then store under the new version,
// serving the old state until the entry's TTL. The same holds for blogs by
// id or slug and similar lists, which are always cached, so they read the
// primary too.
func (s *Service) listPublic(ctx context.Context, e blogcache.Entry, tag string, p model.Page) ([]model.Blog, error) {
	if e.Cached() {
		return s.store.ListPublic(ctx, tag, p)
	}
	return s.store.ListPublicMaybeStale(ctx, tag, p)
}

func items(blogs []model.Blog, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return dto.NewItemBlogs(blogs), nil
}

// Similar returns the [ItemBlog] JSON of up to MaxSimilar published blogs
// most similar to the published blog with id (see Rank).
func (s *Service) Similar(ctx context.Context, id bson.ObjectID) ([]byte, error) {
	return s.cache.Fetch(ctx, s.cache.Similar(id.Hex()), func(ctx context.Context) (any, error) {
		return s.similar(ctx, id)
	})
}

func (s *Service) similar(ctx context.Context, id bson.ObjectID) ([]dto.ItemBlog, error) {
	source, err := s.store.FindByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) || err == nil && !source.IsPublic() {
		return nil, apperr.Missing(blog.NotFoundMessage)
	}
	if err != nil {
		return nil, err
	}
	if source.TitleTerms == nil {
		// Stored without terms (written by the reference, not yet reached
		// by the start-up backfill): compute them now. Candidates without
		// terms are not found until the backfill gives them theirs.
		source.SetTerms()
	}
	candidates, err := s.store.SimilarCandidates(ctx, id, source.TitleTerms)
	if err != nil {
		return nil, err
	}
	best := Rank(source.TitleTerms, candidates, MaxSimilar)
	out := make([]dto.ItemBlog, 0, len(best))
	for _, c := range best {
		// Point reads by id: cheap on every store, and only for the winners.
		b, err := s.store.FindItemByID(ctx, c.ID)
		if errors.Is(err, model.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if b.IsPublic() { // it may have changed since the candidate query
			out = append(out, dto.NewItemBlog(b))
		}
	}
	return out, nil
}
