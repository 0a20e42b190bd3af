package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"

	"blogplatform/blog_service/internal/testkit"
)

// keysOf lists the JSON keys of an object, sorted.
func keysOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func wantKeys(t *testing.T, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keysOf(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v", what, got, want)
	}
}

// listed reports whether id is on the first page (limit 1000) of a list.
func listed(t *testing.T, app *testkit.App, path, token, id string) bool {
	t.Helper()
	r := app.Do(t, http.MethodGet, path+"?page=1&limit=1000", token, nil).Want(t, 200, "success")
	return slices.Contains(testkit.IDs(t, r), id)
}

// TestStateMachine walks one blog through every transition of the reference
// state machine, checking each view's shape and where the blog is listed.
// Public reads run between the writes, so the cache is filled and must
// follow every write at once.
func TestStateMachine(t *testing.T) {
	app, auth := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken

	// Create: a draft; imgUrl is stored; the author has no email.
	r := app.Do(t, http.MethodPost, "/author", author, testkit.NewBlogBody("sm")).Want(t, 200, "blog created successfully")
	wantKeys(t, "PrivateBlog after create", r.Data, "_id", "title", "description", "draftText", "slug", "author", "imgUrl",
		"score", "tags", "submitted", "drafted", "published", "createdAt", "updatedAt")
	var b testkit.Blog
	r.Decode(t, &b)
	if b.Slug != "qgbasicssm" || *b.Drafted != true || *b.Submitted || *b.Published || b.Score != 0.01 || b.ImgURL != "https://x.io/a.png" {
		t.Fatalf("created blog: %s", r.Data)
	}
	var created struct {
		Author json.RawMessage `json:"author"`
	}
	r.Decode(t, &created)
	wantKeys(t, "author", created.Author, "_id", "name", "profilePicUrl")
	if b.Author.ID != testkit.Author.ID || b.Author.Name != testkit.Author.Name {
		t.Errorf("author = %+v", b.Author)
	}
	id, slug := b.ID, b.Slug
	publicPaths := []string{"/id/" + id, "/slug/" + slug}
	assertPublic := func(status int) {
		t.Helper()
		for _, p := range publicPaths {
			msg := "success"
			if status == 404 {
				msg = "blog not found"
			}
			app.Do(t, http.MethodGet, p, "", nil).Want(t, status, msg)
		}
	}
	assertPublic(404)
	if !listed(t, app, "/author/drafts", author, id) || listed(t, app, "/author/submitted", author, id) {
		t.Error("new blog: want it in drafts only")
	}

	// Update: fields change, flags do not.
	r = app.Do(t, http.MethodPut, "/author", author, map[string]any{
		"_id": id, "title": "Quantum Gardening Advanced sm", "imgUrl": "https://x.io/b.png", "draftText": "final body",
	}).Want(t, 200, "blog updated successfully")
	r.Decode(t, &b)
	if b.Title != "Quantum Gardening Advanced sm" || b.ImgURL != "https://x.io/b.png" || *b.DraftText != "final body" || !*b.Drafted {
		t.Fatalf("updated blog: %s", r.Data)
	}

	// Submit, withdraw, submit.
	app.Do(t, http.MethodPut, "/author/submit/id/"+id, author, nil).Want(t, 200, "blog submitted successfully")
	if !listed(t, app, "/author/submitted", author, id) || !listed(t, app, "/editor/submitted", editor, id) {
		t.Error("submitted blog missing from the submitted lists")
	}
	app.Do(t, http.MethodPut, "/author/withdraw/id/"+id, author, nil).Want(t, 200, "blog withdrawn successfully")
	if listed(t, app, "/editor/submitted", editor, id) || listed(t, app, "/author/submitted", author, id) {
		t.Error("withdrawn blog still in a submitted list")
	}
	app.Do(t, http.MethodPut, "/author/submit/id/"+id, author, nil).Want(t, 200, "blog submitted successfully")
	r = app.Do(t, http.MethodGet, "/editor/id/"+id, editor, nil).Want(t, 200, "success")
	r.Decode(t, &b)
	if !*b.Submitted {
		t.Error("editor view: not submitted")
	}

	// Publish: public everywhere.
	app.Do(t, http.MethodPut, "/editor/publish/id/"+id, editor, nil).Want(t, 200, "blog published successfully")
	r = app.Do(t, http.MethodGet, "/id/"+id, "", nil).Want(t, 200, "success")
	wantKeys(t, "PublicBlog", r.Data, "_id", "title", "description", "text", "slug", "author", "imgUrl", "score", "tags", "publishedAt")
	r.Decode(t, &b)
	if *b.Text != "final body" || b.ImgURL != "https://x.io/b.png" || !slices.Equal(b.Tags, []string{"SCIENCE", "GARDEN"}) || b.Score != 0.01 {
		t.Fatalf("public blog: %s", r.Data)
	}
	firstPublishedAt := *b.PublishedAt
	app.Do(t, http.MethodGet, "/slug/"+slug, "", nil).Want(t, 200, "success").Decode(t, &b)
	if b.ID != id {
		t.Errorf("by slug: _id %s", b.ID)
	}
	for _, l := range []struct{ path, token string }{
		{"/list/latest", ""}, {"/list/tag/SCIENCE", ""}, {"/list/tag/GARDEN", ""},
		{"/editor/published", editor}, {"/author/published", author},
	} {
		if !listed(t, app, l.path, l.token, id) {
			t.Errorf("published blog missing from %s", l.path)
		}
	}
	if listed(t, app, "/author/drafts", author, id) || listed(t, app, "/editor/submitted", editor, id) {
		t.Error("published blog still a draft or submitted")
	}
	r = app.Do(t, http.MethodGet, "/list/latest?page=1&limit=10", "", nil)
	var items []json.RawMessage
	r.Decode(t, &items)
	wantKeys(t, "ItemBlog", items[0], "_id", "title", "description", "slug", "imgUrl", "score", "tags")
	r = app.Do(t, http.MethodGet, "/author/published?page=1&limit=10", author, nil)
	r.Decode(t, &items)
	wantKeys(t, "InfoBlog", items[0], "_id", "title", "description", "slug", "imgUrl", "score", "tags")

	// Unpublish: gone from public reads at once (they were cached above).
	app.Do(t, http.MethodPut, "/editor/unpublish/id/"+id, editor, nil).Want(t, 200, "blog unpublished successfully")
	assertPublic(404)
	for _, l := range []struct{ path, token string }{
		{"/list/latest", ""}, {"/list/tag/SCIENCE", ""}, {"/editor/published", editor}, {"/author/published", author},
	} {
		if listed(t, app, l.path, l.token, id) {
			t.Errorf("unpublished blog still in %s", l.path)
		}
	}
	r = app.Do(t, http.MethodGet, "/author/id/"+id, author, nil).Want(t, 200, "success")
	r.Decode(t, &b)
	if !*b.Drafted || *b.Published || b.Text == nil || *b.Text != "final body" {
		t.Errorf("unpublished blog: %s", r.Data)
	}

	// Edit and publish again: the new public text and the author's current
	// name (refreshed at publish); publishedAt is kept.
	app.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": id, "title": "Quantum Gardening Expert sm", "draftText": "second body"}).
		Want(t, 200, "blog updated successfully")
	auth.Rename(testkit.Author.ID, "Ada Renamed")
	app.Publish(t, author, id)
	r = app.Do(t, http.MethodGet, "/slug/"+slug, "", nil).Want(t, 200, "success")
	r.Decode(t, &b)
	if b.Title != "Quantum Gardening Expert sm" || *b.Text != "second body" || b.Author.Name != "Ada Renamed" || *b.PublishedAt != firstPublishedAt {
		t.Errorf("republished blog: %s (first publishedAt %s)", r.Data, firstPublishedAt)
	}

	// Delete: gone everywhere; the slug stays reserved.
	app.Do(t, http.MethodDelete, "/author/id/"+id, author, nil).Want(t, 200, "blog deleted successfully")
	assertPublic(404)
	app.Do(t, http.MethodGet, "/list/similar/id/"+id, "", nil).Want(t, 404, "blog not found")
	app.Do(t, http.MethodGet, "/author/id/"+id, author, nil).Want(t, 404, id+" not found")
	app.Do(t, http.MethodGet, "/editor/id/"+id, editor, nil).Want(t, 404, id+" not found")
	for _, l := range []struct{ path, token string }{
		{"/list/latest", ""}, {"/list/tag/SCIENCE", ""}, {"/editor/published", editor}, {"/author/published", author},
		{"/author/drafts", author}, {"/author/submitted", author}, {"/editor/submitted", editor},
	} {
		if listed(t, app, l.path, l.token, id) {
			t.Errorf("deleted blog still in %s", l.path)
		}
	}
	app.Do(t, http.MethodPost, "/author", author, withField(testkit.NewBlogBody("sm2"), "slug", slug)).
		Want(t, 400, "Blog with slug: "+slug+" already exists")
}

