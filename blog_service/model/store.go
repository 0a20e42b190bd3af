package model

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/chassis/mongox"
)

// ErrNotFound: no document matched.
var ErrNotFound = errors.New("blog not found")

// ErrSlugTaken: the unique slug index refused the write.
var ErrSlugTaken = errors.New("slug already exists")

// Store runs the queries on `blogs`.
//
// Point reads filter on exactly {_id: id} and check the other conditions in
// Go: that is the one filter every store answers without a collection scan
// (FerretDB's SQLite backend pushes down nothing else), and on MongoDB it is
// the primary key either way.
//
// Every query reads the primary except ListPublicMaybeStale, which uses the
// configured read preference (DB_READ_PREFERENCE) and so may lag behind the
// last write by the replication delay.
type Store struct {
	db    *mongox.DB
	coll  *mongo.Collection
	stale *mongo.Collection
}

func NewStore(db *mongox.DB) *Store {
	stale := db.Database
	if db.StaleReads != nil {
		stale = db.StaleReads
	}
	return &Store{db: db, coll: db.Database.Collection(CollectionName), stale: stale.Collection(CollectionName)}
}

// Collection exposes the collection (tests and benchmarks seed it directly).
func (s *Store) Collection() *mongo.Collection { return s.coll }

// Insert stores a new blog; a taken slug is ErrSlugTaken.
func (s *Store) Insert(ctx context.Context, b *Blog) error {
	ctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	if _, err := s.coll.InsertOne(ctx, b); err != nil {
		if mongox.IsDuplicateKey(err) {
			return ErrSlugTaken
		}
		return fmt.Errorf("insert blog: %w", err)
	}
	return nil
}

// FindByID returns the blog with id in any state, or ErrNotFound.
func (s *Store) FindByID(ctx context.Context, id bson.ObjectID) (*Blog, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: id}})
}

// FindBySlug returns the blog with slug in any state, or ErrNotFound (slugs
// are unique across all states).
func (s *Store) FindBySlug(ctx context.Context, slug string) (*Blog, error) {
	return s.findOne(ctx, bson.D{{Key: "slug", Value: slug}})
}

// FindItemByID is FindByID with only what ItemBlog and IsPublic need.
func (s *Store) FindItemByID(ctx context.Context, id bson.ObjectID) (*Blog, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(itemStateProjection))
}

