package author

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"blogplatform/blog_service/dto"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/httpx"
)

// MinSlugLen applies again after formatting, which may shorten a slug.
const MinSlugLen = 3

// CreateBlog is the body of POST /author. Like the reference it has only
// stage-2 rules, so `{}` lists every missing field. The rules are the
// reference's plus limits it lacks: at most 1000 tags (a 1 001-tag body is
// refused), at most 100 characters per tag, only the characters of
// dto.ValidTagChars in a tag (checked after the struct rules, by
// checkTags), and an imgUrl that is an absolute http or https URL (a
// javascript: or data: URL is stored XSS for any client that renders it; a
// value that is no URI at all keeps the reference's message).
type CreateBlog struct {
	Title       string   `json:"title" validate:"required,min=3,max=500"`
	Description string   `json:"description" validate:"required,min=3,max=2000"`
	DraftText   string   `json:"draftText" validate:"required,max=50000"`
	Slug        string   `json:"slug" validate:"required,min=3,max=200"`
	ImgURL      string   `json:"imgUrl" validate:"required,uri,http_url,max=200"`
	Tags        []string `json:"tags" validate:"required,min=1,max=1000,dive,uppercase,max=100"`
}

// createStyle is the blog wording with a clear message for a URL that is
// not absolute http(s).
var createStyle = func() httpx.Style {
	s := dto.SizeStyle()
	s.URL = "%[1]s must be an absolute http or https URL"
	return s
}()

func (CreateBlog) ValidationStyle() httpx.Style { return createStyle }

// UpdateBlog is the body of PUT /author: `_id` and any fields to change. A
// field that is present is checked even when empty ("" is too short a
// title); an absent or null field is left alone.
type UpdateBlog struct {
	ID          string    `json:"_id" binding:"required" validate:"required,len=24,objectid"`
	Title       *string   `json:"title" validate:"omitnil,min=3,max=500"`
	Description *string   `json:"description" validate:"omitnil,min=3,max=2000"`
	DraftText   *string   `json:"draftText" validate:"omitnil,max=50000"`
	Slug        *string   `json:"slug" validate:"omitnil,min=3,max=200"`
	ImgURL      *string   `json:"imgUrl" validate:"omitnil,uri,http_url,max=200"`
	Tags        *[]string `json:"tags" validate:"omitnil,min=1,max=1000,dive,uppercase,max=100"`
}

// updateStyle is the blog wording, with `_id` errors naming the ObjectId
// like the reference's decoder did ("... ObjectID ...").
var updateStyle = func() httpx.Style {
	s := createStyle
	s.Len = "%[1]s must be an ObjectID of length %[2]s"
	s.ObjectID = "%[1]s must be a valid ObjectID"
	return s
}()

func (UpdateBlog) ValidationStyle() httpx.Style { return updateStyle }

// bindBlog binds a create or update body: the struct rules, then the
// characters of its tags.
func bindBlog(c *gin.Context, body interface{ tagList() []string }) error {
	if err := httpx.BindJSON(c, body); err != nil {
		return err
	}
	return checkTags(body.tagList())
}

func (b *CreateBlog) tagList() []string { return b.Tags }

func (b *UpdateBlog) tagList() []string {
	if b.Tags == nil {
		return nil
	}
	return *b.Tags
}

// checkTags refuses a tag with a character outside dto.ValidTagChars.
func checkTags(tags []string) error {
	for i, tag := range tags {
		if !dto.ValidTagChars(tag) {
			return apperr.BadRequest(fmt.Sprintf("tags[%d] %s", i, dto.TagCharsMessage))
		}
	}
	return nil
}

// FormatSlug is the reference's FormatEndpoint: spaces removed, "/" turned
// into "-", "?" removed; case is kept.
func FormatSlug(slug string) string {
	slug = strings.ReplaceAll(slug, " ", "")
	slug = strings.ReplaceAll(slug, "/", "-")
	return strings.ReplaceAll(slug, "?", "")
}

// slugTooShort reports a formatted slug below the minimum (counted in
// characters, as the validator counts).
func slugTooShort(slug string) bool { return utf8.RuneCountInString(slug) < MinSlugLen }
