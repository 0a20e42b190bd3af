// Package dto holds the JSON shapes blog_service sends (PublicBlog,
// PrivateBlog, ItemBlog/InfoBlog, exactly as the reference) and the request
// DTOs several controllers share (path id, slug, tag and pagination).
package dto

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/httpx"
)

// Author is the blog's author as every view shows it: never the email.
type Author struct {
	ID            string `json:"_id"`
	Name          string `json:"name"`
	ProfilePicURL string `json:"profilePicUrl,omitempty"`
}

// PublicBlog is a published blog for everyone: the published text, no draft,
// no flags, no created/updated times.
type PublicBlog struct {
	ID          string     `json:"_id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Text        string     `json:"text"` // always present, possibly ""
	Slug        string     `json:"slug"`
	Author      Author     `json:"author"`
	ImgURL      string     `json:"imgUrl,omitempty"`
	Score       float64    `json:"score"`
	Tags        []string   `json:"tags"`
	PublishedAt *time.Time `json:"publishedAt,omitempty"`
}

// PrivateBlog is the author's and the editors' view.
type PrivateBlog struct {
	ID          string     `json:"_id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Text        *string    `json:"text,omitempty"` // only once published
	DraftText   string     `json:"draftText"`
	Slug        string     `json:"slug"`
	Author      Author     `json:"author"`
	ImgURL      string     `json:"imgUrl,omitempty"`
	Score       float64    `json:"score"`
	Tags        []string   `json:"tags"`
	Submitted   bool       `json:"submitted"`
	Drafted     bool       `json:"drafted"`
	Published   bool       `json:"published"`
	PublishedAt *time.Time `json:"publishedAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
}

// ItemBlog is one entry of a list: the reference's ItemBlog (public lists)
// and InfoBlog (author and editor lists) have the same fields.
type ItemBlog struct {
	ID          string   `json:"_id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Slug        string   `json:"slug"`
	ImgURL      string   `json:"imgUrl,omitempty"`
	Score       float64  `json:"score"`
	Tags        []string `json:"tags"`
}

// AuthorOf is the blog's author from its stored profile snapshot.
func AuthorOf(b *model.Blog) Author {
	a := Author{ID: b.Author.Hex()}
	if p := b.AuthorProfile; p != nil {
		a.Name = p.Name
		a.ProfilePicURL = webURL(p.ProfilePicURL)
	}
	return a
}

// AuthorFromUser is the author as auth_service describes the user now.
func AuthorFromUser(u authwire.User) Author {
	return Author{ID: u.ID, Name: u.Name, ProfilePicURL: webURL(u.ProfilePicURL)}
}

// UserID is the authenticated user's id (checked to be hex by authclient).
func UserID(u authwire.User) bson.ObjectID {
	id, _ := bson.ObjectIDFromHex(u.ID)
	return id
}

// ProfileOf is the public profile stored with the user's blogs.
func ProfileOf(u authwire.User) *model.AuthorProfile {
	return &model.AuthorProfile{Name: u.Name, ProfilePicURL: u.ProfilePicURL}
}

func NewPublicBlog(b *model.Blog) PublicBlog {
	return PublicBlog{
		ID: b.ID.Hex(), Title: b.Title, Description: b.Description, Text: deref(b.Text), Slug: b.Slug,
		Author: AuthorOf(b), ImgURL: webURL(b.ImgURL), Score: b.Score, Tags: tags(b.Tags), PublishedAt: utc(b.PublishedAt),
	}
}

func NewPrivateBlog(b *model.Blog, author Author) PrivateBlog {
	return PrivateBlog{
		ID: b.ID.Hex(), Title: b.Title, Description: b.Description, Text: b.Text, DraftText: b.DraftText, Slug: b.Slug,
		Author: author, ImgURL: webURL(b.ImgURL), Score: b.Score, Tags: tags(b.Tags),
		Submitted: b.Submitted, Drafted: b.Drafted, Published: b.Published, PublishedAt: utc(b.PublishedAt),
		CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC(),
	}
}

