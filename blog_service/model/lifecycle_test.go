package model

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/chassis/apperr"
)

func flags(b *Blog) [4]bool { return [4]bool{b.Drafted, b.Submitted, b.Published, b.Status} }

// TestTransitions: each state change from each state either gives the
// state-machine's result (and moves updatedAt, recording who) or refuses
// with its error and leaves the blog as it was.
func TestTransitions(t *testing.T) {
	author, other, editor := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	draft := func() *Blog {
		return NewBlog(author, nil, Draft{Title: "Title", Description: "Description", DraftText: "draft", Slug: "slug", Tags: []string{"A"}})
	}
	submitted := func() *Blog { b := draft(); b.Submitted = true; return b }
	published := func() *Blog { b := submitted(); must(t, b.Publish(editor, nil)); return b }
	deleted := func() *Blog { b := draft(); b.Status = false; return b }
	type state = [4]bool // drafted, submitted, published, status
	for _, tc := range []struct {
		name   string
		blog   func() *Blog
		change func(b *Blog) error
		want   state  // when err is ""
		err    string // the refusal's message, "" when it succeeds
		status int
	}{
		{"submit a draft", draft, func(b *Blog) error { return b.Submit(author) }, state{true, true, false, true}, "", 0},
		{"submit a published blog", published, func(b *Blog) error { return b.Submit(author) }, state{false, true, true, true}, "", 0},
		{"withdraw", submitted, func(b *Blog) error { return b.Withdraw(author) }, state{true, false, false, true}, "", 0},
		{"submit another's", draft, func(b *Blog) error { return b.Submit(other) }, state{}, ErrNotFound.Error(), 0},
		{"withdraw a deleted", deleted, func(b *Blog) error { return b.Withdraw(author) }, state{}, ErrNotFound.Error(), 0},
		{"delete a published", published, func(b *Blog) error { return b.Delete(author) }, state{false, false, true, false}, "", 0},
		{"edit withdraws", submitted, func(b *Blog) error { return b.Edit(author, Changes{}, false) }, state{true, false, false, true}, "", 0},
		{"edit another's", draft, func(b *Blog) error { return b.Edit(other, Changes{}, false) }, state{}, ErrNotFound.Error(), 0},
		{"publish", submitted, func(b *Blog) error { return b.Publish(editor, nil) }, state{false, false, true, true}, "", 0},
		{"publish a draft", draft, func(b *Blog) error { return b.Publish(editor, nil) }, state{}, "blog for _id %s is not submitted", 400},
		{"publish twice", published, func(b *Blog) error { return b.Publish(editor, nil) }, state{}, "blog for _id %s is already published", 400},
		{"publish a deleted", deleted, func(b *Blog) error { return b.Publish(editor, nil) }, state{}, ErrNotFound.Error(), 0},
		{"unpublish", published, func(b *Blog) error { return b.Unpublish(editor) }, state{true, false, false, true}, "", 0},
		{"unpublish a draft", draft, func(b *Blog) error { return b.Unpublish(editor) }, state{}, "blog for _id %s is not published", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.blog()
			b.UpdatedAt = b.UpdatedAt.Add(-time.Hour)
			before := b.Clone()
			err := tc.change(b)
			if tc.err != "" {
				want := tc.err
				if tc.status != 0 {
					want = fmt.Sprintf(want, b.ID.Hex())
					if e := apperr.From(err); e.Status() != tc.status || e.Message != want {
						t.Fatalf("err = %v, want %d %q", err, tc.status, want)
					}
				} else if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				if flags(b) != flags(before) || !b.UpdatedAt.Equal(before.UpdatedAt) {
					t.Errorf("a refused change changed the blog")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if flags(b) != tc.want {
				t.Errorf("flags (drafted, submitted, published, status) = %v, want %v", flags(b), tc.want)
			}
			if !b.UpdatedAt.After(before.UpdatedAt) || b.UpdatedBy != author && b.UpdatedBy != editor {
				t.Errorf("updatedAt %v -> %v, updatedBy %v", before.UpdatedAt, b.UpdatedAt, b.UpdatedBy)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPublishTextAndDate: the draft becomes the text; the first publish
// sets publishedAt and later ones keep it; unpublishing keeps both.
func TestPublishTextAndDate(t *testing.T) {
	author, editor := bson.NewObjectID(), bson.NewObjectID()
	b := NewBlog(author, nil, Draft{DraftText: "first", Slug: "s"})
	must(t, b.Submit(author))
	must(t, b.Publish(editor, nil))
	first := *b.PublishedAt
	if *b.Text != "first" || !first.Equal(b.UpdatedAt) || b.UpdatedBy != editor {
		t.Fatalf("text %q publishedAt %v updatedAt %v", *b.Text, first, b.UpdatedAt)
	}
	must(t, b.Unpublish(editor))
	if *b.Text != "first" || !b.PublishedAt.Equal(first) {
		t.Errorf("unpublish changed text or publishedAt")
	}
	second := "second"
	must(t, b.Edit(author, Changes{DraftText: &second}, false))
	if *b.Text != "first" {
		t.Errorf("an edit changed the public text")
	}
	must(t, b.Submit(author))
	must(t, b.Publish(editor, nil))
	if *b.Text != "second" || !b.PublishedAt.Equal(first) {
		t.Errorf("republished: text %q publishedAt %v, want second and %v", *b.Text, b.PublishedAt, first)
	}
}

// TestPublishReviewedState: a publish naming the reviewed updatedAt works
// only while the blog is still in that state.
func TestPublishReviewedState(t *testing.T) {
	author, editor := bson.NewObjectID(), bson.NewObjectID()
	b := NewBlog(author, nil, Draft{Slug: "s"})
	must(t, b.Submit(author))
	reviewed := b.UpdatedAt
	must(t, b.Withdraw(author))
	must(t, b.Submit(author))
	err := b.Publish(editor, &reviewed)
	want := fmt.Sprintf("blog for _id %s changed since the reviewed state (updatedAt %s, now %s): review it again",
		b.ID.Hex(), reviewed.Format(time.RFC3339Nano), b.UpdatedAt.Format(time.RFC3339Nano))
	if e := apperr.From(err); e.Status() != 409 || e.Message != want {
		t.Fatalf("err = %v, want 409 %q", err, want)
	}
	now := b.UpdatedAt
	must(t, b.Publish(editor, &now))
}

// TestEditOfPublishedUnderReview: with review, the public fields of a
// published blog cannot change (the same value is no change); the draft
// can.
func TestEditOfPublishedUnderReview(t *testing.T) {
	author, editor := bson.NewObjectID(), bson.NewObjectID()
	b := NewBlog(author, nil, Draft{Title: "Title", Slug: "slug", ImgURL: "https://x.io/a.png", Tags: []string{"A"}})
	must(t, b.Submit(author))
	must(t, b.Publish(editor, nil))
	title, slug, same, draft := "Quantum gardens", "other", "Title", "next"
	tags := []string{"B"}
	err := b.Edit(author, Changes{Title: &title, Slug: &slug, Tags: &tags}, true)
	want := "blog for _id " + b.ID.Hex() + " is published: its title, slug, tags can change only through an editor's review (unpublish, edit, submit, publish)"
	if e := apperr.From(err); e.Status() != 409 || e.Message != want {
		t.Fatalf("err = %v, want 409 %q", err, want)
	}
	must(t, b.Edit(author, Changes{Title: &same, DraftText: &draft}, true))
	must(t, b.Edit(author, Changes{Title: &title}, false))
	if b.Title != "Quantum gardens" || b.DraftText != "next" || len(b.Terms) == 0 {
		t.Errorf("edits: title %q draft %q terms %v", b.Title, b.DraftText, b.Terms)
	}
}

// TestCloneIsDeep: changing a clone never changes the original.
func TestCloneIsDeep(t *testing.T) {
	pic := "https://x.io/p.png"
	b := NewBlog(bson.NewObjectID(), &AuthorProfile{Name: "Ada", ProfilePicURL: &pic}, Draft{Title: "quantum garden", Slug: "s", Tags: []string{"A"}})
	c := b.Clone()
	c.Tags[0], c.Terms[0], *c.ImgURL, *c.AuthorProfile.ProfilePicURL = "B", "x", "changed", "changed"
	if b.Tags[0] != "A" || b.Terms[0] == "x" || *b.ImgURL == "changed" || *b.AuthorProfile.ProfilePicURL == "changed" {
		t.Errorf("the clone shares memory with the original: %+v", b)
	}
}
