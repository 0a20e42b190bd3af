package tests

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/chassis/authwire"
	"blogplatform/devkit/wait"
)

// Blogs the reference wrote have no authorProfile: every read that shows
// the author (public by id and by slug, the editors' read) resolves it
// through auth_service.
func TestReferenceBlogShowsItsAuthor(t *testing.T) {
	app, auth := newApp(t)
	id := app.InsertReferenceBlog(t, testkit.RefBlog{
		Title: "Reference blog with an author", Description: "Written by the reference",
		Slug: "reference-author-blog", Author: testkit.Author.ID, Published: true,
	})
	wantAuthor := func(t *testing.T, r testkit.Response) {
		t.Helper()
		var b testkit.Blog
		r.Decode(t, &b)
		if b.Author == nil || b.Author.ID != testkit.Author.ID || b.Author.Name != testkit.Author.Name ||
			b.Author.ProfilePicURL != *testkit.Author.ProfilePicURL {
			t.Fatalf("author = %+v, want %s %q %q", b.Author, testkit.Author.ID, testkit.Author.Name, *testkit.Author.ProfilePicURL)
		}
	}
	for _, path := range []string{"/id/" + id, "/slug/reference-author-blog"} {
		t.Run("public "+path, func(t *testing.T) {
			// Twice: the first answer is computed, the second comes from
			// the cache and must carry the author too.
			for range 2 {
				wantAuthor(t, app.Do(t, http.MethodGet, path, "", nil).Want(t, 200, "success"))
			}
		})
	}
	t.Run("editor", func(t *testing.T) {
		wantAuthor(t, app.Do(t, http.MethodGet, "/editor/id/"+id, testkit.EditorToken, nil).Want(t, 200, "success"))
	})
	// The profile is cached per author: every read above asked auth once.
	if n := auth.Calls(authwire.SubjectProfileUser); n != 1 {
		t.Errorf("auth.profile.user asked %d times, want 1", n)
	}
}

// An author auth_service does not know (a deleted user) is shown with an
// empty name, not as an error; while auth_service cannot answer, the blog
// is served with an empty author name and nothing is cached, so the name
// appears as soon as auth answers again.
func TestReferenceBlogAuthorUnknownOrUnreachable(t *testing.T) {
	app, auth := newApp(t)
	gone := "66a0c6b2f1e4d3c2b1a0dead"
	goneID := app.InsertReferenceBlog(t, testkit.RefBlog{
		Title: "Orphan reference blog", Description: "Its author was deleted",
		Slug: "orphan-reference-blog", Author: gone, Published: true,
	})
	var b testkit.Blog
	app.Do(t, http.MethodGet, "/id/"+goneID, "", nil).Want(t, 200, "success").Decode(t, &b)
	if b.Author == nil || b.Author.ID != gone || b.Author.Name != "" {
		t.Fatalf("deleted author shown as %+v", b.Author)
	}
	app.Do(t, http.MethodGet, "/editor/id/"+goneID, testkit.EditorToken, nil).Want(t, 200, "success").Decode(t, &b)
	if b.Author == nil || b.Author.ID != gone || b.Author.Name != "" {
		t.Fatalf("editor: deleted author shown as %+v", b.Author)
	}

	id := app.InsertReferenceBlog(t, testkit.RefBlog{
		Title: "Reference blog while auth is down", Description: "Served anyway",
		Slug: "reference-auth-down", Author: testkit.OtherAuthor.ID, Published: true,
	})
	auth.ProfileDown.Store(true)
	for _, path := range []string{"/id/" + id, "/slug/reference-auth-down"} {
		app.Do(t, http.MethodGet, path, "", nil).Want(t, 200, "success").Decode(t, &b)
		if b.Author == nil || b.Author.ID != testkit.OtherAuthor.ID || b.Author.Name != "" {
			t.Fatalf("%s while auth is down: author %+v", path, b.Author)
		}
	}
	auth.ProfileDown.Store(false)
	for _, path := range []string{"/id/" + id, "/slug/reference-auth-down"} {
		app.Do(t, http.MethodGet, path, "", nil).Want(t, 200, "success").Decode(t, &b)
		if b.Author == nil || b.Author.Name != testkit.OtherAuthor.Name {
			t.Fatalf("%s once auth is back: author %+v, want %q", path, b.Author, testkit.OtherAuthor.Name)
		}
	}
}

// Blogs the reference wrote have no terms. As the source of a similar
// query their terms are computed on the fly; as candidates they appear
// once the start-up backfill has given them terms.
func TestReferenceBlogsInSimilar(t *testing.T) {
	similar := func(a *testkit.App, id string) []string {
		t.Helper()
		return testkit.IDs(t, a.Do(t, http.MethodGet, "/list/similar/id/"+id, "", nil).Want(t, 200, "success"))
	}
	quantum := []testkit.RefBlog{
		{Title: "Quantum Gardening Basics", Description: "Start a garden", Slug: "ref-qg-basics", Author: testkit.Author.ID, Published: true},
		{Title: "Quantum Gardening Tools", Description: "Shovels", Slug: "ref-qg-tools", Author: testkit.OtherAuthor.ID, Published: true},
		{Title: "Rocket science", Description: "Nothing shared", Slug: "ref-rocket", Author: testkit.Author.ID, Published: true},
	}

	t.Run("source computed on the fly", func(t *testing.T) {
		// Written by the reference while this service already runs (its
		// backfill has nothing to do at start), next to one of ours.
		app, _ := newApp(t)
		source := app.InsertReferenceBlogs(t, quantum...)[0]
		ours := app.Create(t, testkit.AuthorToken, map[string]any{
			"title": "Gardening with quantum patience", "description": "Our own blog", "draftText": "text",
			"slug": "ours-quantum-gardening", "imgUrl": "https://x.io/a.png", "tags": []string{"GARDEN"},
		})
		app.Publish(t, testkit.AuthorToken, ours.ID)
		if got := similar(app, source); !slices.Equal(got, []string{ours.ID}) {
			t.Fatalf("similar of a reference blog = %v, want [%s] (the only candidate with terms)", got, ours.ID)
		}
	})

	t.Run("candidates after the start-up backfill", func(t *testing.T) {
		// A database the reference left; this service starts on it and
		// serves at once, the backfill runs in the background. Until it
		// reaches them the reference blogs find no candidates (and that
		// answer may be cached: the backfill drops it).
		dbName, ids := testkit.ReferenceDatabase(t, env, quantum...)
		app := testkit.NewApp(t, env, redisDBs, testkit.Settings{"DB_NAME": dbName})
		var got []string
		if !wait.For(15*time.Second, func() bool {
			got = similar(app, ids[0])
			return slices.Equal(got, []string{ids[1]})
		}) {
			t.Fatalf("similar of %s after the backfill = %v, want [%s]", ids[0], got, ids[1])
		}
		if got := similar(app, ids[1]); !slices.Equal(got, []string{ids[0]}) {
			t.Fatalf("similar of %s = %v, want [%s]", ids[1], got, ids[0])
		}
		if got := similar(app, ids[2]); len(got) != 0 {
			t.Fatalf("similar of the unrelated blog = %v, want []", got)
		}
	})
}
