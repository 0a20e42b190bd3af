package tests

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/blog_service/model"
)

// TestConflictingChangesAtOnce sends two conflicting changes of one blog at
// the same moment, 50 rounds per pair, and checks that every round ends in
// a state one of the two orders would give (never a mix, such as a blog
// both published and submitted, or published without its text), and that
// the loser is told why: the state-precondition 400 of the order it lost,
// or a 409.
func TestConflictingChangesAtOnce(t *testing.T) {
	app, _ := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	const rounds = 50
	type request struct {
		method, path, token string
		body                any
	}
	publish := func(id string) request { return request{http.MethodPut, "/editor/publish/id/" + id, editor, nil} }
	for _, pair := range []struct {
		name string
		a, b func(id string) request
		// judge checks the two answers against the final state.
		judge func(t *testing.T, id string, a, b testkit.Response, final testkit.Blog)
	}{
		{
			name: "publish and withdraw",
			a:    publish,
			b:    func(id string) request { return request{http.MethodPut, "/author/withdraw/id/" + id, author, nil} },
			judge: func(t *testing.T, id string, pub, withdraw testkit.Response, final testkit.Blog) {
				withdraw.Want(t, 200, "blog withdrawn successfully")
				if pub.Status == 200 {
					wantPublished(t, final, "draft body")
				} else {
					loser(t, pub, notSubmitted(id))
					wantDraft(t, final)
				}
			},
		},
		{
			name: "edit and publish",
			a:    publish,
			b: func(id string) request {
				return request{http.MethodPut, "/author", author, map[string]any{"_id": id, "draftText": "edited while publishing"}}
			},
			judge: func(t *testing.T, id string, pub, edit testkit.Response, final testkit.Blog) {
				edit.Want(t, 200, "blog updated successfully")
				if *final.DraftText != "edited while publishing" {
					t.Errorf("the edit was lost: draft %q", *final.DraftText)
				}
				if pub.Status == 200 {
					wantPublished(t, final, "draft body") // the reviewed text, never the edit
				} else {
					loser(t, pub, notSubmitted(id))
					wantDraft(t, final)
				}
			},
		},
		{
			name: "two publishes",
			a:    publish,
			b:    publish,
			judge: func(t *testing.T, id string, first, second testkit.Response, final testkit.Blog) {
				if first.Status == 200 && second.Status == 200 {
					t.Fatal("both publishes succeeded")
				}
				if first.Status != 200 {
					first, second = second, first
				}
				first.Want(t, 200, "blog published successfully")
				loser(t, second, "blog for _id "+id+" is already published")
				wantPublished(t, final, "draft body")
			},
		},
	} {
		t.Run(pair.name, func(t *testing.T) {
			// Rounds run two at a time (each on its own blog): a round
			// mostly waits on the store and NATS.
			for round, id := range seedSubmitted(t, app, rounds) {
				t.Run(strconv.Itoa(round), func(t *testing.T) {
					t.Parallel()
					var answers [2]testkit.Response
					var wg sync.WaitGroup
					for i, req := range []request{pair.a(id), pair.b(id)} {
						wg.Go(func() { answers[i] = app.Do(t, req.method, req.path, req.token, req.body) })
					}
					wg.Wait()
					var final testkit.Blog
					app.Do(t, http.MethodGet, "/editor/id/"+id, editor, nil).Want(t, 200, "success").Decode(t, &final)
					pair.judge(t, id, answers[0], answers[1], final)
					if t.Failed() {
						t.Logf("answers %d %q / %d %q; final %+v",
							answers[0].Status, answers[0].Message, answers[1].Status, answers[1].Message, final)
					}
				})
			}
		})
	}
}

// seedSubmitted stores n submitted blogs of testkit.Author, with the draft
// "draft body", straight into the store (the API path to this state is
// covered elsewhere; here only the race matters).
func seedSubmitted(t *testing.T, app *testkit.App, n int) []string {
	t.Helper()
	author, _ := bson.ObjectIDFromHex(testkit.Author.ID)
	docs, ids := make([]any, n), make([]string, n)
	for i := range n {
		b := model.NewBlog(author, &model.AuthorProfile{Name: testkit.Author.Name}, model.Draft{
			Title: "Racing changes", Description: "two changes at once", DraftText: "draft body",
			Slug: "race-" + bson.NewObjectID().Hex(), ImgURL: "https://x.io/a.png", Tags: []string{"RACE"},
		})
		b.Submitted = true
		docs[i], ids[i] = b, b.ID.Hex()
	}
	if _, err := app.Store.Collection().InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	return ids
}

// loser checks the answer of the change that lost the race: its
// state-precondition 400, or a 409 conflict.
func loser(t *testing.T, r testkit.Response, precondition string) {
	t.Helper()
	if r.Status == http.StatusConflict && r.Code == "10001" && r.Message != "" {
		return
	}
	r.Want(t, 400, precondition)
}

func wantPublished(t *testing.T, b testkit.Blog, text string) {
	t.Helper()
	if !*b.Published || *b.Submitted || *b.Drafted || b.Text == nil || *b.Text != text || b.PublishedAt == nil {
		t.Errorf("published blog in an impossible state: published %v submitted %v drafted %v text %v publishedAt %v",
			*b.Published, *b.Submitted, *b.Drafted, b.Text, b.PublishedAt)
	}
}

func wantDraft(t *testing.T, b testkit.Blog) {
	t.Helper()
	if *b.Published || *b.Submitted || !*b.Drafted || b.Text != nil {
		t.Errorf("want an unpublished draft: published %v submitted %v drafted %v text %v", *b.Published, *b.Submitted, *b.Drafted, b.Text)
	}
}