// TestOwnership: an author can neither see nor change another author's blog,
// and the blog is left as it was.
func TestOwnership(t *testing.T) {
	app, _ := newApp(t)
	theirs := app.Create(t, testkit.OtherAuthorToken, testkit.NewBlogBody("theirs"))
	before := app.Do(t, http.MethodGet, "/author/id/"+theirs.ID, testkit.OtherAuthorToken, nil).Want(t, 200, "success").Data

	me := testkit.AuthorToken
	app.Do(t, http.MethodGet, "/author/id/"+theirs.ID, me, nil).Want(t, 404, theirs.ID+" not found")
	app.Do(t, http.MethodPut, "/author", me, map[string]any{"_id": theirs.ID, "title": "Stolen title"}).
		Want(t, 404, "Blog with id: "+theirs.ID+" does not exist")
	app.Do(t, http.MethodPut, "/author/submit/id/"+theirs.ID, me, nil).Want(t, 404, "blog not found")
	app.Do(t, http.MethodPut, "/author/withdraw/id/"+theirs.ID, me, nil).Want(t, 404, "blog not found")
	app.Do(t, http.MethodDelete, "/author/id/"+theirs.ID, me, nil).Want(t, 404, "blog not found")
	if listed(t, app, "/author/drafts", me, theirs.ID) {
		t.Error("another author's draft in my drafts")
	}

	after := app.Do(t, http.MethodGet, "/author/id/"+theirs.ID, testkit.OtherAuthorToken, nil).Want(t, 200, "success").Data
	if string(before) != string(after) {
		t.Errorf("blog changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestPublishKeepsProfileWhenAuthCannotTell: publishing does not depend on
// auth.profile.user; when it fails the stored author profile stays.
func TestPublishKeepsProfileWhenAuthCannotTell(t *testing.T) {
	app, auth := newApp(t)
	b := app.Create(t, testkit.AuthorToken, testkit.NewBlogBody("prof"))
	auth.Rename(testkit.Author.ID, "Name auth cannot tell")
	auth.ProfileDown.Store(true)
	app.Publish(t, testkit.AuthorToken, b.ID)
	var pub testkit.Blog
	app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &pub)
	if pub.Author.Name != testkit.Author.Name || pub.Author.ProfilePicURL != *testkit.Author.ProfilePicURL {
		t.Errorf("author = %+v, want the profile stored at creation", pub.Author)
	}
}
