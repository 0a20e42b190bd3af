// Package author serves the AUTHOR routes: create, update, read, delete,
// submit and withdraw one's own blogs, and list them. Another author's blog
// is answered exactly like a missing one.
package author

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/api/change"
	"blogplatform/blog_service/blogcache"
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

func slugTooShortErr() error {
	return apperr.BadRequest(fmt.Sprintf("slug must be at least %d size", MinSlugLen))
}

type Service struct {
	store   *model.Store
	cache   *blogcache.Cache
	applier *change.Applier
	// reviewPublished refuses changes to the public fields of a published
	// blog (BLOG_PUBLISHED_EDITS=review).
	reviewPublished bool
}

func NewService(store *model.Store, cache *blogcache.Cache, applier *change.Applier, reviewPublished bool) *Service {
	return &Service{store: store, cache: cache, applier: applier, reviewPublished: reviewPublished}
}

// userID is the authenticated user's id (checked to be hex by authclient).
func userID(u authwire.User) bson.ObjectID {
	id, _ := bson.ObjectIDFromHex(u.ID)
	return id
}

// Create stores a new draft of user's. The slug is unique across every blog
// ever created (deleted ones included); the unique index decides, so two
// concurrent creates with one slug give one blog and one 400.
func (s *Service) Create(ctx context.Context, user authwire.User, in CreateBlog) (dto.PrivateBlog, error) {
	slug := FormatSlug(in.Slug)
	if slugTooShort(slug) {
		return dto.PrivateBlog{}, slugTooShortErr()
	}
	author := userID(user)
	now := model.Now()
	img := in.ImgURL
	b := &model.Blog{
		ID: bson.NewObjectID(), Title: in.Title, Description: in.Description, DraftText: in.DraftText,
		Tags: in.Tags, Author: author, AuthorProfile: profileOf(user), ImgURL: &img, Slug: slug,
		Score: model.DefaultScore, Drafted: true, Status: true,
		CreatedBy: author, UpdatedBy: author, CreatedAt: now, UpdatedAt: now,
	}
	b.SetTerms()
	if err := s.store.Insert(ctx, b); err != nil {
		if errors.Is(err, model.ErrSlugTaken) {
			return dto.PrivateBlog{}, slugTaken(slug)
		}
		return dto.PrivateBlog{}, err
	}
	s.applier.Created(ctx, b)
	return dto.NewPrivateBlog(b, dto.AuthorFromUser(user)), nil
}

func profileOf(u authwire.User) *model.AuthorProfile {
	return &model.AuthorProfile{Name: u.Name, ProfilePicURL: u.ProfilePicURL}
}

// owned returns user's active blog with id, or notFound.
func (s *Service) owned(ctx context.Context, user authwire.User, id bson.ObjectID, notFound error) (*model.Blog, error) {
	b, err := s.store.FindByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if !b.Status || b.Author != userID(user) {
		return nil, notFound
	}
	return b, nil
}

// ownedFilter is what owned checked, for the conditional update.
func ownedFilter(user authwire.User) bson.D {
	return bson.D{{Key: "author", Value: userID(user)}, {Key: "status", Value: true}}
}

// Update changes the fields present in `in`. Flags and the published text
// stay as they are (a published blog's public text changes only at the next
// publish), except that editing a submitted blog withdraws it: an editor
// never publishes a text they were not asked to review, so it must be
// submitted again. With reviewPublished, the fields a published blog shows
// (title, description, slug, imgUrl, tags) cannot change while it is
// published.
func (s *Service) Update(ctx context.Context, user authwire.User, in UpdateBlog) (dto.PrivateBlog, error) {
	id, _ := bson.ObjectIDFromHex(in.ID) // validated
	notFound := apperr.Missing(fmt.Sprintf("Blog with id: %s does not exist", id.Hex()))
	var slug string
	if in.Slug != nil {
		slug = FormatSlug(*in.Slug)
		if slugTooShort(slug) {
			return dto.PrivateBlog{}, slugTooShortErr()
		}
	}
	var out dto.PrivateBlog
	err := s.applier.Exclusive(ctx, id, func() error {
		for attempt := 0; attempt < change.MaxAttempts; attempt++ {
			before, err := s.owned(ctx, user, id, notFound)
			if err != nil {
				return err
			}
			if s.reviewPublished && before.Published {
				if fields := publicChanges(before, in, slug); len(fields) > 0 {
					return &change.Conflict{Message: fmt.Sprintf(
						"blog for _id %s is published: its %s can change only through an editor's review (unpublish, edit, submit, publish)",
						id.Hex(), strings.Join(fields, ", "))}
				}
			}
			after, matched, err := s.update(ctx, user, before, in, slug)
			switch {
			case errors.Is(err, model.ErrSlugTaken):
				return slugTaken(slug)
			case err != nil:
				return err
			case matched:
				out = dto.NewPrivateBlog(after, dto.AuthorFromUser(user))
				return nil
			}
			// Changed (or gone) since it was read: read it again.
		}
		return busy(id)
	})
	return out, err
}

// busy answers a write that lost every attempt to concurrent writes.
func busy(id bson.ObjectID) error {
	return &change.Conflict{Message: fmt.Sprintf("blog for _id %s kept changing during the update; try again", id.Hex())}
}