func (s *Store) findOne(ctx context.Context, filter bson.D, opts ...options.Lister[options.FindOneOptions]) (*Blog, error) {
	ctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	var b Blog
	if err := s.coll.FindOne(ctx, filter, opts...).Decode(&b); err != nil {
		if mongox.IsNotFound(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("find blog: %w", err)
	}
	return &b, nil
}

// Save writes the changes from before to after (after as a whole: every
// field that differs is set, a field after no longer has is removed), only
// while the stored blog is still at before's version, and moves the
// version on by one (after.Version). It reports whether the blog was still
// at that version; when it was not, nothing was written. Fields this
// service does not know (left by another writer) are kept. A taken slug is
// ErrSlugTaken.
func (s *Store) Save(ctx context.Context, before, after *Blog) (bool, error) {
	after.Version = before.Version + 1
	set, unset, err := diff(before, after)
	if err != nil {
		return false, err
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	ctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	filter := bson.D{{Key: "_id", Value: before.ID}, versionIs(before.Version)}
	res, err := s.coll.UpdateOne(ctx, filter, update)
	if err != nil {
		if mongox.IsDuplicateKey(err) {
			return false, ErrSlugTaken
		}
		return false, fmt.Errorf("update blog: %w", err)
	}
	return res.MatchedCount > 0, nil
}

// versionIs matches a blog at version v. Version 0 is also a blog without
// the field (written by the reference, or before versions existed).
func versionIs(v int64) bson.E {
	if v == 0 {
		return bson.E{Key: "version", Value: bson.D{{Key: "$in", Value: bson.A{int64(0), nil}}}}
	}
	return bson.E{Key: "version", Value: v}
}

// diff is the $set and $unset that turn the stored before into after.
func diff(before, after *Blog) (set, unset bson.D, err error) {
	old, err := bson.Marshal(before)
	if err != nil {
		return nil, nil, fmt.Errorf("encode blog: %w", err)
	}
	now, err := bson.Marshal(after)
	if err != nil {
		return nil, nil, fmt.Errorf("encode blog: %w", err)
	}
	oldElems, err := bson.Raw(old).Elements()
	if err != nil {
		return nil, nil, fmt.Errorf("encode blog: %w", err)
	}
	newElems, err := bson.Raw(now).Elements()
	if err != nil {
		return nil, nil, fmt.Errorf("encode blog: %w", err)
	}
	previous := make(map[string]bson.RawValue, len(oldElems))
	for _, e := range oldElems {
		previous[e.Key()] = e.Value()
	}
	for _, e := range newElems {
		key, v := e.Key(), e.Value()
		p, had := previous[key]
		delete(previous, key)
		if key == "_id" || had && key != "version" && p.Type == v.Type && bytes.Equal(p.Value, v.Value) {
			continue
		}
		set = append(set, bson.E{Key: key, Value: v})
	}
	for _, key := range slices.Sorted(maps.Keys(previous)) {
		unset = append(unset, bson.E{Key: key, Value: ""})
	}
	return set, unset, nil
}

// Page is a validated page request (1-based).
type Page struct{ Number, Size int64 }

func (p Page) skip() int64 { return (p.Number - 1) * p.Size }

// itemProjection is what ItemBlog and InfoBlog show.
var itemProjection = bson.D{
	{Key: "_id", Value: 1}, {Key: "title", Value: 1}, {Key: "description", Value: 1}, {Key: "slug", Value: 1},
	{Key: "imgUrl", Value: 1}, {Key: "score", Value: 1}, {Key: "tags", Value: 1},
}

// itemStateProjection adds the publication state to itemProjection.
var itemStateProjection = append(bson.D{{Key: "published", Value: 1}, {Key: "status", Value: 1}}, itemProjection...)

// publicOrder is the reference's order of public lists (latest first, then
// higher score) with _id as the final tiebreak, so that pages never overlap
// or skip a blog when two blogs share updatedAt and score.
var publicOrder = bson.D{{Key: "updatedAt", Value: -1}, {Key: "score", Value: -1}, {Key: "_id", Value: -1}}

// privateOrder sorts author and editor lists newest first by creation (the
// ObjectId), which, unlike updatedAt, does not change while blogs are edited,
// so paging through a list stays stable. (The reference leaves these lists
// unsorted.)
var privateOrder = bson.D{{Key: "_id", Value: -1}}

// ListPublic pages through published, active blogs, all of them or those
// carrying tag (exact element match).
func (s *Store) ListPublic(ctx context.Context, tag string, p Page) ([]Blog, error) {
	return s.list(ctx, s.coll, publicFilter(tag), publicOrder, p)
}

func publicFilter(tag string) bson.D {
	filter := bson.D{{Key: "status", Value: true}, {Key: "published", Value: true}}
	if tag != "" {
		filter = append(filter, bson.E{Key: "tags", Value: tag})
	}
	return filter
}

// ListPublicMaybeStale is ListPublic on a secondary when the read preference
// allows it: it may miss the latest writes, so its result must not be kept
// (cached) where it could outlive them.
func (s *Store) ListPublicMaybeStale(ctx context.Context, tag string, p Page) ([]Blog, error) {
	return s.list(ctx, s.stale, publicFilter(tag), publicOrder, p)
}

// AuthorList names an author's lists.
type AuthorList string

const (
	Drafts         AuthorList = "drafts"
	SubmittedBlogs AuthorList = "submitted"
	PublishedBlogs AuthorList = "published"
)

func (l AuthorList) flag() string {
	switch l {
	case Drafts:
		return "drafted"
	case SubmittedBlogs:
		return "submitted"
	default:
		return "published"
	}
}

// ListByAuthor pages through one author's active blogs having the list's flag.
func (s *Store) ListByAuthor(ctx context.Context, author bson.ObjectID, list AuthorList, p Page) ([]Blog, error) {
	filter := bson.D{{Key: "author", Value: author}, {Key: "status", Value: true}, {Key: list.flag(), Value: true}}
	return s.list(ctx, s.coll, filter, privateOrder, p)
}

// ListForEditors pages through every author's active blogs having the list's
// flag (submitted or published).
func (s *Store) ListForEditors(ctx context.Context, list AuthorList, p Page) ([]Blog, error) {
	filter := bson.D{{Key: "status", Value: true}, {Key: list.flag(), Value: true}}
	return s.list(ctx, s.coll, filter, privateOrder, p)
}

func (s *Store) list(ctx context.Context, coll *mongo.Collection, filter, sort bson.D, p Page) ([]Blog, error) {
	ctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	opts := options.Find().SetSort(sort).SetSkip(p.skip()).SetLimit(p.Size).SetProjection(itemProjection)
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("list blogs: %w", err)
	}
	blogs := []Blog{}
	if err := cur.All(ctx, &blogs); err != nil {
		return nil, fmt.Errorf("list blogs: %w", err)
	}
	return blogs, nil
}

// Candidate is what ranking a similar blog needs.
type Candidate struct {
	ID               bson.ObjectID `bson:"_id"`
	Score            float64       `bson:"score"`
	UpdatedAt        bson.DateTime `bson:"updatedAt"`
	TitleTerms       []string      `bson:"titleTerms"`
	DescriptionTerms []string      `bson:"descriptionTerms"`
}

var candidateProjection = bson.D{
	{Key: "_id", Value: 1}, {Key: "score", Value: 1}, {Key: "updatedAt", Value: 1},
	{Key: "titleTerms", Value: 1}, {Key: "descriptionTerms", Value: 1},
}

// SimilarCandidates returns every published, active blog other than id that
// shares at least one of the given terms, with only the fields ranking needs
// (the multikey index {terms, published, status} serves the filter on
// MongoDB).
func (s *Store) SimilarCandidates(ctx context.Context, id bson.ObjectID, anyOf []string) ([]Candidate, error) {
	if len(anyOf) == 0 {
		return nil, nil
	}
	ctx, cancel := s.db.Ctx(ctx)
	defer cancel()
	filter := bson.D{
		{Key: "terms", Value: bson.D{{Key: "$in", Value: anyOf}}},
		{Key: "published", Value: true},
		{Key: "status", Value: true},
		{Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}},
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetProjection(candidateProjection))
	if err != nil {
		return nil, fmt.Errorf("similar candidates: %w", err)
	}
	var out []Candidate
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("similar candidates: %w", err)
	}
	return out, nil
}
