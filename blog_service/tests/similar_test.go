package tests

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"blogplatform/blog_service/internal/testkit"
	"blogplatform/devkit/wait"
)

// TestSimilarBlogs: a small corpus with known overlaps with the source's
// title terms ("quantum", "gardening", "basic"), ranked 3 per term in the
// title and 1 per term in the description, ties by latest update; at most
// six, never the blog itself, only published and active blogs.
func TestSimilarBlogs(t *testing.T) {
	app, _ := newApp(t)
	author := testkit.AuthorToken
	blog := func(slug, title, description string, publish bool) testkit.Blog {
		t.Helper()
		body := testkit.NewBlogBody(slug)
		body["slug"], body["title"], body["description"] = slug, title, description
		b := app.Create(t, author, body)
		if publish {
			app.Publish(t, author, b.ID)
			// Distinct updatedAt (millisecond precision): the next write
			// starts in a later millisecond than this one ended.
			published := time.Now().UnixMilli()
			wait.Eventually(t, time.Second, "the clock passed "+b.ID+"'s millisecond", func() bool { return time.Now().UnixMilli() > published })
		}
		return b
	}
	source := blog("source", "Quantum Gardening Basics", "Start a garden", true)
	f := blog("f-tools", "Quantum gardening tools", "Shovels", true)             // 6, older than a
	a := blog("a-tools", "Gardening with quantum tools", "Rakes", true)          // 6
	b := blog("b-begin", "Gardening for beginners", "Basic quantum ideas", true) // 3 + 1 + 1
	c := blog("c-physics", "Quantum physics", "Also some gardening", true)       // 3 + 1
	i := blog("i-recipes", "Basic recipes", "Pasta and bread", true)             // 3
	d := blog("d-pasta", "Cooking pasta", "A quantum of salt", true)             // 1
	j := blog("j-soil", "Healthy soil", "Gardening all year", true)              // 1, newer than d
	blog("e-rocket", "Rocket science", "Nothing shared here", true)              // 0
	blog("g-draft", "Quantum gardening basics too", "Draft only", false)         // not published
	h := blog("h-deleted", "Quantum gardening basics again", "Deleted", true)    // deleted below
	app.Do(t, http.MethodDelete, "/author/id/"+h.ID, author, nil).Want(t, 200, "blog deleted successfully")

	r := app.Do(t, http.MethodGet, "/list/similar/id/"+source.ID, "", nil).Want(t, 200, "success")
	got := testkit.IDs(t, r)
	want := []string{a.ID, f.ID, b.ID, c.ID, i.ID, j.ID}
	if !slices.Equal(got, want) {
		names := map[string]string{source.ID: "source", a.ID: "a", f.ID: "f", b.ID: "b", c.ID: "c", i.ID: "i", d.ID: "d", j.ID: "j", h.ID: "h"}
		gotNames := make([]string, len(got))
		for k, id := range got {
			gotNames[k] = names[id]
		}
		t.Fatalf("similar = %v, want [a f b c i j]", gotNames)
	}

	// d becomes the sixth once c is unpublished (and the cached list
	// follows at once).
	app.Do(t, http.MethodPut, "/editor/unpublish/id/"+c.ID, testkit.EditorToken, nil).Want(t, 200, "blog unpublished successfully")
	got = testkit.IDs(t, app.Do(t, http.MethodGet, "/list/similar/id/"+source.ID, "", nil).Want(t, 200, "success"))
	if want := []string{a.ID, f.ID, b.ID, i.ID, j.ID, d.ID}; !slices.Equal(got, want) {
		t.Fatalf("after unpublishing c: %v, want %v", got, want)
	}

	// A blog whose title shares nothing has no similar blogs.
	lonely := blog("lonely", "Xylophone", "Music", true)
	r = app.Do(t, http.MethodGet, "/list/similar/id/"+lonely.ID, "", nil).Want(t, 200, "success")
	if string(r.Data) != "[]" {
		t.Errorf("lonely: %s, want []", r.Data)
	}
}
