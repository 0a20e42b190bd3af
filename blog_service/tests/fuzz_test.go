package tests

import (
	"encoding/json"
	"net/http"
	"testing"

	"blogplatform/blog_service/internal/testkit"
)

// FuzzAuthorBodies sends arbitrary bytes as the create and the update body:
// whatever they are, the answer is an envelope and never a 5xx. The seed
// corpus runs with every `go test`; `go test -fuzz FuzzAuthorBodies ./tests/`
// explores further.
func FuzzAuthorBodies(f *testing.F) {
	testkit.StartFakeAuth(f, env.NATSURL(), testkit.Normal, 0)
	app := testkit.NewApp(f, env, redisDBs, nil)
	existing := app.Create(f, testkit.AuthorToken, testkit.NewBlogBody("fuzz"))

	valid, _ := json.Marshal(testkit.NewBlogBody("seed"))
	for _, seed := range []string{
		string(valid),
		`{}`, ``, `null`, `[]`, `"text"`, `{"title":`, `{"title":"abc"} {}`,
		`{"title":{"$ne":null}}`, `{"_id":{"$gt":""}}`, `{"_id":"` + existing.ID + `","title":"Fuzzed title"}`,
		`{"_id":"` + existing.ID + `","slug":"  /?  "}`, `{"_id":"zzzzzzzzzzzzzzzzzzzzzzzz"}`,
		`{"tags":[1,2,3]}`, `{"tags":"GO"}`, `{"tags":[null]}`, `{"title":"\u0000\ud800"}`,
		`{"title":"ok title","description":"ok description","draftText":"x","slug":"s l u g","imgUrl":"/rel","tags":["A"]}`,
		`{"title":1e999}`, `{"draftText":"` + string(make([]byte, 100)) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, method := range []string{http.MethodPost, http.MethodPut} {
			r := app.Do(t, method, "/author", testkit.AuthorToken, body)
			if r.Status >= 500 {
				t.Fatalf("%s %q: %d %q", method, body, r.Status, r.Message)
			}
		}
	})
}
