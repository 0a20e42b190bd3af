// Package author serves the AUTHOR routes: create, update, read, delete,
// submit and withdraw one's own blogs, and list them. Another author's blog
// is answered exactly like a missing one.
package author

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/blogrepo"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
)

// msgBlogNotFound answers delete, submit and withdraw of a blog the user
// does not own (or that does not exist).
const msgBlogNotFound = "blog not found"

func slugTaken(slug string) error {
	return apperr.BadRequest(fmt.Sprintf("Blog with slug: %s already exists", slug))
}

// formatSlug is FormatSlug, refusing a slug that formatting made too short.
func formatSlug(raw string) (string, error) {
	slug := FormatSlug(raw)
	if slugTooShort(slug) {
		return "", apperr.BadRequest(fmt.Sprintf("slug must be at least %d size", MinSlugLen))
	}
	return slug, nil
}

type Service struct {
	store *model.Store
	repo  *blogrepo.Repository
	cache *blogcache.Cache
	// reviewPublished refuses changes to the public fields of a published
	// blog (BLOG_PUBLISHED_EDITS=review).
	reviewPublished bool
}

func NewService(store *model.Store, repo *blogrepo.Repository, cache *blogcache.Cache, reviewPublished bool) *Service {
	return &Service{store: store, repo: repo, cache: cache, reviewPublished: reviewPublished}
}

// Create stores a new draft of user's. The slug is unique across every blog
// ever created (deleted ones included); the unique index decides, so two
// concurrent creates with one slug give one blog and one 400.
func (s *Service) Create(ctx context.Context, user authwire.User, in CreateBlog) (dto.PrivateBlog, error) {
	slug, err := formatSlug(in.Slug)
	if err != nil {
		return dto.PrivateBlog{}, err
	}
	b := model.NewBlog(dto.UserID(user), dto.ProfileOf(user), model.Draft{
		Title: in.Title, Description: in.Description, DraftText: in.DraftText, Slug: slug, ImgURL: in.ImgURL, Tags: in.Tags,
	})
	if err := s.repo.Create(ctx, b); err != nil {
		if errors.Is(err, model.ErrSlugTaken) {
			return dto.PrivateBlog{}, slugTaken(slug)
		}
		return dto.PrivateBlog{}, err
	}
	return dto.NewPrivateBlog(b, dto.AuthorFromUser(user)), nil
}

// Update changes the fields present in `in` (see model.Blog.Edit).
func (s *Service) Update(ctx context.Context, user authwire.User, in UpdateBlog) (dto.PrivateBlog, error) {
	id, _ := bson.ObjectIDFromHex(in.ID) // validated
	changes := model.Changes{Title: in.Title, Description: in.Description, DraftText: in.DraftText, ImgURL: in.ImgURL, Tags: in.Tags}
	if in.Slug != nil {
		slug, err := formatSlug(*in.Slug)
		if err != nil {
			return dto.PrivateBlog{}, err
		}
		changes.Slug = &slug
	}
	author := dto.UserID(user)
	b, err := s.repo.Update(ctx, id, func(b *model.Blog) error { return b.Edit(author, changes, s.reviewPublished) })
	switch {
	case errors.Is(err, model.ErrNotFound):
		return dto.PrivateBlog{}, apperr.Missing(fmt.Sprintf("Blog with id: %s does not exist", id.Hex()))
	case errors.Is(err, model.ErrSlugTaken):
		return dto.PrivateBlog{}, slugTaken(*changes.Slug)
	case err != nil:
		return dto.PrivateBlog{}, err
	}
	return dto.NewPrivateBlog(b, dto.AuthorFromUser(user)), nil
}

// Get returns user's blog; anything else is "<id> not found".
func (s *Service) Get(ctx context.Context, user authwire.User, id bson.ObjectID, given string) (dto.PrivateBlog, error) {
	b, err := s.store.FindByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) || err == nil && !b.OwnedBy(dto.UserID(user)) {
		return dto.PrivateBlog{}, apperr.Missing(given + " not found")
	}
	if err != nil {
		return dto.PrivateBlog{}, err
	}
	return dto.NewPrivateBlog(b, dto.AuthorFromUser(user)), nil
}

// Delete, Submit and Withdraw are the author's state changes of one blog
// (see model.Blog).
func (s *Service) Delete(ctx context.Context, user authwire.User, id bson.ObjectID) error {
	return s.change(ctx, id, func(b *model.Blog) error { return b.Delete(dto.UserID(user)) })
}

func (s *Service) Submit(ctx context.Context, user authwire.User, id bson.ObjectID) error {
	return s.change(ctx, id, func(b *model.Blog) error { return b.Submit(dto.UserID(user)) })
}

func (s *Service) Withdraw(ctx context.Context, user authwire.User, id bson.ObjectID) error {
	return s.change(ctx, id, func(b *model.Blog) error { return b.Withdraw(dto.UserID(user)) })
}

func (s *Service) change(ctx context.Context, id bson.ObjectID, fn func(*model.Blog) error) error {
	_, err := s.repo.Update(ctx, id, fn)
	if errors.Is(err, model.ErrNotFound) {
		return apperr.Missing(msgBlogNotFound)
	}
	return err
}

// List returns the [InfoBlog] JSON of one page of user's blogs in list,
// newest first.
func (s *Service) List(ctx context.Context, user authwire.User, list model.AuthorList, p model.Page) ([]byte, error) {
	author := dto.UserID(user)
	return s.cache.Fetch(ctx, s.cache.AuthorList(author.Hex(), list, p), func(ctx context.Context) (any, error) {
		blogs, err := s.store.ListByAuthor(ctx, author, list, p)
		if err != nil {
			return nil, err
		}
		return dto.NewItemBlogs(blogs), nil
	})
}
