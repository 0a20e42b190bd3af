// Package model is the blog domain: the Blog, its state changes with their
// rules (lifecycle.go), and the `blogs` collection that stores it (its
// indexes and every query blog_service runs on it).
package model

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/blog_service/terms"
	"blogplatform/chassis/mongox"
)

// CollectionName is the reference's collection.
const CollectionName = "blogs"

// DefaultScore is every new blog's score, as in the reference.
const DefaultScore = 0.01

// Blog is one document of `blogs`. Field names are the reference's; the
// fields marked "added" are this platform's:
//   - authorProfile: the author's public profile (name, picture), copied from
//     auth_service at creation and refreshed at every publish, so that public
//     reads never have to ask auth_service;
//   - terms, titleTerms, descriptionTerms: the normalised terms (package
//     terms) behind similar blogs. terms is the union of the other two and is
//     the indexed field the candidate query matches; the two others tell the
//     ranking where a term occurs;
//   - version: counts the writes of this platform, compared by every write
//     (optimistic concurrency). Blogs written by the reference have none,
//     which reads as 0.
type Blog struct {
	ID            bson.ObjectID  `bson:"_id"`
	Title         string         `bson:"title"`
	Description   string         `bson:"description"`
	Text          *string        `bson:"text,omitempty"` // the published copy; absent until the first publish
	DraftText     string         `bson:"draftText"`
	Tags          []string       `bson:"tags"`
	Author        bson.ObjectID  `bson:"author"`
	AuthorProfile *AuthorProfile `bson:"authorProfile,omitempty"` // added
	ImgURL        *string        `bson:"imgUrl,omitempty"`
	Slug          string         `bson:"slug"`
	Score         float64        `bson:"score"`
	Submitted     bool           `bson:"submitted"`
	Drafted       bool           `bson:"drafted"`
	Published     bool           `bson:"published"`
	Status        bool           `bson:"status"` // false once deleted (soft delete)
	PublishedAt   *time.Time     `bson:"publishedAt,omitempty"`
	CreatedBy     bson.ObjectID  `bson:"createdBy"`
	UpdatedBy     bson.ObjectID  `bson:"updatedBy"`
	CreatedAt     time.Time      `bson:"createdAt"`
	UpdatedAt     time.Time      `bson:"updatedAt"`

	Terms            []string `bson:"terms"`            // added
	TitleTerms       []string `bson:"titleTerms"`       // added
	DescriptionTerms []string `bson:"descriptionTerms"` // added

	Version int64 `bson:"version"` // added
}

// AuthorProfile is the public part of the author's user: never the email.
type AuthorProfile struct {
	Name          string  `bson:"name"`
	ProfilePicURL *string `bson:"profilePicUrl,omitempty"`
}

// IsPublic reports whether public endpoints may show the blog.
func (b *Blog) IsPublic() bool { return b != nil && b.Status && b.Published }

// SetTerms recomputes the term fields from the title and description.
func (b *Blog) SetTerms() {
	b.TitleTerms = nonNil(terms.Of(b.Title))
	b.DescriptionTerms = nonNil(terms.Of(b.Description))
	b.Terms = terms.Union(b.TitleTerms, b.DescriptionTerms)
}

// nonNil stores an empty array rather than null, so the field always exists.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Now is the time stored for writes: UTC at millisecond precision, exactly
// what the store gives back, so a response built from memory equals a later
// read.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// NextUpdatedAt is the updatedAt of a write to a blog last updated at prev:
// now, but always at least one millisecond after prev, so that every write
// changes updatedAt and updatedAt identifies a state of the blog (an editor
// publishes "the state updated at T").
func NextUpdatedAt(prev time.Time) time.Time {
	now := Now()
	if next := prev.UTC().Truncate(time.Millisecond).Add(time.Millisecond); now.Before(next) {
		return next
	}
	return now
}

// Indexes are the reference's indexes plus the terms index. Only the
// unique slug index is required: it is what keeps slugs unique (also across
// concurrent creates). The others speed up queries where the store supports
// them; a store that refuses one (FerretDB has no text indexes) is logged and
// served without it. Nothing depends on the text index: similar blogs use
// the terms field.
func Indexes() []mongox.Index {
	ix := func(keys bson.D, optional bool, opts ...*options.IndexOptionsBuilder) mongox.Index {
		m := mongo.IndexModel{Keys: keys}
		if len(opts) > 0 {
			m.Options = opts[0]
		}
		return mongox.Index{Collection: CollectionName, Model: m, Optional: optional}
	}
	return []mongox.Index{
		ix(bson.D{{Key: "slug", Value: 1}}, false, options.Index().SetUnique(true)),
		ix(bson.D{{Key: "title", Value: "text"}, {Key: "description", Value: "text"}}, true,
			options.Index().SetWeights(bson.D{{Key: "title", Value: 3}, {Key: "description", Value: 1}})),
		ix(bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: 1}}, true),
		ix(bson.D{{Key: "published", Value: 1}, {Key: "status", Value: 1}}, true),
		ix(bson.D{{Key: "_id", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}, true),
		ix(bson.D{{Key: "slug", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}, true),
		ix(bson.D{{Key: "tags", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}, true),
		ix(bson.D{{Key: "terms", Value: 1}, {Key: "published", Value: 1}, {Key: "status", Value: 1}}, true),
		// The author and editor lists (newest first).
		ix(bson.D{{Key: "author", Value: 1}, {Key: "status", Value: 1}, {Key: "_id", Value: -1}}, true),
	}
}
