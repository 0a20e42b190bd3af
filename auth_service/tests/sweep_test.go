package tests

import (
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/devkit/wait"
)

// TestExpiredKeystoresAreRemoved: keystores outlive their refresh token by
// at most the sweep interval. Where the store has TTL indexes the index
// exists; where it has not (the embedded FerretDB) the index is reported as
// skipped and the sweeper does the work.
func TestExpiredKeystoresAreRemoved(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(map[string]string{"KEYSTORE_SWEEP_INTERVAL": "50ms", "REFRESH_TOKEN_VALIDITY_SEC": "3600"})
	db := s.db()

	cur, err := db.Collection("keystores").Indexes().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var indexes []bson.M
	if err := cur.All(t.Context(), &indexes); err != nil {
		t.Fatal(err)
	}
	hasTTL := slices.ContainsFunc(indexes, func(ix bson.M) bool { return ix["expireAfterSeconds"] != nil })
	skipped := slices.Contains(r.SkippedIndexes, "keystores.createdAt_1")
	if hasTTL == skipped {
		t.Fatalf("TTL index present=%v, reported skipped=%v (indexes %v)", hasTTL, skipped, indexes)
	}
	t.Logf("TTL index on this store: %v", hasTTL)

	u := r.signUp()
	client, _ := bson.ObjectIDFromHex(u.userID)
	old := time.Now().Add(-2 * time.Hour)
	res, err := db.Collection("keystores").InsertOne(t.Context(), bson.M{
		"client": client, "pKey": randomHex(32), "sKey": randomHex(32), "status": true, "createdAt": old, "updatedAt": old,
	})
	if err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, "expired keystore removed", func() bool {
		n, err := db.Collection("keystores").CountDocuments(t.Context(), bson.M{"_id": res.InsertedID})
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	// The live session's keystore stays, stored with a date.
	var ks bson.M
	if err := db.Collection("keystores").FindOne(t.Context(), bson.M{"client": client}).Decode(&ks); err != nil {
		t.Fatalf("live keystore: %v", err)
	}
	if _, isDate := ks["createdAt"].(bson.DateTime); !isDate {
		t.Fatalf("createdAt is %T, want a date", ks["createdAt"])
	}
	expect(t, r.do("GET", "/profile/mine", "", "Authorization", u.bearer()), 200, "success")
}

// TestSweepDeletesOnlyOlderKeystores checks the sweep itself.
func TestSweepDeletesOnlyOlderKeystores(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.replica(nil)
	db := s.db()
	now := time.Now()
	var docs []any
	for _, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, time.Minute, 0} {
		docs = append(docs, bson.M{"client": bson.NewObjectID(), "pKey": randomHex(32), "sKey": randomHex(32), "status": true, "createdAt": now.Add(-age)})
	}
	if _, err := db.Collection("keystores").InsertMany(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
	n, err := r.Keystores.Sweep(t.Context(), now.Add(-time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("swept %d (%v), want 2", n, err)
	}
	left, err := db.Collection("keystores").CountDocuments(t.Context(), bson.M{})
	if err != nil || left != 2 {
		t.Fatalf("%d left (%v), want 2", left, err)
	}
}
