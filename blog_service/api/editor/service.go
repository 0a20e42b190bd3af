// Package editor serves the EDITOR routes: read any active blog, publish and
// unpublish, and list submitted and published blogs of every author.
package editor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/api/change"
	"blogplatform/blog_service/authclient"
	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/dto"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
)

type Service struct {
	store   *model.Store
	cache   *blogcache.Cache
	applier *change.Applier
	auth    *authclient.Client
}

func NewService(store *model.Store, cache *blogcache.Cache, applier *change.Applier, auth *authclient.Client) *Service {
	return &Service{store: store, cache: cache, applier: applier, auth: auth}
}

// Get returns any active blog; the author is the profile stored with it.
func (s *Service) Get(ctx context.Context, id bson.ObjectID, given string) (dto.PrivateBlog, error) {
	b, err := s.store.FindByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) || err == nil && !b.Status {
		return dto.PrivateBlog{}, apperr.Missing(given + " not found")
	}
	if err != nil {
		return dto.PrivateBlog{}, err
	}
	return dto.NewPrivateBlog(b, dto.AuthorOf(b)), nil
}

// transition is one editor state change: check says why before cannot
// take it (nil when it can), expect is the same condition for the
// conditional update, and change gives the $set and its in-memory mirror.
type transition struct {
	check  func(b *model.Blog, hex string) error
	expect bson.D
	change func(ctx context.Context, b *model.Blog) (bson.D, func(*model.Blog))
}

func (s *Service) run(ctx context.Context, id bson.ObjectID, t transition) error {
	return s.applier.Exclusive(ctx, id, func() error { return s.attempt(ctx, id, t) })
}

func (s *Service) attempt(ctx context.Context, id bson.ObjectID, t transition) error {
	hex := id.Hex()
	for attempt := 0; attempt < change.MaxAttempts; attempt++ {
		before, err := s.store.FindByID(ctx, id)
		if errors.Is(err, model.ErrNotFound) || err == nil && !before.Status {
			return apperr.Missing(fmt.Sprintf("blog for _id %s not found", hex))
		}
		if err != nil {
			return err
		}
		if err := t.check(before, hex); err != nil {
			return err
		}
		set, mutate := t.change(ctx, before)
		_, matched, err := s.applier.Apply(ctx, before, t.expect, set, mutate)
		if err != nil || matched {
			return err
		}
		// Someone changed the blog between the read and the update: look
		// again, so the answer describes its current state.
	}
	return apperr.InternalErr(fmt.Errorf("blog %s kept changing during %d attempts", hex, change.MaxAttempts))
}

// Publish makes a submitted blog public: the draft becomes the published
// text, publishedAt is kept from an earlier publish or set now, and the
// author's public profile is refreshed from auth_service (when that fails
// the stored profile stays: publishing does not depend on it).
//
// reviewed, when not nil, is the updatedAt of the state the editor
// reviewed: a blog updated since (by its author, or published by another
// editor) is a Conflict and nothing changes. The check and the publish are
// one conditional update (see change.Applier), so no write can slip in
// between them.
func (s *Service) Publish(ctx context.Context, editor authwire.User, id bson.ObjectID, reviewed *time.Time) error {
	editorID, _ := bson.ObjectIDFromHex(editor.ID)
	return s.run(ctx, id, transition{
		check: func(b *model.Blog, hex string) error {
			if reviewed != nil && !b.UpdatedAt.Equal(*reviewed) {
				return &change.Conflict{Message: fmt.Sprintf(
					"blog for _id %s changed since the reviewed state (updatedAt %s, now %s): review it again",
					hex, reviewed.UTC().Format(time.RFC3339Nano), b.UpdatedAt.UTC().Format(time.RFC3339Nano))}
			}
			if b.Published {
				return apperr.BadRequest(fmt.Sprintf("blog for _id %s is already published", hex))
			}
			if !b.Submitted {
				return apperr.BadRequest(fmt.Sprintf("blog for _id %s is not submitted", hex))
			}
			return nil
		},
		expect: bson.D{{Key: "status", Value: true}, {Key: "published", Value: false}, {Key: "submitted", Value: true}},
		change: func(ctx context.Context, b *model.Blog) (bson.D, func(*model.Blog)) {
			now := model.NextUpdatedAt(b.UpdatedAt)
			publishedAt := now
			if b.PublishedAt != nil {
				publishedAt = *b.PublishedAt
			}
			text := b.DraftText
			set := bson.D{
				{Key: "drafted", Value: false}, {Key: "submitted", Value: false}, {Key: "published", Value: true},
				{Key: "text", Value: text}, {Key: "publishedAt", Value: publishedAt},
				{Key: "updatedBy", Value: editorID}, {Key: "updatedAt", Value: now},
			}
			profile := s.freshProfile(ctx, b)
			if profile != nil {
				set = append(set, bson.E{Key: "authorProfile", Value: profile})
			}
			return set, func(m *model.Blog) {
				m.Drafted, m.Submitted, m.Published = false, false, true
				m.Text, m.PublishedAt = &text, &publishedAt
				m.UpdatedBy, m.UpdatedAt = editorID, now
				if profile != nil {
					m.AuthorProfile = profile
				}
			}
		},
	})
}

// freshProfile asks auth_service for the author's current public profile;
// nil when it cannot answer.
func (s *Service) freshProfile(ctx context.Context, b *model.Blog) *model.AuthorProfile {
	u, err := s.auth.Profile(ctx, b.Author.Hex())
	if err != nil {
		return nil
	}
	return &model.AuthorProfile{Name: u.Name, ProfilePicURL: u.ProfilePicURL}
}

// Unpublish takes a blog back to draft; the published text and publishedAt
// are kept.
func (s *Service) Unpublish(ctx context.Context, editor authwire.User, id bson.ObjectID) error {
	editorID, _ := bson.ObjectIDFromHex(editor.ID)
	return s.run(ctx, id, transition{
		check: func(b *model.Blog, hex string) error {
			if !b.Published {
				return apperr.BadRequest(fmt.Sprintf("blog for _id %s is not published", hex))
			}
			return nil
		},
		expect: bson.D{{Key: "status", Value: true}, {Key: "published", Value: true}},
		change: func(_ context.Context, b *model.Blog) (bson.D, func(*model.Blog)) {
			now := model.NextUpdatedAt(b.UpdatedAt)
			set := bson.D{
				{Key: "drafted", Value: true}, {Key: "submitted", Value: false}, {Key: "published", Value: false},
				{Key: "updatedBy", Value: editorID}, {Key: "updatedAt", Value: now},
			}
			return set, func(m *model.Blog) {
				m.Drafted, m.Submitted, m.Published = true, false, false
				m.UpdatedBy, m.UpdatedAt = editorID, now
			}
		},
	})
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
