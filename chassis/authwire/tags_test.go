package authwire

import (
	"slices"
	"testing"
)

func TestChangeTags(t *testing.T) {
	tests := []struct {
		name   string
		change Change
		want   []string
	}{
		{"SessionEnded", Change{Kind: ChangeSession, UserID: "U1", SessionID: "j1"}, []string{"session:j1"}},
		{"SessionWithoutIDDropsTheUser", Change{Kind: ChangeSession, UserID: "U1"}, []string{"user:u1"}},
		{"UserChangedAnyCase", Change{Kind: ChangeUser, UserID: "AbC"}, []string{"user:abc"}},
		{"APIKey", Change{Kind: ChangeAPIKey, APIKeyHash: "ff"}, []string{"apikey:ff"}},
		{"UserWithoutID", Change{Kind: ChangeUser}, nil},
		{"UnknownKind", Change{Kind: "blog", UserID: "u"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.change.Tags(); !slices.Equal(got, tt.want) {
				t.Errorf("Tags(%+v) = %v, want %v", tt.change, got, tt.want)
			}
		})
	}
	// What a cache tags its entries with matches what an event drops.
	if event := (Change{Kind: ChangeUser, UserID: "abc"}); UserTag("AbC") != event.Tags()[0] {
		t.Error("a user tag and a user event disagree on letter case")
	}
}
