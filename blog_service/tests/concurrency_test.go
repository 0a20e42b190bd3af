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
				published := won(t, id, pub, "blog published successfully", notSubmitted(id))
				withdrawn := won(t, id, withdraw, "blog withdrawn successfully", "")
				switch {
				case published:
					wantPublished(t, final)
				case withdrawn:
					wantDraft(t, final, false)
				default:
					wantDraft(t, final, true)
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
				published := won(t, id, pub, "blog published successfully", notSubmitted(id))
				edited := won(t, id, edit, "blog updated successfully", "")
				if want := map[bool]string{true: "edited while publishing", false: "draft body"}[edited]; *final.DraftText != want {
					t.Errorf("draft %q, want %q", *final.DraftText, want)
				}
				if published {
					wantPublished(t, final) // the reviewed text, never the edit
				} else {
					wantDraft(t, final, !edited)
				}
			},
		},
		{
			name: "two publishes",
			a:    publish,
			b:    publish,
			judge: func(t *testing.T, id string, first, second testkit.Response, final testkit.Blog) {
				already := "blog for _id " + id + " is already published"
				a, b := won(t, id, first, "blog published successfully", already), won(t, id, second, "blog published successfully", already)
				if a && b {
					t.Fatal("both publishes succeeded")
				}
				if a || b {
					wantPublished(t, final)
				} else {
					wantDraft(t, final, true)
				}
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

// won reports whether a change succeeded (200 with message); otherwise
// it lost the race and must say why: its state-precondition 400 (none when
// precondition is "") or a 409.
func won(t *testing.T, id string, r testkit.Response, message, precondition string) bool {
	t.Helper()
	switch {
	case r.Status == http.StatusOK:
		r.Want(t, 200, message)
		return true
	case r.Status == http.StatusConflict:
		r.Want(t, 409, "blog for _id "+id+" kept changing during the update; try again")
	case precondition != "":
		r.Want(t, 400, precondition)
	default:
		t.Errorf("answer %d %q", r.Status, r.Message)
	}
	return false
}

// wantPublished: published from the draft the editor reviewed.
func wantPublished(t *testing.T, b testkit.Blog) {
	t.Helper()
	if !*b.Published || *b.Submitted || *b.Drafted || b.Text == nil || *b.Text != "draft body" || b.PublishedAt == nil {
		t.Errorf("published blog in an impossible state: published %v submitted %v drafted %v text %v publishedAt %v",
			*b.Published, *b.Submitted, *b.Drafted, b.Text, b.PublishedAt)
	}
}

// wantDraft: an unpublished draft, still submitted or not.
func wantDraft(t *testing.T, b testkit.Blog, submitted bool) {
	t.Helper()
	if *b.Published || *b.Submitted != submitted || !*b.Drafted || b.Text != nil {
		t.Errorf("want an unpublished draft (submitted %v): published %v submitted %v drafted %v text %v",
			submitted, *b.Published, *b.Submitted, *b.Drafted, b.Text)
	}
}
