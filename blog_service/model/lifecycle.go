package model

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/chassis/apperr"
)

// The state machine of a blog, flags drafted (D), submitted (S), published
// (P) and status (active):
//
//	event      precondition               result
//	create     unique slug                D=1 S=0 P=0 active
//	edit       author's, active           fields; S=0 (an edit withdraws it)
//	submit     author's, active           S=1 (a published blog too, as in the reference)
//	withdraw   author's, active           S=0
//	delete     author's, active           inactive (the slug stays reserved)
//	publish    active, P=0, S=1           D=0 S=0 P=1, text = draftText
//	unpublish  active, P=1                D=1 S=0 P=0, text and publishedAt kept
//
// Each method below checks its precondition on the blog it is called on
// and either changes it or returns why not; it never touches the store.
// A blog that is deleted, or (for the author's changes) another author's,
// is ErrNotFound: callers answer it in their own words.

// Draft is the content of a new blog; Slug is already formatted.
type Draft struct {
	Title, Description, DraftText, Slug, ImgURL string
	Tags                                        []string
}

// NewBlog is a new draft of author's, with the author's public profile.
func NewBlog(author bson.ObjectID, profile *AuthorProfile, d Draft) *Blog {
	now := Now()
	img := d.ImgURL
	b := &Blog{
		ID: bson.NewObjectID(), Title: d.Title, Description: d.Description, DraftText: d.DraftText,
		Tags: d.Tags, Author: author, AuthorProfile: profile, ImgURL: &img, Slug: d.Slug,
		Score: DefaultScore, Drafted: true, Status: true,
		CreatedBy: author, UpdatedBy: author, CreatedAt: now, UpdatedAt: now,
		Version: 1,
	}
	b.SetTerms()
	return b
}

// Changes are the fields an author's edit sets; nil leaves a field as it
// is. Slug is already formatted.
type Changes struct {
	Title, Description, DraftText, Slug, ImgURL *string
	Tags                                        *[]string
}

// Edit applies the author's changes. Flags and the published text stay as
// they are (a published blog's public text changes only at the next
// publish), except that editing a submitted blog withdraws it: an editor
// never publishes a text they were not asked to review, so it must be
// submitted again. With reviewPublished (BLOG_PUBLISHED_EDITS=review), the
// fields a published blog shows (title, description, slug, imgUrl, tags)
// cannot change while it is published: a Conflict naming them.
func (b *Blog) Edit(author bson.ObjectID, c Changes, reviewPublished bool) error {
	if !b.OwnedBy(author) {
		return ErrNotFound
	}
	if reviewPublished && b.Published {
		if fields := b.publicChanges(c); len(fields) > 0 {
			return apperr.New(apperr.Conflict, fmt.Sprintf(
				"blog for _id %s is published: its %s can change only through an editor's review (unpublish, edit, submit, publish)",
				b.ID.Hex(), strings.Join(fields, ", ")))
		}
	}
	set := func(field *string, v *string) {
		if v != nil {
			*field = *v
		}
	}
	set(&b.Title, c.Title)
	set(&b.Description, c.Description)
	set(&b.DraftText, c.DraftText)
	set(&b.Slug, c.Slug)
	if c.ImgURL != nil {
		img := *c.ImgURL
		b.ImgURL = &img
	}
	if c.Tags != nil {
		b.Tags = slices.Clone(*c.Tags)
	}
	if c.Title != nil || c.Description != nil {
		b.SetTerms()
	}
	b.Submitted = false
	b.touch(author)
	return nil
}

// publicChanges names the fields that c would change and that public
// readers of a published blog see at once.
func (b *Blog) publicChanges(c Changes) []string {
	var fields []string
	add := func(changed bool, name string) {
		if changed {
			fields = append(fields, name)
		}
	}
	add(c.Title != nil && *c.Title != b.Title, "title")
	add(c.Description != nil && *c.Description != b.Description, "description")
	add(c.Slug != nil && *c.Slug != b.Slug, "slug")
	add(c.ImgURL != nil && (b.ImgURL == nil || *c.ImgURL != *b.ImgURL), "imgUrl")
	add(c.Tags != nil && !slices.Equal(*c.Tags, b.Tags), "tags")
	return fields
}

