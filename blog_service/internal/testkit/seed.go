package testkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/model"
)

// vocabulary gives seeded blogs overlapping titles, so similar blogs have
// something to rank.
var vocabulary = strings.Fields(`quantum garden tomato compiler kernel network database cache
	rust golang python river mountain bread coffee violin piano galaxy planet rocket robot
	neural vector matrix graph stream socket cloud storage memory thread lambda closure
	pattern design market budget travel desert ocean forest winter summer harvest recipe`)

// Seed inserts n blogs of the author straight into the store (InsertMany,
// bypassing the API for speed). Every blog is published when published is
// true, a draft otherwise; draftText and text make each about textSize bytes.
// updatedAt decreases with the index, so blog 0 is the latest.
func Seed(t testing.TB, app *App, n int, published bool, textSize int) []bson.ObjectID {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	author, _ := bson.ObjectIDFromHex(Author.ID)
	base := time.Now().UTC().Truncate(time.Millisecond)
	text := strings.Repeat("lorem ipsum dolor sit amet ", textSize/27+1)[:textSize/2]
	ids := make([]bson.ObjectID, 0, n)
	const batch = 1000
	for start := 0; start < n; start += batch {
		docs := make([]any, 0, min(batch, n-start))
		for i := start; i < min(start+batch, n); i++ {
			w := func() string { return vocabulary[rng.IntN(len(vocabulary))] }
			updated := base.Add(-time.Duration(i) * time.Second)
			b := &model.Blog{
				ID:            bson.NewObjectID(),
				Title:         fmt.Sprintf("%s %s %s notes %d", w(), w(), w(), i),
				Description:   fmt.Sprintf("A post about %s, %s and %s", w(), w(), w()),
				DraftText:     text,
				Tags:          []string{strings.ToUpper(w()), "SEED"},
				Author:        author,
				AuthorProfile: &model.AuthorProfile{Name: Author.Name, ProfilePicURL: Author.ProfilePicURL},
				Slug:          fmt.Sprintf("seed-%d-%d", n, i),
				Score:         model.DefaultScore,
				Drafted:       !published,
				Published:     published,
				Status:        true,
				CreatedBy:     author, UpdatedBy: author,
				CreatedAt: updated, UpdatedAt: updated,
			}
			img := "https://x.io/seed.png"
			b.ImgURL = &img
			if published {
				b.Text = &text
				b.PublishedAt = &updated
			}
			b.SetTerms()
			docs = append(docs, b)
			ids = append(ids, b.ID)
		}
		if _, err := app.Store.Collection().InsertMany(context.Background(), docs); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	return ids
}

// SeedTag returns the first tag of the seeded blog with id.
func SeedTag(app *App, t testing.TB, id bson.ObjectID) string {
	t.Helper()
	b, err := app.Store.FindByID(context.Background(), id)
	if err != nil {
		t.Fatalf("seed tag: %v", err)
	}
	return b.Tags[0]
}
