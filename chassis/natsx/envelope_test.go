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

// Encode writes the bytes the envelope's own encoding gives.
func TestEncodeMatchesEnvelopeMarshal(t *testing.T) {
	for _, v := range []any{nil, "<a&b>", 5, []string{}, map[string]any{"a": []int{1, 2}, "b": "\u2028"}, struct {
		X *int `json:"x"`
	}{}} {
		got, err := Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(v)
		want, _ := json.Marshal(Message{Data: data})
		if string(got) != string(want) {
			t.Errorf("Encode(%v) = %s, want %s", v, got, want)
		}
	}
}
