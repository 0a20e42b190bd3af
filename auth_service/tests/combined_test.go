package tests

import (
	"reflect"
	"testing"
)

// TestNATSAuthenticateAuthorize: auth.authenticate.authorize answers what
// auth.authentication then auth.authorization answer in sequence: the user
// when it holds one of the roles, the authentication error (401) first, then
// the authorization error (403), each with the same text. Each case states
// its expected answer and is also checked against the two reference subjects.
func TestNATSAuthenticateAuthorize(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	learner := r.signUp()
	admin := r.signIn("admin@unusualcode.org", "changeit")
	gone := r.signUp()
	expect(t, r.do("DELETE", "/signout", "", "Authorization", gone.bearer()), 200, "signout success")

	adminData := map[string]any{"_id": admin.userID, "name": "Admin", "email": "admin@unusualcode.org"}
	learnerData := map[string]any{"_id": learner.userID, "name": "Learner One", "email": learner.email}
	tests := []struct {
		name, header, roles string // roles: a JSON array, or "" for none sent
		wantError           string
		wantData            map[string]any
	}{
		{"author", admin.bearer(), `["AUTHOR"]`, "", adminData},
		{"any of several roles", learner.bearer(), `["EDITOR","LEARNER"]`, "", learnerData},
		{"no header", "", `["AUTHOR"]`, "401:permission denied: missing Authorization", nil},
		{"other scheme", "Token x", `["AUTHOR"]`, "401:permission denied: invalid Authorization", nil},
		{"malformed token", "Bearer garbage", `["AUTHOR"]`, "401:token is malformed: token contains an invalid number of segments", nil},
		{"signed out", gone.bearer(), `["AUTHOR"]`, "401:permission denied: invalid access token", nil},
		// Authentication wins over authorization: a bad token with no
		// role is a 401, not a 403.
		{"no header and no role", "", `[]`, "401:permission denied: missing Authorization", nil},
		{"insufficient role", learner.bearer(), `["AUTHOR"]`, "403:permission denied: does not have sufficient role", nil},
		{"roles are case-sensitive", admin.bearer(), `["author"]`, "403:permission denied: does not have sufficient role", nil},
		{"empty roles", admin.bearer(), `[]`, "403:permission denied: role missing", nil},
		{"roles absent", admin.bearer(), "", "403:permission denied: role missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := `{"data":{"value":` + quoteJSON(tt.header)
			if tt.roles != "" {
				payload += `,"roles":` + tt.roles
			}
			payload += `}}`
			data, errText := s.natsReply("auth.authenticate.authorize", payload)
			if errText != tt.wantError || (tt.wantData == nil) != (data == nil) || (tt.wantData != nil && !reflect.DeepEqual(data, tt.wantData)) {
				t.Fatalf("got %v %q, want %v %q", data, errText, tt.wantData, tt.wantError)
			}

			// The same answer from the two reference subjects in sequence.
			refData, refErr := s.natsReply("auth.authentication", `{"data":{"value":`+quoteJSON(tt.header)+`}}`)
			if refErr == "" {
				user := `{"_id":"` + refData["_id"].(string) + `","name":"x","email":"x@y.z"}`
				roles := ""
				if tt.roles != "" {
					roles = `,"roles":` + tt.roles
				}
				refData, refErr = s.natsReply("auth.authorization", `{"data":{"user":`+user+roles+`}}`)
			}
			if refErr != errText || !reflect.DeepEqual(refData, data) {
				t.Fatalf("combined %v %q, the two reference subjects %v %q", data, errText, refData, refErr)
			}
		})
	}

	// Malformed messages get a 400 reply, like the reference subjects'.
	for payload, want := range map[string]string{
		`{"data":{}}`:                        "400:value is required",
		`{"data":{"roles":["AUTHOR"]}}`:      "400:value is required",
		`{"data":{"value":5}}`:               "",
		`{"data":{"value":"x","roles":"A"}}`: "",
		`not json`:                           "",
	} {
		_, errText := s.natsReply("auth.authenticate.authorize", payload)
		if len(errText) < 4 || errText[:4] != "400:" || (want != "" && errText != want) {
			t.Errorf("%s: error %q, want a 400 %s", payload, errText, want)
		}
	}
}
