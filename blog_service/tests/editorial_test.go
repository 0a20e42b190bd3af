package tests

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"blogplatform/blog_service/internal/testkit"
)

// reviewedState is what an editor saw: GET /editor/id/:id.
func reviewedState(t *testing.T, app *testkit.App, id string) testkit.Blog {
	t.Helper()
	var b testkit.Blog
	app.Do(t, http.MethodGet, "/editor/id/"+id, testkit.EditorToken, nil).Want(t, 200, "success").Decode(t, &b)
	return b
}

func notSubmitted(id string) string { return "blog for _id " + id + " is not submitted" }

// TestEditingASubmittedBlogWithdrawsIt: any edit of a submitted blog takes
// it back to draft, so the editor cannot publish it until it is submitted
// again, and then publishes the edited text.
func TestEditingASubmittedBlogWithdrawsIt(t *testing.T) {
	app, _ := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	for _, tc := range []struct {
		name string
		edit map[string]any
	}{
		{"draft text", map[string]any{"draftText": "edited after submit"}},
		{"title", map[string]any{"title": "A title the editor never saw"}},
		{"tags", map[string]any{"tags": []string{"EDITED"}}},
		{"imgUrl", map[string]any{"imgUrl": "https://x.io/other.png"}},
		{"slug", map[string]any{"slug": "edited-after-submit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := app.Create(t, author, testkit.NewBlogBody("withdraw-"+strings.ReplaceAll(tc.name, " ", "")))
			app.Do(t, http.MethodPut, "/author/submit/id/"+b.ID, author, nil).Want(t, 200, "blog submitted successfully")
			edit := map[string]any{"_id": b.ID}
			for k, v := range tc.edit {
				edit[k] = v
			}
			var edited testkit.Blog
			app.Do(t, http.MethodPut, "/author", author, edit).Want(t, 200, "blog updated successfully").Decode(t, &edited)
			if *edited.Submitted || !*edited.Drafted || *edited.Published {
				t.Errorf("after the edit: submitted %v drafted %v published %v, want a draft", *edited.Submitted, *edited.Drafted, *edited.Published)
			}
			if listed(t, app, "/editor/submitted", editor, b.ID) || listed(t, app, "/author/submitted", author, b.ID) {
				t.Error("the edited blog is still listed as submitted")
			}
			app.Do(t, http.MethodPut, "/editor/publish/id/"+b.ID, editor, nil).Want(t, 400, notSubmitted(b.ID))
			app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 404, "blog not found")

			app.Publish(t, author, b.ID)
			var public testkit.Blog
			app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &public)
			if *public.Text != *edited.DraftText || public.Title != edited.Title || public.Slug != edited.Slug {
				t.Errorf("published %q %q %q, want the edited %q %q %q", *public.Text, public.Title, public.Slug,
					*edited.DraftText, edited.Title, edited.Slug)
			}
		})
	}
}

