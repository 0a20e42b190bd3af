package tests

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"blogplatform/auth_service/api/apikey"
	"blogplatform/devkit/wait"
)

// TestRejectedAPIKeysCostNoStoreQueryWhenRepeated: an unknown key is
// remembered briefly in process: sent again within the TTL it is refused
// without asking the store (a key inserted into the store out of band in
// the meantime is still refused) and it is never written to Redis. After
// the TTL the store is asked again; a key created through the service works
// at once on every replica.
func TestRejectedAPIKeysCostNoStoreQueryWhenRepeated(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// Long enough that the refusal, the out-of-band insert and the repeated
	// refusal fit within it on a loaded machine (-race, shared cores): the
	// wait for its expiry below polls, so a longer TTL costs only that wait.
	const ttl = 5 * time.Second
	settings := map[string]string{"APIKEY_REJECTED_CACHE_TTL": ttl.String()}
	a, b := s.replica(settings), s.replica(settings)
	keys := s.db().Collection("api_keys")
	verify := func(r *replica, key string) response { return r.do("GET", "/verify/apikey", "", "x-api-key", key) }
	const refused = "permission denied: invalid x-api-key"
	inRedis := func(t *testing.T, key string) bool {
		n, err := a.Runtime.Redis.Exists(t.Context(), apikey.CacheKey(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	tests := []struct {
		name string
		run  func(t *testing.T, key string)
	}{
		{"a repeated unknown key is answered from memory, never from Redis", func(t *testing.T, key string) {
			expect(t, verify(a, key), 403, refused)
			if _, err := keys.InsertOne(t.Context(), bson.M{"key": key, "status": true, "version": 1}); err != nil {
				t.Fatal(err)
			}
			expect(t, verify(a, key), 403, refused) // the store was not asked again
			if inRedis(t, key) {
				t.Fatal("an unknown key's refusal was written to Redis")
			}
			// Refused from memory until the TTL has passed, then looked up.
			wait.Eventually(t, ttl+5*time.Second, "the refusal expires", func() bool { return verify(a, key).status != 403 })
			expect(t, verify(a, key), 200, "success")
		}},
		{"a key created through another replica works at once", func(t *testing.T, key string) {
			expect(t, verify(b, key), 403, refused)
			if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
				t.Fatal(err)
			}
			expect(t, verify(b, key), 200, "success")
		}},
		{"a key created through the same replica works at once", func(t *testing.T, key string) {
			expect(t, verify(a, key), 403, refused)
			if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
				t.Fatal(err)
			}
			expect(t, verify(a, key), 200, "success")
		}},
		{"a disabled key is refused everywhere at once", func(t *testing.T, key string) {
			if _, err := a.APIKeys.Create(t.Context(), key, nil); err != nil {
				t.Fatal(err)
			}
			expect(t, verify(b, key), 200, "success")
			if _, err := b.APIKeys.Disable(t.Context(), key); err != nil {
				t.Fatal(err)
			}
			expectSoon(t, func() response { return verify(a, key) }, 403, refused)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, "k-"+randomHex(8)) })
	}
}
