package tests

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestTokenAndProfileResponsesAreNeverStored: every answer that carries
// tokens or profile data says Cache-Control: no-store, so no browser or
// shared cache keeps one user's tokens or email for the next client.
func TestTokenAndProfileResponsesAreNeverStored(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	u := r.signUp()
	tests := []struct {
		name string
		send func() response
	}{
		{"sign-up", func() response {
			return r.do("POST", "/signup/basic", `{"email":"`+uniqueEmail()+`","password":"secret1","name":"Learner Two"}`)
		}},
		{"sign-in", func() response {
			return r.do("POST", "/signin/basic", `{"email":"`+u.email+`","password":"`+u.password+`"}`)
		}},
		{"failed sign-in", func() response {
			return r.do("POST", "/signin/basic", `{"email":"`+u.email+`","password":"wrong-one"}`)
		}},
		{"refresh", func() response {
			fresh := r.signIn(u.email, u.password)
			return r.do("POST", "/token/refresh", `{"refreshToken":`+quoteJSON(fresh.refresh)+`}`, "Authorization", fresh.bearer())
		}},
		{"private profile", func() response {
			return r.do("GET", "/profile/mine", "", "Authorization", u.bearer())
		}},
		{"public profile", func() response { return r.do("GET", "/profile/id/"+u.userID, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.send()
			if got := res.header.Get("Cache-Control"); got != "no-store" {
				t.Fatalf("Cache-Control %q (status %d), want no-store", got, res.status)
			}
		})
	}
	if got := r.do("GET", "/verify/apikey", "", "x-api-key", s.apiKey).header.Get("Cache-Control"); got != "" {
		t.Fatalf("the key check carries no user data, yet Cache-Control is %q", got)
	}
}

// roleIDs reads the seeded roles' ids by code.
func roleIDs(t *testing.T, s *stack) map[string]bson.ObjectID {
	t.Helper()
	cur, err := s.db().Collection("roles").Find(t.Context(), bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var roles []struct {
		ID   bson.ObjectID `bson:"_id"`
		Code string        `bson:"code"`
	}
	if err := cur.All(t.Context(), &roles); err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.ObjectID{}
	for _, r := range roles {
		out[r.Code] = r.ID
	}
	return out
}

func roleCodes(t *testing.T, res response) []string {
	t.Helper()
	roles, _ := res.data()["roles"].([]any)
	var codes []string
	for _, r := range roles {
		codes = append(codes, r.(map[string]any)["code"].(string))
	}
	return codes
}

// TestSeedAdminDoesNotPromoteAnExistingAccount: somebody signs up with the
// address configured as SEED_ADMIN_EMAIL before the bootstrap runs. The
// bootstrap then grants that account nothing, logs a warning and the
// replica starts; an account that already holds ADMIN still gets its
// missing roles back.
func TestSeedAdminDoesNotPromoteAnExistingAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		heldRoles []string // roles of the account before the bootstrap
		wantRoles int
		wantWarn  bool
	}{
		{"a learner who signed up with the address stays a learner", []string{"LEARNER"}, 1, true},
		{"an account without roles stays without", nil, 0, true},
		{"an admin missing roles gets them back", []string{"ADMIN"}, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			const adminEmail = "boss@example.com"
			// A replica seeded with another admin address serves the sign-up.
			first := s.replica(map[string]string{"SEED_ADMIN_EMAIL": "someone-else@example.com"})
			res := first.do("POST", "/signup/basic", `{"email":"`+adminEmail+`","password":"squatter1","name":"Squatter"}`)
			expect(t, res, 200, "success")
			ids := roleIDs(t, s)
			held := bson.A{}
			for _, code := range tt.heldRoles {
				held = append(held, ids[code])
			}
			if _, err := s.db().Collection("users").UpdateOne(t.Context(), bson.M{"email": adminEmail}, bson.M{"$set": bson.M{"roles": held}}); err != nil {
				t.Fatal(err)
			}

			r, log := s.loggedReplica(map[string]string{"SEED_ADMIN_EMAIL": adminEmail})
			u := r.signIn(adminEmail, "squatter1")
			res = r.do("GET", "/profile/mine", "", "Authorization", u.bearer())
			expect(t, res, 200, "success")
			if got := roleCodes(t, res); len(got) != tt.wantRoles {
				t.Fatalf("roles after the bootstrap: %v, want %d", got, tt.wantRoles)
			}
			if warned := strings.Contains(log.String(), "SEED_ADMIN_EMAIL belongs to an existing account"); warned != tt.wantWarn {
				t.Fatalf("warning logged: %v, want %v; log:\n%s", warned, tt.wantWarn, log.String())
			}
			// Seeding the admin's default password never replaced the account's.
			expect(t, r.do("POST", "/signin/basic", `{"email":"`+adminEmail+`","password":"changeit"}`), 401, "wrong password")
		})
	}
}

// TestDisabledRoleGrantsNothing: a role whose status is false is left out of
// the user's role list (sign-in, profile) and authorizes nothing over NATS.
func TestDisabledRoleGrantsNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	ids := roleIDs(t, s)
	u := r.signUp()
	users, roles := s.db().Collection("users"), s.db().Collection("roles")
	uid, _ := bson.ObjectIDFromHex(u.userID)
	if _, err := users.UpdateOne(t.Context(), bson.M{"_id": uid}, bson.M{"$set": bson.M{"roles": bson.A{ids["LEARNER"], ids["AUTHOR"]}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := roles.UpdateOne(t.Context(), bson.M{"code": "AUTHOR"}, bson.M{"$set": bson.M{"status": false}}); err != nil {
		t.Fatal(err)
	}
	r.Users.Forget(t.Context(), u.userID) // the edits were out of band

	authorize := func(role string) string {
		_, errText := s.natsReply("auth.authorization", `{"data":{"user":{"_id":"`+u.userID+`"},"roles":["`+role+`"]}}`)
		return errText
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"authorization by the disabled role is refused", func(t *testing.T) {
			if got := authorize("AUTHOR"); got != "403:permission denied: does not have sufficient role" {
				t.Fatalf("AUTHOR: %q", got)
			}
		}},
		{"authorization by an active role still works", func(t *testing.T) {
			if got := authorize("LEARNER"); got != "" {
				t.Fatalf("LEARNER: %q", got)
			}
		}},
		{"sign-in lists only active roles", func(t *testing.T) {
			res := r.do("POST", "/signin/basic", `{"email":"`+u.email+`","password":"`+u.password+`"}`)
			expect(t, res, 200, "success")
			roles, _ := res.data()["user"].(map[string]any)["roles"].([]any)
			if len(roles) != 1 || roles[0].(map[string]any)["code"] != "LEARNER" {
				t.Fatalf("roles %v", roles)
			}
		}},
		{"profile lists only active roles", func(t *testing.T) {
			res := r.do("GET", "/profile/mine", "", "Authorization", u.bearer())
			expect(t, res, 200, "success")
			if got := roleCodes(t, res); len(got) != 1 || got[0] != "LEARNER" {
				t.Fatalf("roles %v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}
