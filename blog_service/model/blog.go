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

// Indexes: the unique slug index keeps slugs unique (also across concurrent
// creates) and is required. The others serve the lists and similar blogs
// with their filter's equality fields first, then their sort, so that on
// MongoDB a page is read straight off one index however many blogs there
// are; the blog_service tests check every query the service sends against
// this list. A store that refuses one (FerretDB takes them all) is logged
// and served without it. The reference's text and {_id, …} indexes are not
// declared: no query uses them (similar blogs use the terms field, reads by
// id use the _id index); a database that has them keeps them.
func Indexes() []mongox.Index {
	ix := func(keys bson.D, optional bool, opts ...*options.IndexOptionsBuilder) mongox.Index {
		m := mongo.IndexModel{Keys: keys}
		if len(opts) > 0 {
			m.Options = opts[0]
		}
		return mongox.Index{Collection: CollectionName, Model: m, Optional: optional}
	}
	// publicOrder and privateOrder, as index keys.
	latest := bson.D{{Key: "updatedAt", Value: -1}, {Key: "score", Value: -1}, {Key: "_id", Value: -1}}
	newest := bson.D{{Key: "_id", Value: -1}}
	keys := func(fields []string, order bson.D) bson.D {
		d := bson.D{}
		for _, f := range fields {
			d = append(d, bson.E{Key: f, Value: 1})
		}
		return append(d, order...)
	}
	return []mongox.Index{
		ix(bson.D{{Key: "slug", Value: 1}}, false, options.Index().SetUnique(true)),
		// Public lists, all blogs or one tag's.
		ix(keys([]string{"published", "status"}, latest), true),
		ix(keys([]string{"tags", "published", "status"}, latest), true),
		// Similar blogs (multikey on terms).
		ix(keys([]string{"terms", "published", "status"}, nil), true),
		// An author's drafts, submitted and published blogs.
		ix(keys([]string{"author", "status", "drafted"}, newest), true),
		ix(keys([]string{"author", "status", "submitted"}, newest), true),
		ix(keys([]string{"author", "status", "published"}, newest), true),
		// The editors' submitted and published lists.
		ix(keys([]string{"submitted", "status"}, newest), true),
		ix(keys([]string{"published", "status"}, newest), true),
	}
}
