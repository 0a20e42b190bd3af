// Package migrations lists blog_service's start-up migrations (run by
// chassis/migrate, recorded in the `migrations` collection of the blog
// database). Both current steps bring blogs written by the reference's
// blog_service up to this platform's document shape, and both run in the
// background: the service serves while they work, and until a blog is
// reached the read paths fill in what it lacks (package authorprofile for
// the author, the similar query for the source's terms).
//
//   - TermsStep gives blogs without terms, titleTerms or descriptionTerms
//     their terms (package terms), so that they are found as similar blogs.
//   - AuthorProfileStep gives blogs without authorProfile their author's
//     public profile, asked from auth_service (auth.profile.user) once per
//     distinct author. An author auth_service does not know (deleted) gets an
//     empty profile (name ""), which is what reads show for such a blog
//     anyway: the blog is then complete and never asked about again. When
//     auth_service cannot answer, the step stops with an error; the runner
//     tries it again later and it resumes at the batch it was working on.
//
// Both walk the blogs that lack the field in _id order, BatchSize at a time,
// saving the last _id after each batch (so an interrupted run resumes there,
// and a batch repeated after a crash is harmless: every update is
// conditional on the field still missing). Each blog is updated under the
// blog write lock (blogcache.Cache.LockWrite), like every other write of a blog,
// and updatedAt is not touched (a backfill is not an edit). After each batch
// the cache entries of the updated blogs are invalidated (and the lists that
// may show them), in one call.
//
// Blogs the reference writes after a step is done (both services running on
// one store during a switch-over) are not revisited: the read fallbacks
// cover them, and re-publishing a blog through this service stores both
// fields.
package migrations

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/model"
	"blogplatform/chassis/migrate"
)

// Step names (records' _id in the migrations collection; never rename).
const (
	TermsStep         = "blogs.terms-backfill"
	AuthorProfileStep = "blogs.author-profile-backfill"
)

// DefaultBatchSize is the number of blogs read and updated per batch.
const DefaultBatchSize = 500

// Profiles looks up an author's public profile (authorprofile.Resolver):
// known is false for a user auth_service does not know; an error means
// auth_service could not answer.
type Profiles interface {
	Lookup(ctx context.Context, id bson.ObjectID) (p model.AuthorProfile, known bool, err error)
}

// Deps are what the steps work with.
type Deps struct {
	Blogs    *mongo.Collection
	Cache    *blogcache.Cache
	Profiles Profiles
	// BatchSize defaults to DefaultBatchSize.
	BatchSize int
}

// Steps returns blog_service's migration steps, in order.
func Steps(d Deps) []migrate.Step {
	if d.BatchSize <= 0 {
		d.BatchSize = DefaultBatchSize
	}
	return []migrate.Step{
		{Name: TermsStep, Background: true, Run: d.backfillTerms},
		{Name: AuthorProfileStep, Background: true, Run: d.backfillAuthorProfiles},
	}
}

// missing matches documents without the field (or with null, which no
// version of this service writes but which means the same).
func missing(field string) bson.E { return bson.E{Key: field, Value: nil} }

// stateProjection is what cache invalidation needs to know about a blog.
var stateProjection = bson.D{
	{Key: "_id", Value: 1}, {Key: "slug", Value: 1}, {Key: "author", Value: 1},
	{Key: "status", Value: 1}, {Key: "published", Value: 1}, {Key: "submitted", Value: 1},
}

// What update reads back to check that a blog still needs its update.
var (
	termsCheckProjection = bson.D{
		{Key: "title", Value: 1}, {Key: "description", Value: 1},
		{Key: "terms", Value: 1}, {Key: "titleTerms", Value: 1}, {Key: "descriptionTerms", Value: 1},
	}
	profileCheckProjection = bson.D{{Key: "authorProfile", Value: 1}}
)

func decode(docs []bson.Raw) ([]model.Blog, error) {
	out := make([]model.Blog, len(docs))
	for i, d := range docs {
		if err := bson.Unmarshal(d, &out[i]); err != nil {
			return nil, fmt.Errorf("decode blog: %w", err)
		}
	}
	return out, nil
}

func (d Deps) backfillTerms(ctx context.Context, p *migrate.Progress) error {
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{missing("terms")}, bson.D{missing("titleTerms")}, bson.D{missing("descriptionTerms")},
	}}}
	projection := append(bson.D{{Key: "title", Value: 1}, {Key: "description", Value: 1}}, stateProjection...)
	total := 0
	return p.EachBatch(ctx, migrate.Batch{Collection: d.Blogs, Filter: filter, Projection: projection, Size: d.BatchSize},
		func(ctx context.Context, docs []bson.Raw) error {
			blogs, err := decode(docs)
			if err != nil {
				return err
			}
			var changed []*model.Blog
			for i := range blogs {
				b := &blogs[i]
				b.SetTerms()
				// Conditional on the title and description the terms were
				// computed from: an edit in between stored its own terms.
				ok, err := d.update(ctx, b.ID, termsCheckProjection, func(cur bson.Raw) bool {
					return stringIs(cur, "title", b.Title) && stringIs(cur, "description", b.Description) &&
						(absent(cur, "terms") || absent(cur, "titleTerms") || absent(cur, "descriptionTerms"))
				}, bson.D{{Key: "terms", Value: b.Terms}, {Key: "titleTerms", Value: b.TitleTerms}, {Key: "descriptionTerms", Value: b.DescriptionTerms}})
				if err != nil {
					return err
				}
				if ok {
					changed = append(changed, b)
				}
			}
			d.invalidate(ctx, changed)
			total += len(changed)
			p.Log().Info("blog terms backfilled", "updated", len(changed), "batch", len(blogs), "updatedThisRun", total)
			return nil
		})
}

