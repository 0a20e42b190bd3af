package dto

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
)

// TestViewsCarryOnlyWebURLs: whatever is stored (data from before
// validation was strict, a profile from auth_service), a view never carries
// a picture URL that is not http(s).
func TestViewsCarryOnlyWebURLs(t *testing.T) {
	for _, tc := range []struct{ stored, shown string }{
		{"https://x.io/a.png", "https://x.io/a.png"},
		{"HTTP://X.IO/A.PNG", "HTTP://X.IO/A.PNG"},
		{"javascript:alert(1)", ""},
		{" javascript:alert(1)", ""},
		{"data:image/png;base64,AAAA", ""},
		{"/relative.png", ""},
		{"//x.io/a.png", ""},
		{"http:", ""},
	} {
		stored := tc.stored
		b := &model.Blog{ID: bson.NewObjectID(), ImgURL: &stored,
			AuthorProfile: &model.AuthorProfile{Name: "A", ProfilePicURL: &stored}}
		if got := NewPublicBlog(b); got.ImgURL != tc.shown || got.Author.ProfilePicURL != tc.shown {
			t.Errorf("%q shown as imgUrl %q, profilePicUrl %q; want %q", tc.stored, got.ImgURL, got.Author.ProfilePicURL, tc.shown)
		}
		if got := NewItemBlog(b).ImgURL; got != tc.shown {
			t.Errorf("%q shown in a list as %q", tc.stored, got)
		}
	}
}

func TestValidTagChars(t *testing.T) {
	for tag, want := range map[string]bool{
		"SCIENCE": true, "C++": true, "C#": true, "NODE.JS": true, "MACHINE LEARNING": true, "D-1": true, "ÉTÉ": true,
		"E\u0301TE\u0301": true, "日本": true, "123": true, "A_B": true,
		"A:B": false, "A/B": false, "A%B": false, "A\u200bB": false, "A\x00B": false, "A\nB": false, "😀": false, "A?B": false,
	} {
		if got := ValidTagChars(tag); got != want {
			t.Errorf("ValidTagChars(%q) = %v, want %v", tag, got, want)
		}
	}
}
