package config

import (
	"strings"
	"testing"

	chassisconfig "blogplatform/chassis/config"
)

// TestPublishedEdits: BLOG_PUBLISHED_EDITS is live (the default) or review;
// anything else is refused with a line naming the variable.
func TestPublishedEdits(t *testing.T) {
	for _, tc := range []struct {
		value, want string
		valid       bool
	}{
		{"", PublishedEditsLive, true},
		{"live", PublishedEditsLive, true},
		{"review", PublishedEditsReview, true},
		{"REVIEW", "", false},
		{"off", "", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			vars := map[string]string{}
			if tc.value != "" {
				vars["BLOG_PUBLISHED_EDITS"] = tc.value
			}
			c, err := Load(chassisconfig.FromMap(vars))
			switch {
			case tc.valid && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.valid && c.PublishedEdits != tc.want:
				t.Errorf("PublishedEdits = %q, want %q", c.PublishedEdits, tc.want)
			case !tc.valid && (err == nil || !strings.Contains(err.Error(), "BLOG_PUBLISHED_EDITS=")):
				t.Errorf("invalid value: error %v", err)
			}
		})
	}
}
