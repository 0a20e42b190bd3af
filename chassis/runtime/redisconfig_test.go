package runtime

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/config"
)

func TestRedisConfig(t *testing.T) {
	single := cache.RedisOptions{Host: "localhost", Port: 6379, DB: 2, Timeout: 250 * time.Millisecond}
	tests := []struct {
		name string
		env  map[string]string
		want cache.RedisOptions // compared when err is ""
		mode string
		err  string // one line, naming the variable
	}{
		{name: "defaults: one local server, the service's database", env: nil, want: single, mode: cache.RedisSingle},
		{name: "single server as today",
			env:  map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "6380", "REDIS_USERNAME": "blog", "REDIS_PASSWORD": "s3cret", "REDIS_DB": "3", "REDIS_TIMEOUT": "100ms"},
			want: cache.RedisOptions{Host: "redis", Port: 6380, Username: "blog", Password: "s3cret", DB: 3, Timeout: 100 * time.Millisecond},
			mode: cache.RedisSingle},
		{name: "sentinel",
			env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379,[::1]:26379", "REDIS_SENTINEL_MASTER": "mymaster",
				"REDIS_SENTINEL_USERNAME": "sentinel-user", "REDIS_SENTINEL_PASSWORD": "sentinel-pw", "REDIS_PASSWORD": "data-pw"},
			want: cache.RedisOptions{Host: "localhost", Port: 6379, DB: 2, Timeout: 250 * time.Millisecond, Password: "data-pw",
				SentinelAddrs: []string{"s1:26379", "s2:26379", "[::1]:26379"}, SentinelMaster: "mymaster",
				SentinelUsername: "sentinel-user", SentinelPassword: "sentinel-pw"},
			mode: cache.RedisSentinel},
		{name: "cluster: the default database becomes 0",
			env: map[string]string{"REDIS_CLUSTER_ADDRS": "n1:7000,n2:7001"},
			want: cache.RedisOptions{Host: "localhost", Port: 6379, DB: 0, Timeout: 250 * time.Millisecond,
				ClusterAddrs: []string{"n1:7000", "n2:7001"}},
			mode: cache.RedisCluster},
		{name: "cluster with an explicit database 0",
			env:  map[string]string{"REDIS_CLUSTER_ADDRS": "n1:7000", "REDIS_DB": "0"},
			want: cache.RedisOptions{Host: "localhost", Port: 6379, Timeout: 250 * time.Millisecond, ClusterAddrs: []string{"n1:7000"}},
			mode: cache.RedisCluster},
		{name: "sentinel addresses without a master name",
			env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379"},
			err: `REDIS_SENTINEL_ADDRS: needs REDIS_SENTINEL_MASTER`},
		{name: "master name without sentinels",
			env: map[string]string{"REDIS_SENTINEL_MASTER": "mymaster"},
			err: `REDIS_SENTINEL_MASTER: needs REDIS_SENTINEL_ADDRS`},
		{name: "sentinel and cluster together",
			env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_CLUSTER_ADDRS": "n1:7000"},
			err: `REDIS_CLUSTER_ADDRS: cannot be combined with REDIS_SENTINEL_ADDRS`},
		{name: "cluster with another database",
			env: map[string]string{"REDIS_CLUSTER_ADDRS": "n1:7000", "REDIS_DB": "2"},
			err: `REDIS_DB: is 2; must be 0 with REDIS_CLUSTER_ADDRS`},
		{name: "cluster address without a port",
			env: map[string]string{"REDIS_CLUSTER_ADDRS": "n1:7000,n2"},
			err: `REDIS_CLUSTER_ADDRS: "n2" is not host:port`},
		{name: "credentials in an address are not echoed",
			env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379,admin:hunter2@s2:26379", "REDIS_SENTINEL_MASTER": "m"},
			err: `REDIS_SENTINEL_ADDRS: entry 2 (it holds credentials`},
		{name: "sentinel address with a bad port",
			env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:99999", "REDIS_SENTINEL_MASTER": "m"},
			err: `REDIS_SENTINEL_ADDRS: "s1:99999" is not host:port`},
		{name: "address without a host",
			env: map[string]string{"REDIS_CLUSTER_ADDRS": ":7000"},
			err: `REDIS_CLUSTER_ADDRS: ":7000" is not host:port`},
		{name: "a URL is not host:port",
			env: map[string]string{"REDIS_CLUSTER_ADDRS": "redis://n1:7000"},
			err: `REDIS_CLUSTER_ADDRS: "redis://n1:7000" is not host:port`},
		{name: "release mode refuses the example sentinel password",
			env: map[string]string{"GO_MODE": "release", "REDIS_SENTINEL_ADDRS": "s1:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_PASSWORD": "changeit"},
			err: `REDIS_SENTINEL_PASSWORD: still the example value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := config.FromMap(tt.env)
			b := LoadBase(src, Defaults{DBName: "blog-db", ServiceName: "blog", RedisDB: 2})
			err := src.Err()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), "invalid configuration: "+tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if lines := strings.Count(err.Error(), "\n") + 1; lines != 1 {
					t.Fatalf("%d error lines, want 1: %v", lines, err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error shows a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(b.Redis, tt.want) {
				t.Fatalf("options\n got %+v\nwant %+v", b.Redis, tt.want)
			}
			if got := b.Redis.Mode(); got != tt.mode {
				t.Fatalf("mode %q, want %q", got, tt.mode)
			}
		})
	}
}

// The client kind follows the options, and the cluster client never picks a
// database (a Cluster refuses SELECT).
func TestNewRedisClientKind(t *testing.T) {
	tests := []struct {
		name, want, addr string
		o                cache.RedisOptions
	}{
		{"single", "*redis.Client", "127.0.0.1:1", cache.RedisOptions{Host: "127.0.0.1", Port: 1, DB: 2}},
		{"sentinel", "*redis.Client", "FailoverClient", cache.RedisOptions{SentinelAddrs: []string{"127.0.0.1:1"}, SentinelMaster: "m"}},
		{"cluster with one seed", "*redis.ClusterClient", "127.0.0.1:1", cache.RedisOptions{ClusterAddrs: []string{"127.0.0.1:1"}, DB: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cache.NewRedis(tt.o)
			defer c.Close()
			if got := reflect.TypeOf(c).String(); got != tt.want {
				t.Fatalf("client %s, want %s", got, tt.want)
			}
			var addr string
			switch c := c.(type) {
			case *redis.Client:
				addr = c.Options().Addr
				if c.Options().PoolSize != 256 || c.Options().DialerRetries != 1 {
					t.Fatalf("pool %d dialer retries %d: the settings must hold in every mode", c.Options().PoolSize, c.Options().DialerRetries)
				}
			case *redis.ClusterClient:
				addr = strings.Join(c.Options().Addrs, ",")
				if c.Options().PoolSize != 256 || c.Options().DialerRetries != 1 {
					t.Fatalf("pool %d dialer retries %d: the settings must hold in every mode", c.Options().PoolSize, c.Options().DialerRetries)
				}
			}
			if addr != tt.addr {
				t.Fatalf("address %q, want %q", addr, tt.addr)
			}
		})
	}
}
