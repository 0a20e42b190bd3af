package user

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/user/dto"
	"blogplatform/auth_service/api/user/model"
	"blogplatform/chassis/cache"
	"blogplatform/chassis/metrics"
	"blogplatform/devkit/embedded"
)

// TestSnapshotAndGenerationShareASlot: the guarded write and the
// invalidation are scripts over both keys, which a Redis Cluster runs only
// when they hash to one slot; both keys must also stay under auth_, the
// prefix auth's Redis ACL user is limited to.
func TestSnapshotAndGenerationShareASlot(t *testing.T) {
	id := bson.NewObjectID().Hex()
	snap, gen := SnapshotKey(id), GenerationKey(id)
	if snap != "auth_user_{"+id+"}" || gen != "auth_user_gen:{"+id+"}" {
		t.Fatalf("keys %q, %q", snap, gen)
	}
	if cache.SlotTag(snap) != id || cache.SlotTag(gen) != id {
		t.Fatalf("slot tags %q, %q; want the user id %q", cache.SlotTag(snap), cache.SlotTag(gen), id)
	}
}

// TestStaleSnapshotIsNotWrittenBack reproduces, step by step, a request
// that read a user from the store just before a change of the user's
// roles and wrote its snapshot to Redis just after the change's Forget:
// the write must be refused (otherwise every replica would serve the old
// roles until the snapshot's TTL), and the next read must build the
// snapshot of the new roles and cache it. On a single Redis and on a
// three-primary Cluster, where a script over keys of two slots fails (the
// failure would show as a Redis error, not as a wrong answer).
func TestStaleSnapshotIsNotWrittenBack(t *testing.T) {
	deployments := []struct {
		name  string
		redis func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient {
			r, err := embedded.StartRedis(embedded.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			return redis.NewClient(&redis.Options{Addr: r.Addr()})
		}},
		{"cluster", func(t *testing.T) redis.UniversalClient {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := embedded.StartRedisCluster(ctx, embedded.RedisClusterOptions{})
			if err != nil {
				t.Fatal(err) // a missing redis-server fails here, with the install line
			}
			t.Cleanup(func() { _ = c.Close() })
			return cache.NewRedis(cache.RedisOptions{ClusterAddrs: c.Addrs()})
		}},
	}
	changes := []struct {
		name          string
		before, after []string // role codes
	}{
		{"role revoked", []string{model.RoleLearner, model.RoleAuthor}, []string{model.RoleLearner}},
		{"role granted", []string{model.RoleLearner}, []string{model.RoleLearner, model.RoleAuthor}},
	}
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			rdb := d.redis(t)
			t.Cleanup(func() { _ = rdb.Close() })
			m := metrics.New("test")
			store := &memStore{}
			svc := NewService(store, cache.New(rdb, "auth", slog.New(slog.DiscardHandler), m), Options{CacheTTL: time.Minute})
			ctx := t.Context()
			roleID := map[string]bson.ObjectID{}
			for _, code := range []string{model.RoleLearner, model.RoleAuthor} {
				r, err := store.EnsureRole(ctx, code, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				roleID[code] = r.ID
			}
			idsOf := func(codes []string) []bson.ObjectID {
				var ids []bson.ObjectID
				for _, c := range codes {
					ids = append(ids, roleID[c])
				}
				return ids
			}
			for _, c := range changes {
				t.Run(c.name, func(t *testing.T) {
					u := model.User{ID: bson.NewObjectID(), Email: bson.NewObjectID().Hex() + "@example.com", Roles: idsOf(c.before), Status: true}
					store.users = append(store.users, u)
					id := u.ID.Hex()

					// The slow reader notes the generation, then reads the
					// store: the roles before the change.
					gen := svc.SnapshotGeneration(ctx, id)
					read, err := store.ActiveByID(ctx, u.ID)
					if err != nil {
						t.Fatal(err)
					}
					old, err := svc.InfoOf(ctx, read)
					if err != nil {
						t.Fatal(err)
					}
					// The change: store write, then Forget (what the admin
					// API does on another replica).
					store.users[len(store.users)-1].Roles = idsOf(c.after)
					svc.Forget(ctx, id)
					// The reader's write arrives last.
					svc.Remember(ctx, old, gen)
					if raw, err := rdb.Get(ctx, SnapshotKey(id)).Result(); !errors.Is(err, redis.Nil) {
						t.Fatalf("after the late write Redis holds %s (%v); want no snapshot", raw, err)
					}

					// The next request misses, reads the new roles and caches them.
					info, err := svc.Info(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if got := codesOf(info); !slices.Equal(got, c.after) {
						t.Fatalf("roles served after the change %v, want %v", got, c.after)
					}
					raw, err := rdb.Get(ctx, SnapshotKey(id)).Bytes()
					if err != nil {
						t.Fatalf("the fill after the change was not cached: %v", err)
					}
					var cached dto.InfoPrivateUser
					if err := json.Unmarshal(raw, &cached); err != nil {
						t.Fatal(err)
					}
					if got := codesOf(&cached); !slices.Equal(got, c.after) {
						t.Fatalf("roles cached after the change %v, want %v", got, c.after)
					}
					noRedisErrors(t, m)
				})
			}
		})
	}
}

func codesOf(info *dto.InfoPrivateUser) []string {
	var codes []string
	for _, r := range info.Roles {
		codes = append(codes, r.Code)
	}
	return codes
}

// noRedisErrors fails when the cache counted a Redis error: the cache
// hides them from callers (a refused script looks like a miss).
func noRedisErrors(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if mf.GetName() == "cache_lookups_total" && l.GetName() == "result" && l.GetValue() == "error" && metric.GetCounter().GetValue() > 0 {
					t.Fatalf("%v Redis errors: %v", metric.GetCounter().GetValue(), metric.GetLabel())
				}
			}
		}
	}
}
