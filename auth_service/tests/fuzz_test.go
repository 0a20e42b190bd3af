package tests

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzBodies are the seed corpus of both fuzz targets: valid bodies, every
// kind of wrong input, operator objects and oddities of JSON itself.
var fuzzBodies = []string{
	`{"email":"fuzz@example.com","password":"secret1","name":"Fuzz"}`,
	`{"email":"fuzz@example.com","password":"secret1","name":"Fuzz","profilePicUrl":"https://x.io/a.png"}`,
	`{"email":"fuzz@example.com","password":"secret1"}`,
	`{}`, ``, ` `, `null`, `[]`, `"text"`, `1e999`, `{"email":`, `{"email":"a"} {}`,
	`{"email":{"$gt":""},"password":{"$ne":null},"name":"x"}`,
	`{"email":["a@b.co"],"password":"secret1","name":"x"}`,
	`{"email":"a@b.co","password":"secret1","name":"x","profilePicUrl":null}`,
	`{"email":"a@b.co","password":"secret1","name":"x","profilePicUrl":"javascript:alert(1)"}`,
	`{"email":"a@b.co","email":"b@c.de","password":"secret1","name":"x"}`,
	`{"email":"\u0000@x.io","password":"\u0000\u0000\u0000\u0000\u0000\u0000","name":"\ud800"}`,
	`{"email":"a@b.co","password":"` + strings.Repeat("ü", 60) + `","name":"x"}`,
	`{"email":"a@b.co","password":"secret1","name":"` + strings.Repeat("n", 300) + `"}`,
	`{"__proto__":{"admin":true}}`,
	"\xff\xfe{\"email\":1}",
}

// fuzzHTTP posts body to path on a real replica and fails on a 5xx or a
// response that is not the documented envelope.
func fuzzHTTP(f *testing.F, path string) {
	s := newStack(f)
	r := s.replica(nil)
	for _, b := range fuzzBodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		r.Engine.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%q: %d %s", body, w.Code, w.Body.String())
		}
		decode(t, w.Code, w.Header(), w.Body.String())
		conformsToDocument(t, req, w.Code, w.Header(), w.Body.Bytes())
	})
}

func FuzzSignUpBody(f *testing.F) { fuzzHTTP(f, "/signup/basic") }

func FuzzSignInBody(f *testing.F) { fuzzHTTP(f, "/signin/basic") }
