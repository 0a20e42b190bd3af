package tests

import (
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/internal/testkit"
)

// redisState is every key of the app's Redis database with its type and,
// for strings, its value.
type redisState map[string]string

func snapshot(t *testing.T, app *testkit.App) redisState {
	t.Helper()
	ctx := context.Background()
	state := redisState{}
	for _, k := range redisKeys(t, app, "*") {
		typ, err := app.Redis.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("type %s: %v", k, err)
		}
		if typ == "string" {
			v, err := app.Redis.Get(ctx, k).Result()
			if err != nil {
				continue // expired between the scan and the read
			}
			state[k] = "string:" + v
		} else {
			state[k] = typ
		}
	}
	return state
}

// diff lists the keys added, removed and changed from s to after.
func (s redisState) diff(after redisState) (added, removed, changed []string) {
	for k, v := range after {
		if old, ok := s[k]; !ok {
			added = append(added, k)
		} else if old != v {
			changed = append(changed, k)
		}
	}
	for k := range s {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}

// isControlKey: the blog keys' generations and the list families' version
// keys, which a write may change and nothing else may.
func isControlKey(k string) bool {
	return strings.HasPrefix(k, blogcache.Prefix+"gen:") || strings.HasPrefix(k, blogcache.Prefix+"ver:")
}

// TestCacheKeysOutOfReachOfSlugsTagsAndIDs: slugs, tags and ids chosen to
// spell the cache's control keys (with and without the "blog_" of the
// blog keys), another blog's id, and list keys neither read nor write any
// key but their own: a public read of such a slug is a 404 before a blog
// has it and then that blog; a draft with such a slug removes only its own
// keys; a tag page is cached only under its own tag key. Afterwards an
// unpublish still removes the victim from every cached list.
func TestCacheKeysOutOfReachOfSlugsTagsAndIDs(t *testing.T) {
	app, _ := newApp(t)
	author, editor := testkit.AuthorToken, testkit.EditorToken
	page := "?page=1&limit=10"

	// Victim and sibling share title terms no other blog has, so the victim
	// is the sibling's most similar blog whatever else gets published.
	distinct := func(suffix string) map[string]any {
		b := testkit.NewBlogBody(suffix)
		b["title"] = "Zebra Xylophone " + suffix
		return b
	}
	victim := app.Create(t, author, distinct("victim"))
	app.Publish(t, author, victim.ID)
	sibling := app.Create(t, author, distinct("sibling"))
	app.Publish(t, author, sibling.ID)
	big := "?page=1&limit=100" // still a cached page size
	lists := []probe{
		{"/list/latest" + big, ""}, {"/list/tag/SCIENCE" + big, ""}, {"/list/similar/id/" + sibling.ID, ""},
		{"/author/published" + big, author}, {"/editor/published" + big, editor},
	}
	fill := func() {
		t.Helper()
		app.Do(t, http.MethodGet, "/id/"+victim.ID, "", nil).Want(t, 200, "success")
		app.Do(t, http.MethodGet, "/slug/"+victim.Slug, "", nil).Want(t, 200, "success")
		for _, l := range lists {
			ids := testkit.IDs(t, app.Do(t, http.MethodGet, l.path, l.token, nil).Want(t, 200, "success"))
			if !slices.Contains(ids, victim.ID) {
				t.Fatalf("%s does not list the victim", l.path)
			}
		}
	}
	fill()
	victimKey := blogcache.BlogKey(victim.ID)
	if snapshot(t, app)[victimKey] == "" {
		t.Fatal("victim not cached by id")
	}
	listKeys := redisKeys(t, app, blogcache.Prefix+"latest:*")
	if len(listKeys) != 1 {
		t.Fatalf("latest keys %v", listKeys)
	}
	latestKey := listKeys[0]

	slugs := []struct{ name, slug string }{
		{"generation, old name", "cache_gen"},
		{"generation, old name with prefix", "blog_cache_gen"},
		{"generation", blogcache.GenerationKey(victimKey)},
		{"generation without blog", strings.TrimPrefix(blogcache.GenerationKey(victimKey), "blog")},
		{"generation's slot tag", "{" + victimKey + "}"},
		{"public lists track set, old name", "cache_track_public_lists"},
		{"similar track set, old name", "cache_track_similar"},
		{"editor track set, old name", "cache_track_editor_lists"},
		{"author track set, old name", "cache_track_author_" + testkit.Author.ID},
		{"public version", blogcache.Prefix + "ver:{public-0}"},
		{"public version without prefix", "ver:{public-0}"},
		{"another blog's id", victim.ID},
		{"a live list key", latestKey},
		{"a live list key without blog", strings.TrimPrefix(latestKey, "blog")},
		{"old list key", "blogs_latest_1_10"},
		{"old similar key", "similar_blogs_" + sibling.ID},
	}
	for i, tc := range slugs {
		t.Run("slug "+tc.name, func(t *testing.T) {
			before := snapshot(t, app)
			app.Do(t, http.MethodGet, "/slug/"+tc.slug, "", nil).Want(t, 404, "blog not found")
			if added, removed, changed := before.diff(snapshot(t, app)); len(added)+len(removed)+len(changed) > 0 {
				t.Errorf("a 404 touched keys: added %v removed %v changed %v", added, removed, changed)
			}

			body := testkit.NewBlogBody("hostile" + string(rune('a'+i)))
			body["slug"] = tc.slug
			before = snapshot(t, app)
			b := app.Create(t, author, body)
			if b.Slug != tc.slug {
				t.Fatalf("slug stored as %q", b.Slug)
			}
			settleRefreshes(t, app)
			added, removed, changed := before.diff(snapshot(t, app))
			own := []string{blogcache.BlogKey(b.ID), blogcache.SlugKey(b.Slug)}
			for _, k := range removed {
				if !slices.Contains(own, k) {
					t.Errorf("creating a draft with slug %q removed %s", tc.slug, k)
				}
			}
			for _, k := range append(added, changed...) {
				if !isControlKey(k) && !isFirstPage(k) {
					t.Errorf("creating a draft with slug %q wrote %s", tc.slug, k)
				}
			}

			app.Publish(t, author, b.ID)
			settleRefreshes(t, app)
			before = snapshot(t, app)
			var got testkit.Blog
			app.Do(t, http.MethodGet, "/slug/"+tc.slug, "", nil).Want(t, 200, "success").Decode(t, &got)
			if got.ID != b.ID {
				t.Errorf("slug %q served blog %s, want %s", tc.slug, got.ID, b.ID)
			}
			added, removed, changed = before.diff(snapshot(t, app))
			if !slices.Equal(added, []string{blogcache.SlugKey(tc.slug)}) || len(removed)+len(changed) > 0 {
				t.Errorf("reading slug %q: added %v removed %v changed %v, want only %s added",
					tc.slug, added, removed, changed, blogcache.SlugKey(tc.slug))
			}
			var byID testkit.Blog
			app.Do(t, http.MethodGet, "/id/"+victim.ID, "", nil).Want(t, 200, "success").Decode(t, &byID)
			if byID.ID != victim.ID {
				t.Errorf("the victim's id now serves %s", byID.ID)
			}
		})
	}

	// The id of a path is written in lower case whatever the client sent.
	t.Run("id in upper case", func(t *testing.T) {
		before := snapshot(t, app)
		var got testkit.Blog
		app.Do(t, http.MethodGet, "/id/"+strings.ToUpper(victim.ID), "", nil).Want(t, 200, "success").Decode(t, &got)
		if got.ID != victim.ID {
			t.Errorf("served %s", got.ID)
		}
		added, _, _ := before.diff(snapshot(t, app))
		for _, k := range added {
			if k != victimKey {
				t.Errorf("upper-case id wrote %s", k)
			}
		}
	})

	tags := []struct{ name, tag string }{
		{"list kind", "LATEST"},
		{"generation name", "CACHE_GEN"},
		{"prefix", "BLOGCACHE"},
		{"a page number", "1"},
		{"another blog's id", strings.ToUpper(victim.ID)},
	}
	for i, tc := range tags {
		t.Run("tag "+tc.name, func(t *testing.T) {
			path := "/list/tag/" + tc.tag + page
			before := snapshot(t, app)
			if ids := testkit.IDs(t, app.Do(t, http.MethodGet, path, "", nil).Want(t, 200, "success")); len(ids) != 0 {
				t.Fatalf("unused tag listed %v", ids)
			}
			if added, removed, changed := before.diff(snapshot(t, app)); len(added)+len(removed)+len(changed) > 0 {
				t.Errorf("an empty tag page touched keys: added %v removed %v changed %v", added, removed, changed)
			}
			body := testkit.NewBlogBody("tagged" + string(rune('a'+i)))
			body["tags"] = []string{tc.tag}
			b := app.Create(t, author, body)
			app.Publish(t, author, b.ID)
			settleRefreshes(t, app)
			before = snapshot(t, app)
			ids := testkit.IDs(t, app.Do(t, http.MethodGet, path, "", nil).Want(t, 200, "success"))
			if !slices.Equal(ids, []string{b.ID}) {
				t.Errorf("tag %s lists %v, want only %s", tc.tag, ids, b.ID)
			}
			after := snapshot(t, app)
			added, removed, changed := before.diff(after)
			want := ":" + hex.EncodeToString([]byte(tc.tag)) + ":1:10"
			// The page was read (empty) before the publish, so the publish's
			// background refresh may have stored it before this read did.
			var tagKeys []string
			for k := range after {
				if strings.HasPrefix(k, blogcache.Prefix+"tag:") && strings.HasSuffix(k, want) {
					tagKeys = append(tagKeys, k)
				}
			}
			if len(tagKeys) != 1 || len(added) > 1 || len(added) == 1 && added[0] != tagKeys[0] || len(removed)+len(changed) > 0 {
				t.Errorf("tag %s: added %v removed %v changed %v, cached %v; want one tag key ending %s", tc.tag, added, removed, changed, tagKeys, want)
			}
		})
	}

	// Invalidation still reaches every cached list and key of the victim.
	fill()
	app.Do(t, http.MethodPut, "/editor/unpublish/id/"+victim.ID, editor, nil).Want(t, 200, "blog unpublished successfully")
	app.Do(t, http.MethodGet, "/id/"+victim.ID, "", nil).Want(t, 404, "blog not found")
	app.Do(t, http.MethodGet, "/slug/"+victim.Slug, "", nil).Want(t, 404, "blog not found")
	for _, l := range lists {
		if ids := testkit.IDs(t, app.Do(t, http.MethodGet, l.path, l.token, nil).Want(t, 200, "success")); slices.Contains(ids, victim.ID) {
			t.Errorf("%s still lists the unpublished blog", l.path)
		}
	}
}
