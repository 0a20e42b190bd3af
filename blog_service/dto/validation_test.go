package dto

import (
	"testing"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/httpx"
)

type sizedBody struct {
	Title  string `json:"title" validate:"required,min=3,max=5"`
	ImgURL string `json:"imgUrl" validate:"required,url"`
	ID     string `json:"_id" validate:"required,len=24,objectid"`
}

func (sizedBody) ValidationStyle() httpx.Style { return SizeStyle() }

// The blog wording is the service's own; these are the messages its clients
// have always received.
func TestBlogValidationWording(t *testing.T) {
	for _, tc := range []struct {
		name string
		dst  any
		want string
	}{
		{"size min", &sizedBody{Title: "ab", ImgURL: "x", ID: "zz"},
			"title must be at least 3 size, imgUrl must be a valid URL, _id must be of length 24"},
		{"size max and id", &sizedBody{Title: "abcdef", ImgURL: "https://a.b/c", ID: "zzzzzzzzzzzzzzzzzzzzzzzz"},
			"title must be at most 5 size, _id must be a valid id"},
		{"size required", &sizedBody{}, "title is required, imgUrl is required, _id is required"},
		{"page min", &Pagination{Page: -1, Limit: 10}, "page must be min 1"},
		{"page max", &Pagination{Page: 1, Limit: 1001}, "limit must be at most 1000"},
		{"page missing", &Pagination{}, "page is required, limit is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := httpx.Validate(tc.dst)
			ae := apperr.From(err)
			if ae == nil || ae.Status() != 400 || ae.Message != tc.want {
				t.Fatalf("Validate = %v, want 400 %q", err, tc.want)
			}
		})
	}
}
