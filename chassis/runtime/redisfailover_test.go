package runtime

import (
	"strings"
	"testing"

	"blogplatform/chassis/cache"
)

// Behind Sentinel the service must name its keys (its client discards them
// on a new primary); without them it does not start. Other modes are left
// as they are.
func TestWithFailover(t *testing.T) {
	keys := cache.KeySpace{Patterns: []string{"svc_*"}, Marker: "svc_failover_primary"}
	sentinel := cache.RedisOptions{SentinelAddrs: []string{"127.0.0.1:26379"}, SentinelMaster: "mymaster"}
	cases := []struct {
		name    string
		opts    cache.RedisOptions
		keys    cache.KeySpace
		wantErr string
		guarded bool
	}{
		{"single server needs nothing", cache.RedisOptions{Host: "localhost", Port: 6379}, cache.KeySpace{}, "", false},
		{"cluster is left alone", cache.RedisOptions{ClusterAddrs: []string{"127.0.0.1:7000"}}, keys, "", false},
		{"sentinel with keys", sentinel, keys, "", true},
		{"sentinel without keys", sentinel, cache.KeySpace{}, "key space", false},
		{"sentinel with a catch-all pattern", sentinel, cache.KeySpace{Patterns: []string{"*"}, Marker: "m"}, "other services' keys", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := withFailover(c.opts, c.keys, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if guarded := got.Failover.Keys.Marker != ""; guarded != c.guarded {
				t.Fatalf("guarded = %v, want %v", guarded, c.guarded)
			}
		})
	}
}
