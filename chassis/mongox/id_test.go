package mongox

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestIsObjectIDHex(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"5f0c8a1b2c3d4e5f60718293", true},
		{"5F0C8A1B2C3D4E5F60718293", true},
		{"", false},
		{"5f0c8a1b2c3d4e5f6071829", false},   // 23 characters
		{"5f0c8a1b2c3d4e5f607182930", false}, // 25 characters
		{"5f0c8a1b2c3d4e5f6071829g", false},  // not hexadecimal
		{"5f0c8a1b2c3d4e5f6071829 ", false},
	} {
		if got := IsObjectIDHex(tc.in); got != tc.want {
			t.Errorf("IsObjectIDHex(%q) = %v, want %v", tc.in, got, tc.want)
		}
		// The rule agrees with the driver's parser, so an accepted id never
		// fails later in the store.
		_, err := bson.ObjectIDFromHex(tc.in)
		if (err == nil) != tc.want {
			t.Errorf("bson.ObjectIDFromHex(%q) error = %v, rule says %v", tc.in, err, tc.want)
		}
	}
}
