package kongpath

import "testing"

// Kong's behaviour (the Abc%20123 case is from Kong's own PDK tests) and the
// encodings a client may use to hide a route.
func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"/", "/"},
		{"/auth/signin/basic", "/auth/signin/basic"},
		{"/auth/%73ignin/basic", "/auth/signin/basic"},
		{"/%61uth/signin/basic", "/auth/signin/basic"},
		{"/%61UTH/signin/basic", "/aUTH/signin/basic"},
		{"/auth//signin/basic", "/auth/signin/basic"},
		{"//auth///signin/basic", "/auth/signin/basic"},
		{"/auth/./signin/basic", "/auth/signin/basic"},
		{"/auth/%2e/signin/basic", "/auth/signin/basic"},
		{"/blog/../auth/signin/basic", "/auth/signin/basic"},
		{"/blog/%2E%2E/auth/signin/basic", "/auth/signin/basic"},
		{"/../../auth", "/auth"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a/..", "/"},
		// Reserved characters stay encoded, hex upper-cased.
		{"/auth/signin%2fbasic", "/auth/signin%2Fbasic"},
		{"/a%3fb%23c%25d", "/a%3Fb%23c%25d"},
		// Other characters are decoded (and escaped again by Escape).
		{"/t/Abc%20123%C3%B8/parent/../test/.", "/t/Abc 123\u00f8/test/"},
		// Malformed triplets stay.
		{"/auth/%73ignin/basic%zz", "/auth/signin/basic%zz"},
		{"/a%", "/a%"},
		{"/a%4", "/a%4"},
		// A dot inside a segment is not a dot segment.
		{"/auth./signin/basic", "/auth./signin/basic"},
		{"/a/.b/..c", "/a/.b/..c"},
	} {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEscapeAndUnescape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/signin/basic", "/signin/basic"},
		{"/Abc 123\u00f8/x", "/Abc%20123%C3%B8/x"},
		{"/a%2Fb!$&'()*+,;=:@[]-_.~", "/a%2Fb!$&'()*+,;=:@[]-_.~"},
		{"/q\"<>\\^`{|}\x00\x7f", "/q%22%3C%3E%5C%5E%60%7B%7C%7D%00%7F"},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"/auth/signin%2Fbasic", "/auth/signin/basic"},
		{"/auth/%73ignin/basic%zz", "/auth/signin/basic%zz"},
		{"/%", "/%"},
		{"/%2", "/%2"},
		{"/%252F", "/%2F"},
	} {
		if got := Unescape(c.in); got != c.want {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSanitizePostfix(t *testing.T) {
	for in, want := range map[string]string{
		"": "", ".": "", "..": "", "./signin/basic": "signin/basic", "../signin": "signin",
		"/signin": "/signin", ".x": ".x",
	} {
		if got := SanitizePostfix(in); got != want {
			t.Errorf("SanitizePostfix(%q) = %q, want %q", in, got, want)
		}
	}
}
