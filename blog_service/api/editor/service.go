// Package editor serves the EDITOR routes: read any active blog, publish and
// unpublish, and list submitted and published blogs of every author.
package editor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/authorprofile"
	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/blogrepo"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
)

type Service struct {
	store *model.Store
	repo  *blogrepo.Repository
	cache *blogcache.Cache
	auth  *authclient.Client
	// profiles fills in the author of blogs stored without one.
	profiles *authorprofile.Resolver
}

func NewService(store *model.Store, repo *blogrepo.Repository, cache *blogcache.Cache, auth *authclient.Client, profiles *authorprofile.Resolver) *Service {
	return &Service{store: store, repo: repo, cache: cache, auth: auth, profiles: profiles}
}

// Get returns any active blog; the author is the profile stored with it,
// or for a blog stored without one (written by the reference) the profile
// auth_service has now (an empty name while auth cannot answer).
func (s *Service) Get(ctx context.Context, id bson.ObjectID, given string) (dto.PrivateBlog, error) {
	b, err := s.store.FindByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) || err == nil && !b.Status {
		return dto.PrivateBlog{}, apperr.Missing(given + " not found")
	}
	if err != nil {
		return dto.PrivateBlog{}, err
	}
	s.profiles.Fill(ctx, b)
	return dto.NewPrivateBlog(b, dto.AuthorOf(b)), nil
}

// Publish publishes the blog (see model.Blog.Publish) and refreshes the
// author's public profile from auth_service; when auth_service cannot
// answer, the stored profile stays: publishing does not depend on it.
func (s *Service) Publish(ctx context.Context, editor authwire.User, id bson.ObjectID, reviewed *time.Time) error {
	editorID := dto.UserID(editor)
	var profile *model.AuthorProfile
	asked := false
	return s.change(ctx, id, func(b *model.Blog) error {
		if err := b.Publish(editorID, reviewed); err != nil {
			return err
		}
		if !asked { // once, even when the write is retried
			profile, asked = s.freshProfile(ctx, b.Author), true
		}
		b.SetProfile(profile)
		return nil
	})
}

// freshProfile asks auth_service for the author's current public profile;
// nil when it cannot answer.
func (s *Service) freshProfile(ctx context.Context, author bson.ObjectID) *model.AuthorProfile {
	u, err := s.auth.Profile(ctx, author.Hex())
	if err != nil {
		return nil
	}
	return dto.ProfileOf(u)
}

// Unpublish takes the blog back to draft (see model.Blog.Unpublish).
func (s *Service) Unpublish(ctx context.Context, editor authwire.User, id bson.ObjectID) error {
	editorID := dto.UserID(editor)
	return s.change(ctx, id, func(b *model.Blog) error { return b.Unpublish(editorID) })
}

func (s *Service) change(ctx context.Context, id bson.ObjectID, fn func(*model.Blog) error) error {
	_, err := s.repo.Update(ctx, id, fn)
	if errors.Is(err, model.ErrNotFound) {
		return apperr.Missing(fmt.Sprintf("blog for _id %s not found", id.Hex()))
	}
	return err
}

// List returns the [InfoBlog] JSON of one page of every author's active
// blogs in list (submitted or published), newest first.
func (s *Service) List(ctx context.Context, list model.AuthorList, p model.Page) ([]byte, error) {
	return s.cache.Fetch(ctx, s.cache.EditorList(list, p), func(ctx context.Context) (any, error) {
		blogs, err := s.store.ListForEditors(ctx, list, p)
		if err != nil {
			return nil, err
		}
		return dto.NewItemBlogs(blogs), nil
	})
}
