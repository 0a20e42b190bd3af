package author

import "testing"

func TestFormatSlug(t *testing.T) {
	for in, want := range map[string]string{
		"a b/c?d":          "ab-cd",
		"qg basics 123":    "qgbasics123",
		"Keep-Case_Here":   "Keep-Case_Here",
		"  ? ":             "",
		"path/to/the/post": "path-to-the-post",
	} {
		if got := FormatSlug(in); got != want {
			t.Errorf("FormatSlug(%q) = %q, want %q", in, got, want)
		}
	}
	if !slugTooShort("ab") || slugTooShort("abc") || slugTooShort("ééé") {
		t.Error("slugTooShort counts characters, minimum 3")
	}
}