// Submit asks the editors to publish the blog. Like the reference it has no
// precondition on the other flags.
func (b *Blog) Submit(author bson.ObjectID) error { return b.setSubmitted(author, true) }

// Withdraw takes the blog back from the editors.
func (b *Blog) Withdraw(author bson.ObjectID) error { return b.setSubmitted(author, false) }

func (b *Blog) setSubmitted(author bson.ObjectID, submitted bool) error {
	if !b.OwnedBy(author) {
		return ErrNotFound
	}
	b.Submitted = submitted
	b.touch(author)
	return nil
}

// Delete is a soft delete (status false) in every publication state; the
// slug stays reserved.
func (b *Blog) Delete(author bson.ObjectID) error {
	if !b.OwnedBy(author) {
		return ErrNotFound
	}
	b.Status = false
	b.touch(author)
	return nil
}

// Publish makes a submitted blog public: the draft becomes the published
// text, and publishedAt is kept from an earlier publish or set now.
//
// reviewed, when not nil, is the updatedAt of the state the editor
// reviewed: a blog updated since (by its author, or published by another
// editor) is a Conflict. Every change moves updatedAt (see touch), so
// updatedAt identifies a state.
func (b *Blog) Publish(editor bson.ObjectID, reviewed *time.Time) error {
	if !b.Status {
		return ErrNotFound
	}
	if reviewed != nil && !b.UpdatedAt.Equal(*reviewed) {
		return apperr.New(apperr.Conflict, fmt.Sprintf(
			"blog for _id %s changed since the reviewed state (updatedAt %s, now %s): review it again",
			b.ID.Hex(), reviewed.UTC().Format(time.RFC3339Nano), b.UpdatedAt.UTC().Format(time.RFC3339Nano)))
	}
	if b.Published {
		return apperr.BadRequest(fmt.Sprintf("blog for _id %s is already published", b.ID.Hex()))
	}
	if !b.Submitted {
		return apperr.BadRequest(fmt.Sprintf("blog for _id %s is not submitted", b.ID.Hex()))
	}
	b.touch(editor)
	text := b.DraftText
	b.Text = &text
	if b.PublishedAt == nil {
		at := b.UpdatedAt
		b.PublishedAt = &at
	}
	b.Drafted, b.Submitted, b.Published = false, false, true
	return nil
}

// Unpublish takes a published blog back to draft; the published text and
// publishedAt are kept.
func (b *Blog) Unpublish(editor bson.ObjectID) error {
	if !b.Status {
		return ErrNotFound
	}
	if !b.Published {
		return apperr.BadRequest(fmt.Sprintf("blog for _id %s is not published", b.ID.Hex()))
	}
	b.Drafted, b.Submitted, b.Published = true, false, false
	b.touch(editor)
	return nil
}

// SetProfile replaces the stored public profile of the author (nil keeps
// it).
func (b *Blog) SetProfile(p *AuthorProfile) {
	if p != nil {
		b.AuthorProfile = p
	}
}

// OwnedBy: the author's changes apply to their own active blogs; another
// author's blog is answered exactly like a missing one.
func (b *Blog) OwnedBy(author bson.ObjectID) bool { return b.Status && b.Author == author }

// touch records who changed the blog and moves updatedAt forward.
func (b *Blog) touch(by bson.ObjectID) {
	b.UpdatedBy, b.UpdatedAt = by, NextUpdatedAt(b.UpdatedAt)
}

// Clone is a deep copy: changing it never changes b.
func (b *Blog) Clone() *Blog {
	c := *b
	clonePtr := func(p *string) *string {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	c.Text, c.ImgURL = clonePtr(b.Text), clonePtr(b.ImgURL)
	if b.AuthorProfile != nil {
		p := *b.AuthorProfile
		p.ProfilePicURL = clonePtr(p.ProfilePicURL)
		c.AuthorProfile = &p
	}
	if b.PublishedAt != nil {
		t := *b.PublishedAt
		c.PublishedAt = &t
	}
	c.Tags, c.Terms = slices.Clone(b.Tags), slices.Clone(b.Terms)
	c.TitleTerms, c.DescriptionTerms = slices.Clone(b.TitleTerms), slices.Clone(b.DescriptionTerms)
	return &c
}
