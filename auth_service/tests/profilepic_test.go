package tests

import (
	"encoding/json"
	"testing"
)

// TestSignUpProfilePicURL: a picture URL is stored only when it is an
// absolute http or https URL. Any other scheme (javascript: and data: are
// stored XSS for a client that renders the picture) is a 400 with a clear
// message and creates no account; a value that is no URI at all keeps the
// reference's message.
func TestSignUpProfilePicURL(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	const notHTTP = "profilePicUrl must be an absolute http or https URL"
	const notURL = "profilePicUrl is not a valid URL"
	tests := []struct {
		name, url string
		status    int
		message   string
	}{
		{"javascript", "javascript:alert(document.cookie)", 400, notHTTP},
		{"javascript with slashes", "javascript://example.com/%0Aalert(1)", 400, notHTTP},
		{"data", "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=", 400, notHTTP},
		{"vbscript", "vbscript:msgbox(1)", 400, notHTTP},
		{"file", "file:///etc/passwd", 400, notHTTP},
		{"ftp", "ftp://example.com/a.png", 400, notHTTP},
		{"relative path", "/images/a.png", 400, notHTTP},
		{"http without host", "http://", 400, notHTTP},
		{"not a uri", "notaurl", 400, notURL},
		{"empty", "", 400, notURL},
		{"http", "http://example.com/a.png", 200, "success"},
		{"https upper-case scheme", "HTTPS://cdn.example.com/u/1.png?s=64", 200, "success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email := uniqueEmail()
			pic, _ := json.Marshal(tt.url)
			res := r.do("POST", "/signup/basic", `{"email":"`+email+`","password":"secret1","name":"Pic Tester","profilePicUrl":`+string(pic)+`}`)
			expect(t, res, tt.status, tt.message)
			if tt.status == 200 {
				u, _ := res.data()["user"].(map[string]any)
				if u["profilePicUrl"] != tt.url {
					t.Errorf("stored profilePicUrl %v, want %q", u["profilePicUrl"], tt.url)
				}
				return
			}
			// Nothing was stored: the email is still free.
			expect(t, r.do("POST", "/signin/basic", signInBody(email, "secret1")), 404, "user not registered")
		})
	}
}
