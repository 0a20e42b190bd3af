package natsx

import (
	"encoding/json"
	"testing"
)

func TestGroupName(t *testing.T) {
	tests := []struct{ service, path, want string }{
		{"auth", "/", "auth"},
		{"auth", "/profile", "auth.profile"},
		{"blog", "/list", "blog.list"},
		{"blog", "/author/x", "blog.author.x"},
	}
	for _, tt := range tests {
		if got := GroupName(tt.service, tt.path); got != tt.want {
			t.Errorf("GroupName(%q,%q) = %q, want %q", tt.service, tt.path, got, tt.want)
		}
	}
}

func TestEnvelopeEncoding(t *testing.T) {
	b, err := Encode(map[string]string{"value": "x"})
	if err != nil || string(b) != `{"data":{"value":"x"}}` {
		t.Fatalf("%s %v", b, err)
	}
	var m Message
	if err := json.Unmarshal(EncodeError("401:x"), &m); err != nil || m.Error != "401:x" || m.Data != nil {
		t.Fatalf("%+v %v", m, err)
	}
}