// publicChanges names the fields of a published blog that `in` would
// change and that public readers see at once.
func publicChanges(b *model.Blog, in UpdateBlog, slug string) []string {
	var fields []string
	add := func(changed bool, name string) {
		if changed {
			fields = append(fields, name)
		}
	}
	add(in.Title != nil && *in.Title != b.Title, "title")
	add(in.Description != nil && *in.Description != b.Description, "description")
	add(in.Slug != nil && slug != b.Slug, "slug")
	add(in.ImgURL != nil && (b.ImgURL == nil || *in.ImgURL != *b.ImgURL), "imgUrl")
	add(in.Tags != nil && !slices.Equal(*in.Tags, b.Tags), "tags")
	return fields
}

// update is one conditional attempt of Update on the state before.
func (s *Service) update(ctx context.Context, user authwire.User, before *model.Blog, in UpdateBlog, slug string) (*model.Blog, bool, error) {
	now := model.NextUpdatedAt(before.UpdatedAt)
	updater := userID(user)
	retermed := in.Title != nil || in.Description != nil
	withdraw := before.Submitted
	mutate := func(b *model.Blog) {
		if in.Title != nil {
			b.Title = *in.Title
		}
		if in.Description != nil {
			b.Description = *in.Description
		}
		if in.DraftText != nil {
			b.DraftText = *in.DraftText
		}
		if in.Slug != nil {
			b.Slug = slug
		}
		if in.ImgURL != nil {
			img := *in.ImgURL
			b.ImgURL = &img
		}
		if in.Tags != nil {
			b.Tags = *in.Tags
		}
		if retermed {
			b.SetTerms()
		}
		if withdraw {
			b.Submitted = false
		}
		b.UpdatedBy, b.UpdatedAt = updater, now
	}
	// The $set mirrors mutate, field by field.
	changed := *before
	mutate(&changed)
	set := bson.D{}
	add := func(present bool, key string, value any) {
		if present {
			set = append(set, bson.E{Key: key, Value: value})
		}
	}
	add(in.Title != nil, "title", changed.Title)
	add(in.Description != nil, "description", changed.Description)
	add(in.DraftText != nil, "draftText", changed.DraftText)
	add(in.Slug != nil && slug != before.Slug, "slug", slug)
	add(in.ImgURL != nil, "imgUrl", changed.ImgURL)
	add(in.Tags != nil, "tags", changed.Tags)
	add(retermed, "terms", changed.Terms)
	add(retermed, "titleTerms", changed.TitleTerms)
	add(retermed, "descriptionTerms", changed.DescriptionTerms)
	add(withdraw, "submitted", false)
	set = append(set, bson.E{Key: "updatedBy", Value: updater}, bson.E{Key: "updatedAt", Value: now})
	return s.applier.Apply(ctx, before, ownedFilter(user), set, mutate)
}

// Get returns user's blog; anything else is "<id> not found".
func (s *Service) Get(ctx context.Context, user authwire.User, id bson.ObjectID, given string) (dto.PrivateBlog, error) {
	b, err := s.owned(ctx, user, id, apperr.Missing(given+" not found"))
	if err != nil {
		return dto.PrivateBlog{}, err
	}
	return dto.NewPrivateBlog(b, dto.AuthorFromUser(user)), nil
}

// Delete is a soft delete (status false) in every publication state; the
// slug stays reserved.
func (s *Service) Delete(ctx context.Context, user authwire.User, id bson.ObjectID) error {
	return s.setFlag(ctx, user, id, "status", false, func(b *model.Blog) { b.Status = false })
}

// Submit and Withdraw set `submitted` with no precondition on the other
// flags, like the reference.
func (s *Service) Submit(ctx context.Context, user authwire.User, id bson.ObjectID) error {
	return s.setFlag(ctx, user, id, "submitted", true, func(b *model.Blog) { b.Submitted = true })
}

func (s *Service) Withdraw(ctx context.Context, user authwire.User, id bson.ObjectID) error {
	return s.setFlag(ctx, user, id, "submitted", false, func(b *model.Blog) { b.Submitted = false })
}

func (s *Service) setFlag(ctx context.Context, user authwire.User, id bson.ObjectID, flag string, value bool, apply func(*model.Blog)) error {
	notFound := apperr.Missing(msgBlogNotFound)
	return s.applier.Exclusive(ctx, id, func() error {
		for attempt := 0; attempt < change.MaxAttempts; attempt++ {
			before, err := s.owned(ctx, user, id, notFound)
			if err != nil {
				return err
			}
			updater, now := userID(user), model.NextUpdatedAt(before.UpdatedAt)
			set := bson.D{{Key: flag, Value: value}, {Key: "updatedBy", Value: updater}, {Key: "updatedAt", Value: now}}
			_, matched, err := s.applier.Apply(ctx, before, ownedFilter(user), set, func(b *model.Blog) {
				apply(b)
				b.UpdatedBy, b.UpdatedAt = updater, now
			})
			if err != nil || matched {
				return err
			}
		}
		return busy(id)
	})
}

// List returns the [InfoBlog] JSON of one page of user's blogs in list,
// newest first.
func (s *Service) List(ctx context.Context, user authwire.User, list model.AuthorList, p model.Page) ([]byte, error) {
	author := userID(user)
	return s.cache.Fetch(ctx, s.cache.AuthorList(author.Hex(), list, p), func(ctx context.Context) (any, error) {
		blogs, err := s.store.ListByAuthor(ctx, author, list, p)
		if err != nil {
			return nil, err
		}
		return dto.NewItemBlogs(blogs), nil
	})
}