// TestPublishRefusesAStateTheEditorDidNotReview: a publish that names the
// updatedAt the editor reviewed succeeds only while the blog is still in
// that state; without it, publishing works as before.
func TestPublishRefusesAStateTheEditorDidNotReview(t *testing.T) {
	app, _ := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	resubmitEdited := func(t *testing.T, id string) {
		app.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": id, "draftText": "swapped after review"}).
			Want(t, 200, "blog updated successfully")
		app.Do(t, http.MethodPut, "/author/submit/id/"+id, author, nil).Want(t, 200, "blog submitted successfully")
	}
	withdrawResubmit := func(t *testing.T, id string) {
		app.Do(t, http.MethodPut, "/author/withdraw/id/"+id, author, nil).Want(t, 200, "blog withdrawn successfully")
		app.Do(t, http.MethodPut, "/author/submit/id/"+id, author, nil).Want(t, 200, "blog submitted successfully")
	}
	type bodyFunc func(reviewed testkit.Blog) any
	stamp := func(r testkit.Blog) any { return map[string]any{"updatedAt": *r.UpdatedAt} }
	for _, tc := range []struct {
		name    string
		between func(t *testing.T, id string)
		body    bodyFunc
		status  int
		message func(id string, reviewed testkit.Blog) string
	}{
		{name: "reviewed state unchanged", body: stamp, status: 200},
		{name: "same instant in another offset", status: 200, body: func(r testkit.Blog) any {
			at, _ := time.Parse(time.RFC3339Nano, *r.UpdatedAt)
			return map[string]any{"updatedAt": at.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)}
		}},
		{name: "no body, as before", between: resubmitEdited, status: 200},
		{name: "empty object", between: resubmitEdited, body: func(testkit.Blog) any { return map[string]any{} }, status: 200},
		{name: "null updatedAt", body: func(testkit.Blog) any { return `{"updatedAt":null}` }, status: 200},
		{name: "edited and resubmitted since", between: resubmitEdited, body: stamp, status: 409},
		{name: "withdrawn and resubmitted since", between: withdrawResubmit, body: stamp, status: 409},
		{name: "malformed updatedAt", body: func(testkit.Blog) any { return map[string]any{"updatedAt": "yesterday"} }, status: 400,
			message: func(string, testkit.Blog) string {
				return "updatedAt must be the blog's updatedAt as an RFC 3339 date-time, e.g. 2024-07-01T10:00:00.123Z"
			}},
		{name: "unknown field", body: func(testkit.Blog) any { return map[string]any{"version": 3} }, status: 400,
			message: func(string, testkit.Blog) string { return `unknown field "version"` }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := app.Create(t, author, testkit.NewBlogBody("review-"+strings.ReplaceAll(tc.name, " ", "-")))
			app.Do(t, http.MethodPut, "/author/submit/id/"+b.ID, author, nil).Want(t, 200, "blog submitted successfully")
			reviewed := reviewedState(t, app, b.ID)
			if tc.between != nil {
				tc.between(t, b.ID)
			}
			var body any
			if tc.body != nil {
				body = tc.body(reviewed)
			}
			now := reviewedState(t, app, b.ID)
			r := app.Do(t, http.MethodPut, "/editor/publish/id/"+b.ID, editor, body)
			switch tc.status {
			case 200:
				r.Want(t, 200, "blog published successfully")
				var public testkit.Blog
				app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &public)
				if *public.Text != *now.DraftText {
					t.Errorf("published %q, the draft was %q", *public.Text, *now.DraftText)
				}
			case 409:
				r.Want(t, 409, "blog for _id "+b.ID+" changed since the reviewed state (updatedAt "+*reviewed.UpdatedAt+
					", now "+*now.UpdatedAt+"): review it again")
			default:
				r.Want(t, tc.status, tc.message(b.ID, reviewed))
			}
			if tc.status != 200 {
				after := reviewedState(t, app, b.ID)
				if *after.Published || !*after.Submitted || *after.UpdatedAt != *now.UpdatedAt {
					t.Errorf("a refused publish changed the blog: %+v", after)
				}
				app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 404, "blog not found")
			}
		})
	}
}

// TestPublishRaceNeverPublishesUnreviewedText: an author edit racing an
// editor's publish of the reviewed state either lands first (the publish is
// refused) or after it (it changes only the draft): the public text is
// always the one the editor reviewed.
func TestPublishRaceNeverPublishesUnreviewedText(t *testing.T) {
	app, _ := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	published := 0
	for i := 0; i < 10; i++ {
		b := app.Create(t, author, testkit.NewBlogBody("race"+string(rune('a'+i))))
		app.Do(t, http.MethodPut, "/author/submit/id/"+b.ID, author, nil).Want(t, 200, "blog submitted successfully")
		reviewed := reviewedState(t, app, b.ID)
		var wg sync.WaitGroup
		var publish testkit.Response
		wg.Add(2)
		go func() {
			defer wg.Done()
			app.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": b.ID, "draftText": "not reviewed"})
		}()
		go func() {
			defer wg.Done()
			publish = app.Do(t, http.MethodPut, "/editor/publish/id/"+b.ID, editor, map[string]any{"updatedAt": *reviewed.UpdatedAt})
		}()
		wg.Wait()
		switch publish.Status {
		case 200:
			published++
			var public testkit.Blog
			app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &public)
			if *public.Text != *reviewed.DraftText {
				t.Fatalf("published %q, the editor reviewed %q", *public.Text, *reviewed.DraftText)
			}
		case 409:
			app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 404, "blog not found")
		default:
			t.Fatalf("publish answered %d %s", publish.Status, publish.Message)
		}
	}
	t.Logf("%d of 10 publishes won the race", published)
}