func NewItemBlog(b *model.Blog) ItemBlog {
	return ItemBlog{
		ID: b.ID.Hex(), Title: b.Title, Description: b.Description, Slug: b.Slug,
		ImgURL: webURL(b.ImgURL), Score: b.Score, Tags: tags(b.Tags),
	}
}

// NewItemBlogs maps a page of blogs; an empty page is [] (never null).
func NewItemBlogs(blogs []model.Blog) []ItemBlog {
	out := make([]ItemBlog, len(blogs))
	for i := range blogs {
		out[i] = NewItemBlog(&blogs[i])
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// webURL is the URL behind s when it is an http(s) URL, "" otherwise.
// Requests are validated, but a picture URL may come from auth_service or
// from data stored before validation was strict; a javascript: or data: URL
// in a view is stored XSS for any client that renders it, so views never
// carry one.
func webURL(s *string) string {
	v := deref(s)
	if hasPrefixFold(v, "https://") || hasPrefixFold(v, "http://") {
		return v
	}
	return ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func tags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// MongoID is the `:id` path parameter: 24 hexadecimal characters (a
// 24-character value that is not hex is refused, not read as the zero id).
type MongoID struct {
	ID string `uri:"id" binding:"required" validate:"required,len=24,objectid"`
}

// Slug is the `:slug` path parameter.
type Slug struct {
	Slug string `uri:"slug" validate:"required,min=3,max=200"`
}

// Tag is the `:tag` path parameter; `uppercase` also refuses "". Its
// length and characters are those a blog's tags may have (see CheckTag).
type Tag struct {
	Tag string `uri:"tag" validate:"required,uppercase,max=100"`
}

// TagCharsMessage ends the message of a tag with a character outside
// ValidTagChars.
const TagCharsMessage = "must contain only letters, digits, spaces and - _ . + #"

// ValidTagChars reports whether every character of tag is a letter, a
// digit, a combining mark (accents), a space or one of - _ . + #. Together
// with `uppercase` and the length limit this keeps tags to words people
// tag with, and out of them the separators, control and invisible
// characters that only serve to mint endless distinct list requests.
func ValidTagChars(tag string) bool {
	for _, r := range tag {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.Is(unicode.Mn, r):
		case strings.ContainsRune(" -_.+#", r):
		default:
			return false
		}
	}
	return true
}

// CheckTag validates the `:tag` path parameter beyond its struct tags.
func (t Tag) CheckTag() error {
	if !ValidTagChars(t.Tag) {
		return apperr.BadRequest("tag " + TagCharsMessage)
	}
	return nil
}

// Pagination is `?page&limit`. Stage 1 (`binding`) reports missing or zero
// values first; only then are the ranges checked.
type Pagination struct {
	Page  int64 `form:"page" binding:"required" validate:"required,min=1,max=1000"`
	Limit int64 `form:"limit" binding:"required" validate:"required,min=1,max=1000"`
}

func (Pagination) ValidationStyle() httpx.Style { return PageStyle() }

// StorePage converts validated pagination to the store's page.
func (p Pagination) StorePage() model.Page { return model.Page{Number: p.Page, Size: p.Limit} }

// BindID binds and validates the `:id` path parameter. When it is invalid it
// answers the 400 itself and ok is false. given is the id as the client
// wrote it (some messages repeat it).
func BindID(c *gin.Context) (id bson.ObjectID, given string, ok bool) {
	var p MongoID
	if err := httpx.BindURI(c, &p); err != nil {
		httpx.Fail(c, err)
		return bson.ObjectID{}, "", false
	}
	id, _ = bson.ObjectIDFromHex(p.ID) // validated: 24 hex characters
	return id, p.ID, true
}

// Action is a service method that changes the blog with id on behalf of
// user.
type Action = func(ctx context.Context, user authwire.User, id bson.ObjectID) error

// ActionHandler is the handler of a route that changes the blog named by
// the `:id` path parameter: it binds the id, runs act as the authenticated
// user (userOf) and answers 200 with message.
func ActionHandler(act Action, userOf func(*gin.Context) authwire.User, message string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, _, ok := BindID(c)
		if !ok {
			return
		}
		if err := act(c.Request.Context(), userOf(c), id); err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.OK(c, message)
	}
}
