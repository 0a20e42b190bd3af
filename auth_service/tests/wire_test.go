package tests

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"blogplatform/chassis/authwire"
)

// TestWireCompatibility serves the request fixtures of chassis/authwire (the
// reference's NATS payloads) to the real endpoints, with real tokens and ids
// substituted, and checks each reply against its reply fixture: error
// replies byte for byte, data replies by their exact field names.
func TestWireCompatibility(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	learner := r.signUp()
	admin := r.signIn("admin@unusualcode.org", "changeit")
	withPic := r.do("POST", "/signup/basic", `{"email":"`+uniqueEmail()+`","password":"secret1","name":"Ada","profilePicUrl":"https://example.com/ada.png"}`)
	expect(t, withPic, 200, "success")
	ada := sessionOf(t, withPic, "", "secret1")
	signedOut := r.signUp()
	expect(t, r.do("DELETE", "/signout", "", "Authorization", signedOut.bearer()), 200, "signout success")

	// Every fixture decodes into the shared wire types.
	for _, name := range authwire.FixtureNames() {
		var env struct {
			Data  json.RawMessage `json:"data"`
			Error string          `json:"error"`
		}
		if err := json.Unmarshal(authwire.Fixture(name), &env); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if env.Data == nil {
			continue
		}
		var target any = &authwire.User{}
		switch name {
		case "authentication_request", "authentication_request_empty", "profile_user_request":
			target = &authwire.Text{}
		case "authorization_request", "authorization_request_editor":
			target = &authwire.AuthorizationRequest{}
		}
		dec := json.NewDecoder(bytes.NewReader(env.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			t.Fatalf("%s does not decode into %T: %v", name, target, err)
		}
	}

	used := map[string]bool{}
	tests := []struct {
		name, subject, request string
		edit                   func(data map[string]any)
		reply                  string
		exact                  bool // compare the whole reply, not just field names
	}{
		{"authentication", "auth.authentication", "authentication_request",
			func(d map[string]any) { d["value"] = learner.bearer() }, "authentication_reply", false},
		{"authentication with picture", "auth.authentication", "authentication_request",
			func(d map[string]any) { d["value"] = ada.bearer() }, "authentication_reply_with_picture", false},
		{"authentication without header", "auth.authentication", "authentication_request_empty", nil, "authentication_error_missing", true},
		{"authentication signed out", "auth.authentication", "authentication_request",
			func(d map[string]any) { d["value"] = signedOut.bearer() }, "authentication_error_invalid_token", true},
		{"authorization", "auth.authorization", "authorization_request",
			func(d map[string]any) { d["user"].(map[string]any)["_id"] = admin.userID }, "authorization_reply", false},
		{"authorization insufficient role", "auth.authorization", "authorization_request_editor",
			func(d map[string]any) { d["user"].(map[string]any)["_id"] = learner.userID }, "authorization_error_role", true},
		{"authorization without roles", "auth.authorization", "authorization_request",
			func(d map[string]any) { d["user"].(map[string]any)["_id"] = admin.userID; d["roles"] = []any{} }, "authorization_error_no_roles", true},
		{"profile", "auth.profile.user", "profile_user_request",
			func(d map[string]any) { d["value"] = admin.userID }, "profile_user_reply", false},
		{"profile bad id", "auth.profile.user", "profile_user_request",
			func(d map[string]any) { d["value"] = "zzzzzzzzzzzzzzzzzzzzzzzz" }, "profile_user_error_bad_id", true},
		{"profile missing", "auth.profile.user", "profile_user_request", nil, "profile_user_error_missing", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used[tt.request], used[tt.reply] = true, true
			var req map[string]any
			if err := json.Unmarshal(authwire.Fixture(tt.request), &req); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(req["data"].(map[string]any))
			}
			payload, _ := json.Marshal(req)
			got := s.natsRequest(tt.subject, string(payload))
			want := string(authwire.Fixture(tt.reply))
			if tt.exact {
				if !jsonEqual(t, got, want) {
					t.Fatalf("reply %s, want %s", got, want)
				}
				return
			}
			if g, w := fieldPaths(t, got), fieldPaths(t, want); !reflect.DeepEqual(g, w) {
				t.Fatalf("reply fields %v, want %v (reply %s)", g, w, got)
			}
		})
	}
	for _, name := range authwire.FixtureNames() {
		if !used[name] {
			t.Errorf("fixture %s is not exercised", name)
		}
	}
	// The profile reply carries "email":"" like the reference.
	if got := s.natsRequest("auth.profile.user", `{"data":{"value":"`+admin.userID+`"}}`); !jsonEqual(t, got,
		`{"data":{"_id":"`+admin.userID+`","name":"Admin","email":""}}`) {
		t.Fatalf("profile reply %s", got)
	}
}

func fieldPaths(t testing.TB, raw string) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, c := range m {
				out = append(out, prefix+k)
				walk(prefix+k+".", c)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

func jsonEqual(t testing.TB, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