// TestPublishedEditsSetting: BLOG_PUBLISHED_EDITS=live lets the author
// change what a published blog shows at once (the reference's behaviour
// and the default); review refuses those changes with 409 while it is
// published and leaves the public view as the editor published it. The
// draft text, which is not public, can always change.
func TestPublishedEditsSetting(t *testing.T) {
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	for _, mode := range []string{"", "live", "review"} {
		settings := testkit.Settings{}
		if mode != "" {
			settings["BLOG_PUBLISHED_EDITS"] = mode
		}
		app := testkit.NewApp(t, env, redisDBs, settings)
		author := testkit.AuthorToken
		for _, tc := range []struct {
			field  string
			value  any
			public bool // shown by the public view
			shown  func(b testkit.Blog) any
		}{
			{"title", "A title nobody reviewed", true, func(b testkit.Blog) any { return b.Title }},
			{"description", "A description nobody reviewed", true, func(b testkit.Blog) any { return b.Description }},
			{"slug", "unreviewed-slug-" + mode, true, func(b testkit.Blog) any { return b.Slug }},
			{"imgUrl", "https://x.io/unreviewed.png", true, func(b testkit.Blog) any { return b.ImgURL }},
			{"tags", "UNREVIEWED", true, func(b testkit.Blog) any { return strings.Join(b.Tags, ",") }},
			{"draftText", "next version", false, nil},
		} {
			t.Run(mode+"/"+tc.field, func(t *testing.T) {
				b := app.Create(t, author, testkit.NewBlogBody("edits-"+mode+"-"+tc.field))
				app.Publish(t, author, b.ID)
				var before testkit.Blog
				app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &before)
				value := tc.value
				if tc.field == "tags" {
					value = []string{tc.value.(string)}
				}
				r := app.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": b.ID, tc.field: value})
				var after testkit.Blog
				if mode == "review" && tc.public {
					r.Want(t, 409, "blog for _id "+b.ID+" is published: its "+tc.field+
						" can change only through an editor's review (unpublish, edit, submit, publish)")
					app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &after)
					if after.Title != before.Title || after.Slug != before.Slug || after.ImgURL != before.ImgURL ||
						after.Description != before.Description || strings.Join(after.Tags, ",") != strings.Join(before.Tags, ",") {
						t.Errorf("public view changed: %+v", after)
					}
					// The same value again is no change.
					same := map[string]any{"_id": b.ID, "title": before.Title}
					app.Do(t, http.MethodPut, "/author", author, same).Want(t, 200, "blog updated successfully")
					return
				}
				r.Want(t, 200, "blog updated successfully")
				app.Do(t, http.MethodGet, "/id/"+b.ID, "", nil).Want(t, 200, "success").Decode(t, &after)
				if tc.public && tc.shown(after) != tc.value {
					t.Errorf("live edit of %s not public: %v", tc.field, tc.shown(after))
				}
				if !tc.public && *after.Text != *before.Text {
					t.Errorf("a draft edit changed the public text to %q", *after.Text)
				}
			})
		}
	}
}

// TestPicturesMustBeWebURLs: imgUrl accepts only absolute http(s) URLs, on
// create and on update; anything else is a 400 and nothing is stored.
func TestPicturesMustBeWebURLs(t *testing.T) {
	app, _ := newApp(t)
	author := testkit.AuthorToken
	existing := app.Create(t, author, testkit.NewBlogBody("pictures"))
	const message = "imgUrl must be an absolute http or https URL"
	for _, tc := range []struct{ name, url, message string }{
		{"javascript", "javascript:alert(document.cookie)", message},
		{"javascript, mixed case", "JavaScript:alert(1)", message},
		{"data", "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=", message},
		{"vbscript", "vbscript:msgbox(1)", message},
		{"relative path", "/img/a.png", message},
		{"protocol-relative", "//x.io/a.png", message},
		{"ftp", "ftp://x.io/a.png", message},
		{"no host", "https:///a.png", message},
		{"not a URI", "not a uri", "imgUrl must be a valid URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := app.CountBlogs(t)
			body := testkit.NewBlogBody("pic-" + strings.ReplaceAll(tc.name, " ", "-"))
			body["imgUrl"] = tc.url
			app.Do(t, http.MethodPost, "/author", author, body).Want(t, 400, tc.message)
			if app.CountBlogs(t) != count {
				t.Error("a refused create stored a blog")
			}
			app.Do(t, http.MethodPut, "/author", author, map[string]any{"_id": existing.ID, "imgUrl": tc.url}).Want(t, 400, tc.message)
			var stored testkit.Blog
			app.Do(t, http.MethodGet, "/author/id/"+existing.ID, author, nil).Want(t, 200, "success").Decode(t, &stored)
			if stored.ImgURL != existing.ImgURL {
				t.Errorf("imgUrl stored as %q", stored.ImgURL)
			}
		})
	}
	for _, ok := range []string{"https://x.io/a.png", "http://x.io/a.png?w=100#top", "HTTPS://X.IO/A.PNG"} {
		body := testkit.NewBlogBody("pic-ok-" + strings.ToLower(ok[:5]) + ok[len(ok)-3:])
		body["imgUrl"] = ok
		if b := app.Create(t, author, body); b.ImgURL != ok {
			t.Errorf("imgUrl %q stored as %q", ok, b.ImgURL)
		}
	}
}