func (d Deps) backfillAuthorProfiles(ctx context.Context, p *migrate.Progress) error {
	// Profiles already asked during this run (one entry per distinct author;
	// the Resolver's Redis cache covers restarts).
	known := map[bson.ObjectID]model.AuthorProfile{}
	total, unknownTotal := 0, 0
	return p.EachBatch(ctx, migrate.Batch{Collection: d.Blogs, Filter: bson.D{missing("authorProfile")}, Projection: stateProjection, Size: d.BatchSize},
		func(ctx context.Context, docs []bson.Raw) error {
			blogs, err := decode(docs)
			if err != nil {
				return err
			}
			unknown := 0
			for i := range blogs {
				if _, ok := known[blogs[i].Author]; ok {
					continue
				}
				profile, found, err := d.Profiles.Lookup(ctx, blogs[i].Author)
				if err != nil {
					// Nothing of this batch is lost: the checkpoint stays
					// before it, and the blogs already updated are skipped
					// by the filter next time.
					return fmt.Errorf("author %s: %w", blogs[i].Author.Hex(), err)
				}
				if !found {
					unknown++
					p.Log().Warn("blog author unknown to auth_service; storing an empty profile", "author", blogs[i].Author.Hex())
				}
				if len(known) >= maxRemembered {
					clear(known)
				}
				known[blogs[i].Author] = profile
			}
			var changed []*model.Blog
			for i := range blogs {
				b := &blogs[i]
				profile := known[b.Author]
				ok, err := d.update(ctx, b.ID, profileCheckProjection, func(cur bson.Raw) bool { return absent(cur, "authorProfile") },
					bson.D{{Key: "authorProfile", Value: profile}})
				if err != nil {
					return err
				}
				if ok {
					changed = append(changed, b)
				}
			}
			d.invalidate(ctx, changed)
			total += len(changed)
			unknownTotal += unknown
			p.Log().Info("blog author profiles backfilled", "updated", len(changed), "batch", len(blogs),
				"unknownAuthors", unknown, "updatedThisRun", total, "unknownAuthorsThisRun", unknownTotal)
			return nil
		})
}

// maxRemembered bounds the per-run memory of author profiles.
const maxRemembered = 10000

// update $sets fields of the blog with id when check, given the blog's
// current document (the fields of check's projection), says it still needs
// them; it reports whether it wrote. It holds the blog's write lock
// (blogcache.Cache.LockWrite) from the read to the write, so no other write of
// the blog comes in between. Both the read and the write filter on exactly
// {_id}: the one filter every store answers without a collection scan
// (FerretDB's SQLite backend would scan the whole collection for each
// update with any other condition).
func (d Deps) update(ctx context.Context, id bson.ObjectID, projection bson.D, check func(bson.Raw) bool, set bson.D) (bool, error) {
	if d.Cache != nil {
		release, err := d.Cache.LockWrite(ctx, id.Hex())
		if err != nil {
			// The blog is being written: the step fails and the runner
			// tries it again from this batch (nothing of it is lost).
			return false, fmt.Errorf("lock blog %s: %w", id.Hex(), err)
		}
		defer release()
	}
	byID := bson.D{{Key: "_id", Value: id}}
	current, err := d.Blogs.FindOne(ctx, byID, options.FindOne().SetProjection(projection)).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read blog %s: %w", id.Hex(), err)
	}
	if !check(current) {
		return false, nil
	}
	res, err := d.Blogs.UpdateOne(ctx, byID, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return false, fmt.Errorf("update blog %s: %w", id.Hex(), err)
	}
	return res.MatchedCount > 0, nil
}

// absent reports whether doc lacks field (or holds null there).
func absent(doc bson.Raw, field string) bool {
	v, err := doc.LookupErr(field)
	return err != nil || v.Type == bson.TypeNull
}

// stringIs reports whether doc's field is the string want.
func stringIs(doc bson.Raw, field, want string) bool {
	s, ok := doc.Lookup(field).StringValueOK()
	return ok && s == want
}

func (d Deps) invalidate(ctx context.Context, changed []*model.Blog) {
	if d.Cache != nil && len(changed) > 0 {
		d.Cache.Changed(ctx, changed...)
	}
}
