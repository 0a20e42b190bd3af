package tests

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"blogplatform/blog_service/blogcache"
	"blogplatform/blog_service/internal/testkit"
)

// A blog service configured by a full connection string (credentials and
// options; DB_HOST pointing nowhere) with stale reads allowed on
// secondaries and majority writes stores, publishes and lists: pages the
// cache keeps (read from the primary) and pages past the cache bounds
// (read with the configured read preference) both show the newest blogs.
func TestConnectionStringAndReadPolicies(t *testing.T) {
	testkit.StartFakeAuth(t, env.NATSURL(), testkit.Normal, 0)
	uri := "mongodb://blog:s3cret-pw@" + env.Store.Addr() + "/?authMechanism=PLAIN&appName=blog-uri-test" +
		"&maxPoolSize=4&serverSelectionTimeoutMS=1500"
	app := testkit.NewApp(t, env, redisDBs, testkit.Settings{
		"DB_URI": uri, "DB_HOST": "nowhere.invalid", "DB_READ_PREFERENCE": "secondaryPreferred", "DB_WRITE_CONCERN": "majority",
	})
	db := app.Runtime.DB
	if db.Database.Name() != app.DBName || db.ReadPreference != "secondaryPreferred" || db.WriteConcern != "majority" {
		t.Fatalf("database %s (want %s), stale reads %s, write concern %s", db.Database.Name(), app.DBName, db.ReadPreference, db.WriteConcern)
	}
	pages := blogcache.MaxCachedPage + 1
	var ids []string // newest first, as the lists show them
	for i := range pages {
		b := app.Create(t, testkit.AuthorToken, testkit.NewBlogBody(fmt.Sprintf("uri-%d", i)))
		app.Publish(t, testkit.AuthorToken, b.ID)
		ids = slices.Insert(ids, 0, b.ID)
	}
	for page := 1; page <= pages; page++ {
		for _, list := range []string{"/list/latest", "/list/tag/SCIENCE"} {
			got := testkit.IDs(t, app.Do(t, http.MethodGet, fmt.Sprintf("%s?page=%d&limit=1", list, page), "", nil).Want(t, 200, "success"))
			if len(got) != 1 || got[0] != ids[page-1] {
				t.Errorf("%s page %d: %v, want %s", list, page, got, ids[page-1])
			}
		}
	}
}
