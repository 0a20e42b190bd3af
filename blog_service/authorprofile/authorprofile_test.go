package authorprofile

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/natsx"
)

type scripted struct {
	user authwire.User
	err  error
}

func (s scripted) Profile(context.Context, string) (authwire.User, error) { return s.user, s.err }

// What auth_service answers decides what a blog without a profile shows.
func TestFillClassifiesAnswers(t *testing.T) {
	pic := "https://x.io/p.png"
	for _, tc := range []struct {
		name     string
		answer   scripted
		resolved bool
		want     *model.AuthorProfile
	}{
		{"known user", scripted{user: authwire.User{Name: "Ada", ProfilePicURL: &pic}}, true, &model.AuthorProfile{Name: "Ada", ProfilePicURL: &pic}},
		{"user not found", scripted{err: apperr.Missing("user does not exist")}, true, &model.AuthorProfile{}},
		{"refused id", scripted{err: apperr.BadRequest("id must be a valid id")}, true, &model.AuthorProfile{}},
		{"auth unreachable", scripted{err: apperr.Wrap(apperr.Unavailable, "authentication service unavailable", natsx.ErrUnavailable)}, false, nil},
		{"auth answered 500", scripted{err: apperr.InternalErr(errors.New("boom"))}, false, nil},
		{"not an application error", scripted{err: fmt.Errorf("%w: timeout", natsx.ErrUnavailable)}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &model.Blog{ID: bson.NewObjectID(), Author: bson.NewObjectID()}
			if got := New(tc.answer, nil, 0, nil).Fill(context.Background(), b); got != tc.resolved {
				t.Errorf("Fill = %v, want %v", got, tc.resolved)
			}
			switch {
			case tc.want == nil && b.AuthorProfile != nil:
				t.Errorf("profile %+v, want none", b.AuthorProfile)
			case tc.want != nil && (b.AuthorProfile == nil || b.AuthorProfile.Name != tc.want.Name ||
				(b.AuthorProfile.ProfilePicURL == nil) != (tc.want.ProfilePicURL == nil)):
				t.Errorf("profile %+v, want %+v", b.AuthorProfile, tc.want)
			}
		})
	}
	// A blog that has a profile is left alone without asking.
	stored := &model.AuthorProfile{Name: "Stored"}
	b := &model.Blog{AuthorProfile: stored}
	if !New(scripted{err: errors.New("must not be asked")}, nil, 0, nil).Fill(context.Background(), b) || b.AuthorProfile != stored {
		t.Errorf("a stored profile was replaced: %+v", b.AuthorProfile)
	}
}
