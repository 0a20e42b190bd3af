package tests

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/user"
	userdto "blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
)

// TestRoleChangeRacingASnapshotFill: replica b reads a user from the store
// (the roles before the change), then replica a changes the user's roles
// (store write, then Forget, as the admin API does), then b's snapshot
// write reaches Redis. The write must be refused: otherwise every replica
// would serve the old roles until the snapshot's TTL. The next request, on
// any replica, sees the new roles. The interleaving is made with the
// service's own steps, in the order a slow request takes them.
func TestRoleChangeRacingASnapshotFill(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a, b := s.replica(nil), s.replica(nil)
	ids := roleIDs(t, s)
	users := s.db().Collection("users")
	tests := []struct {
		name          string
		before, after []string
		authorStatus  int // AUTHOR's answer after the change
	}{
		{"role revoked", []string{"LEARNER", "AUTHOR"}, []string{"LEARNER"}, 403},
		{"role granted", []string{"LEARNER"}, []string{"LEARNER", "AUTHOR"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			u := a.signUp()
			uid, _ := bson.ObjectIDFromHex(u.userID)
			setRoles := func(codes []string) {
				t.Helper()
				roles := bson.A{}
				for _, c := range codes {
					roles = append(roles, ids[c])
				}
				if _, err := users.UpdateOne(ctx, bson.M{"_id": uid}, bson.M{"$set": bson.M{"roles": roles}}); err != nil {
					t.Fatal(err)
				}
			}
			setRoles(tt.before)
			a.Users.Forget(ctx, u.userID)

			// b: a request that missed its caches notes the generation,
			// then reads the store.
			gen := b.Users.SnapshotGeneration(ctx, u.userID)
			var stored model.User
			if err := users.FindOne(ctx, bson.M{"_id": uid}).Decode(&stored); err != nil {
				t.Fatal(err)
			}
			old, err := b.Users.InfoOf(ctx, &stored)
			if err != nil {
				t.Fatal(err)
			}
			// a: the change.
			setRoles(tt.after)
			a.Users.Forget(ctx, u.userID)
			// b: the late write.
			b.Users.Remember(ctx, old, gen)
			if raw, err := a.Runtime.Redis.Get(ctx, user.SnapshotKey(u.userID)).Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("the snapshot read before the change is in Redis: %s (%v)", raw, err)
			}

			// The next request sees the new roles on every replica (the
			// change's event has dropped their first-level copies; a
			// third replica starts with none).
			for name, r := range map[string]*replica{"a": a, "b": b, "fresh": s.replica(nil)} {
				if got := statusOf(authorizeOn(t, r, u, "AUTHOR")); got != tt.authorStatus {
					if !soon(func() bool { return statusOf(authorizeOn(t, r, u, "AUTHOR")) == tt.authorStatus }) {
						t.Fatalf("replica %s: AUTHOR answers %d after the change, want %d", name, got, tt.authorStatus)
					}
				}
				if err := authorizeOn(t, r, u, "LEARNER"); err != nil {
					t.Fatalf("replica %s: LEARNER: %v", name, err)
				}
			}
			// ...and the snapshot those requests cached is the new one.
			raw, err := a.Runtime.Redis.Get(ctx, user.SnapshotKey(u.userID)).Result()
			if err != nil {
				t.Fatalf("no snapshot cached after the change: %v", err)
			}
			var info userdto.InfoPrivateUser
			if err := json.Unmarshal([]byte(raw), &info); err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, r := range info.Roles {
				codes = append(codes, r.Code)
			}
			if !slices.Equal(codes, tt.after) {
				t.Fatalf("cached roles %v, want %v", codes, tt.after)
			}
		})
	}
}
