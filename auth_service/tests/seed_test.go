package tests

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"
)

// referenceAdminHash is the reference seed's cost-10 hash of "changeit".
const referenceAdminHash = "$2a$10$psWmSrmtyZYvtIt/FuJL1OLqsK3iR1fZz5.wUYFuSNkkt.EOX9mLa"

// TestSeedIsIdempotent: the bootstrap runs on every start of every replica
// (here: two replicas starting at once, then a third run) and leaves exactly
// one of each seeded document.
func TestSeedIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	replicas := make([]*replica, 2)
	done := make(chan int, 2)
	for i := range replicas {
		go func() { replicas[i] = s.replica(nil); done <- i }()
	}
	<-done
	<-done
	db := s.db()
	counts := func() map[string]int64 {
		out := map[string]int64{}
		for _, c := range []string{"roles", "users", "api_keys"} {
			n, err := db.Collection(c).CountDocuments(t.Context(), bson.M{})
			if err != nil {
				t.Fatal(err)
			}
			out[c] = n
		}
		return out
	}
	first := counts()
	if first["roles"] != 4 || first["users"] != 1 || first["api_keys"] != 1 {
		t.Fatalf("after the first bootstrap: %v", first)
	}
	if err := replicas[0].Seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again := counts(); again["roles"] != 4 || again["users"] != 1 || again["api_keys"] != 1 {
		t.Fatalf("after another bootstrap: %v", again)
	}
	var key struct {
		Key         string   `bson:"key"`
		Version     int      `bson:"version"`
		Permissions []string `bson:"permissions"`
		Status      bool     `bson:"status"`
		CreatedAt   time.Time
	}
	if err := db.Collection("api_keys").FindOne(t.Context(), bson.M{}).Decode(&key); err != nil {
		t.Fatal(err)
	}
	if key.Key != s.apiKey || key.Version != 1 || len(key.Permissions) != 1 || key.Permissions[0] != "GENERAL" || !key.Status {
		t.Fatalf("seeded key %+v", key)
	}
	admin := replicas[1].signIn("admin@unusualcode.org", "changeit")
	res := replicas[0].do("GET", "/profile/mine", "", "Authorization", admin.bearer())
	expect(t, res, 200, "success")
	if n := len(res.data()["roles"].([]any)); n != 4 {
		t.Fatalf("admin has %d roles: %s", n, res.raw)
	}
	expect(t, replicas[1].do("GET", "/verify/apikey", "", "x-api-key", s.apiKey), 200, "success")
}

// TestSeedRepairsAdminRolesAndKeepsPassword: an existing admin (it holds
// ADMIN) keeps its password and gains missing roles; a disabled seed key
// stays disabled.
func TestSeedRepairsAdminRolesAndKeepsPassword(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	db := s.db()
	hash, err := bcrypt.GenerateFromPassword([]byte("another1"), 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	adminRole, err := db.Collection("roles").InsertOne(ctx, bson.M{"code": "ADMIN", "status": true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("users").InsertOne(ctx, bson.M{"name": "Admin", "email": "admin@unusualcode.org", "password": string(hash), "roles": bson.A{adminRole.InsertedID}, "status": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("api_keys").InsertOne(ctx, bson.M{"key": s.apiKey, "status": false, "version": 1}); err != nil {
		t.Fatal(err)
	}
	r := s.replica(nil)
	expect(t, r.do("POST", "/signin/basic", `{"email":"admin@unusualcode.org","password":"changeit"}`), 401, "wrong password")
	admin := r.signIn("admin@unusualcode.org", "another1")
	res := r.do("GET", "/profile/mine", "", "Authorization", admin.bearer())
	if n := len(res.data()["roles"].([]any)); n != 4 {
		t.Fatalf("admin has %d roles: %s", n, res.raw)
	}
	expect(t, r.do("GET", "/verify/apikey", "", "x-api-key", s.apiKey), 403, "permission denied: invalid x-api-key")
}

// TestReferenceSeedHashStillVerifies: a user stored with the reference's
// cost-10 hash signs in with "changeit", whatever BCRYPT_COST is now; a user
// without a password gets a 401, not a crash; dangling role ids leave no
// null entries.
func TestReferenceSeedHashStillVerifies(t *testing.T) {
	t.Parallel()
	if err := bcrypt.CompareHashAndPassword([]byte(referenceAdminHash), []byte("changeit")); err != nil {
		t.Fatalf("reference hash: %v", err)
	}
	s := newStack(t)
	r := s.replica(nil)
	var learner struct {
		ID bson.ObjectID `bson:"_id"`
	}
	db := s.db()
	if err := db.Collection("roles").FindOne(t.Context(), bson.M{"code": "LEARNER"}).Decode(&learner); err != nil {
		t.Fatal(err)
	}
	for _, u := range []bson.M{
		// A role id that no longer exists is left out of the user's roles.
		{"name": "Legacy", "email": "legacy@example.com", "password": referenceAdminHash, "roles": bson.A{bson.NewObjectID(), learner.ID}, "status": true},
		{"name": "No Password", "email": "nopass@example.com", "roles": bson.A{learner.ID}, "status": true},
		{"name": "Inactive", "email": "inactive@example.com", "password": referenceAdminHash, "roles": bson.A{learner.ID}, "status": false},
	} {
		if _, err := db.Collection("users").InsertOne(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	legacy := r.signIn("legacy@example.com", "changeit")
	res := r.do("GET", "/profile/mine", "", "Authorization", legacy.bearer())
	expect(t, res, 200, "success")
	if roles := res.data()["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["code"] != "LEARNER" {
		t.Fatalf("roles %v", roles)
	}
	expect(t, r.do("POST", "/signin/basic", `{"email":"nopass@example.com","password":"changeit"}`), 401, "wrong password")
	expect(t, r.do("POST", "/signin/basic", `{"email":"inactive@example.com","password":"changeit"}`), 404, "user not registered")
	// The inactive user's email stays taken (unique index), reported as such.
	expect(t, r.do("POST", "/signup/basic", `{"email":"inactive@example.com","password":"changeit","name":"Again"}`), 400, "user already registered")
}
