package tests

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestNATSEndpoints: every subject's answers and errors (the payloads of
// chassis/authwire; a malformed message gets a "400:<message>" reply),
// malformed messages included; the service keeps serving afterwards.
func TestNATSEndpoints(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	learner := r.signUp()
	admin := r.signIn("admin@unusualcode.org", "changeit")
	withPic := r.do("POST", "/signup/basic", `{"email":"`+uniqueEmail()+`","password":"secret1","name":"Ada","profilePicUrl":"https://x.io/ada.png"}`)
	expect(t, withPic, 200, "success")
	ada := sessionOf(t, withPic, withPic.data()["user"].(map[string]any)["email"].(string), "secret1")
	user := func(id string) string { return `{"_id":"` + id + `","name":"x","email":"x@y.z"}` }

	tests := []struct {
		name, subject, payload string
		wantError              string
		wantData               map[string]any
	}{
		{"authentication ok", "auth.authentication", `{"data":{"value":"` + learner.bearer() + `"}}`, "",
			map[string]any{"_id": learner.userID, "name": "Learner One", "email": learner.email}},
		{"authentication with picture", "auth.authentication", `{"data":{"value":"` + ada.bearer() + `"}}`, "",
			map[string]any{"_id": ada.userID, "name": "Ada", "email": ada.email, "profilePicUrl": "https://x.io/ada.png"}},
		{"authentication empty", "auth.authentication", `{"data":{"value":""}}`, "401:permission denied: missing Authorization", nil},
		{"authentication no value", "auth.authentication", `{"data":{}}`, "400:value is required", nil},
		{"authentication other scheme", "auth.authentication", `{"data":{"value":"Token x"}}`, "401:permission denied: invalid Authorization", nil},
		{"authentication garbage", "auth.authentication", `{"data":{"value":"Bearer garbage"}}`, "401:token is malformed: token contains an invalid number of segments", nil},
		{"authentication wrong type", "auth.authentication", `{"data":{"value":5}}`, "400:malformed message: cannot unmarshal number into Go struct field AuthenticationRequest.value of type string", nil},
		{"authorization ok", "auth.authorization", `{"data":{"user":` + user(admin.userID) + `,"roles":["AUTHOR"]}}`, "",
			map[string]any{"_id": admin.userID, "name": "Admin", "email": "admin@unusualcode.org"}},
		{"authorization any of several", "auth.authorization", `{"data":{"user":` + user(learner.userID) + `,"roles":["EDITOR","LEARNER"]}}`, "",
			map[string]any{"_id": learner.userID, "name": "Learner One", "email": learner.email}},
		{"authorization insufficient", "auth.authorization", `{"data":{"user":` + user(learner.userID) + `,"roles":["AUTHOR"]}}`, "403:permission denied: does not have sufficient role", nil},
		{"authorization case-sensitive", "auth.authorization", `{"data":{"user":` + user(admin.userID) + `,"roles":["author"]}}`, "403:permission denied: does not have sufficient role", nil},
		{"authorization no roles", "auth.authorization", `{"data":{"user":` + user(admin.userID) + `,"roles":[]}}`, "403:permission denied: role missing", nil},
		{"authorization roles absent", "auth.authorization", `{"data":{"user":` + user(admin.userID) + `}}`, "403:permission denied: role missing", nil},
		{"authorization unknown user", "auth.authorization", `{"data":{"user":` + user("000000000000000000000001") + `,"roles":["AUTHOR"]}}`, "401:permission denied: user does not exist", nil},
		{"authorization user null", "auth.authorization", `{"data":{"user":null,"roles":["AUTHOR"]}}`, "400:user is required", nil},
		{"authorization empty data", "auth.authorization", `{"data":{}}`, "400:user is required", nil},
		{"authorization bad hex", "auth.authorization", `{"data":{"user":` + user("zzzzzzzzzzzzzzzzzzzzzzzz") + `,"roles":["AUTHOR"]}}`, "400:user._id must be a valid id", nil},
		{"profile ok", "auth.profile.user", `{"data":{"value":"` + learner.userID + `"}}`, "",
			map[string]any{"_id": learner.userID, "name": "Learner One", "email": ""}},
		{"profile with picture", "auth.profile.user", `{"data":{"value":"` + ada.userID + `"}}`, "",
			map[string]any{"_id": ada.userID, "name": "Ada", "email": "", "profilePicUrl": "https://x.io/ada.png"}},
		{"profile bad hex", "auth.profile.user", `{"data":{"value":"zzzzzzzzzzzzzzzzzzzzzzzz"}}`, "400:id must be a valid id", nil},
		{"profile short id", "auth.profile.user", `{"data":{"value":"abc"}}`, "400:id must be a valid id", nil},
		{"profile missing", "auth.profile.user", `{"data":{"value":"000000000000000000000001"}}`, "404:user does not exist", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, errText := s.natsReply(tt.subject, tt.payload)
			if errText != tt.wantError {
				t.Fatalf("error %q, want %q", errText, tt.wantError)
			}
			if tt.wantData == nil {
				if data != nil {
					t.Fatalf("unexpected data %v", data)
				}
				return
			}
			if len(data) != len(tt.wantData) {
				t.Fatalf("data %v, want %v", data, tt.wantData)
			}
			for k, v := range tt.wantData {
				if data[k] != v {
					t.Fatalf("data %v, want %v", data, tt.wantData)
				}
			}
		})
	}

	// Malformed envelopes on every subject get a 400 reply, and the service
	// keeps answering.
	malformed := []string{`{}`, `null`, `[]`, `not json`, ``, `{"data":null}`, `{"data":"text"}`, `{"data":{"user":null}}`}
	for _, subject := range []string{"auth.authentication", "auth.authorization", "auth.profile.user"} {
		for _, payload := range malformed {
			_, errText := s.natsReply(subject, payload)
			if len(errText) < 4 || errText[:4] != "400:" {
				t.Errorf("%s %q: error %q, want a 400", subject, payload, errText)
			}
		}
	}
	if data, errText := s.natsReply("auth.authentication", `{"data":{"value":"`+learner.bearer()+`"}}`); errText != "" || data["_id"] != learner.userID {
		t.Fatalf("after malformed messages: %v %q", data, errText)
	}
}

// TestNATSHandlersRunConcurrently: one endpoint's handlers overlap (the
// reference ran them one at a time). Each request reads a different user
// from the store, which keeps a handler busy long enough for others to start.
func TestNATSHandlersRunConcurrently(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	const n = 50
	ids := make([]any, n)
	for i := range ids {
		ids[i] = bson.M{"_id": bson.NewObjectID(), "name": "u", "email": randomHex(4) + "@x.io", "status": true, "createdAt": time.Now()}
	}
	if _, err := s.db().Collection("users").InsertMany(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, doc := range ids {
		id := doc.(bson.M)["_id"].(bson.ObjectID).Hex()
		wg.Go(func() {
			data, errText := s.natsReply("auth.profile.user", `{"data":{"value":"`+id+`"}}`)
			if errText != "" || data["_id"] != id {
				t.Errorf("%s: %v %q", id, data, errText)
			}
		})
	}
	wg.Wait()
	if peak := r.NATSPeakInFlight(); peak < 2 {
		t.Fatalf("at most %d handler ran at a time; want concurrent handlers", peak)
	}
	t.Logf("peak handlers in flight: %d of %d requests", r.NATSPeakInFlight(), n)
}
