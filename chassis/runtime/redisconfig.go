package runtime

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"blogplatform/chassis/cache"
	"blogplatform/chassis/config"
)

// loadRedis reads the Redis variables. REDIS_HOST/REDIS_PORT (one server)
// stay the default; REDIS_SENTINEL_* select a Sentinel-managed primary and
// REDIS_CLUSTER_ADDRS a Redis Cluster. Contradictory settings are reported
// rather than resolved by a precedence rule nobody remembers.
func loadRedis(src *config.Source, defaultDB int) cache.RedisOptions {
	o := cache.RedisOptions{
		Host:             src.String("REDIS_HOST", "localhost"),
		Port:             src.Int("REDIS_PORT", 6379, 1, 65535),
		Password:         src.String("REDIS_PASSWORD", ""),
		Username:         src.String("REDIS_USERNAME", ""), // the service's own ACL user
		DB:               src.Int("REDIS_DB", defaultDB, 0, 15),
		Timeout:          src.Duration("REDIS_TIMEOUT", 250*time.Millisecond, time.Millisecond, time.Millisecond, 10*time.Second),
		SentinelAddrs:    hostPorts(src, "REDIS_SENTINEL_ADDRS"),
		SentinelMaster:   src.String("REDIS_SENTINEL_MASTER", ""),
		SentinelUsername: src.String("REDIS_SENTINEL_USERNAME", ""),
		SentinelPassword: src.String("REDIS_SENTINEL_PASSWORD", ""),
		ClusterAddrs:     hostPorts(src, "REDIS_CLUSTER_ADDRS"),
	}
	sentinels, cluster := src.String("REDIS_SENTINEL_ADDRS", ""), src.String("REDIS_CLUSTER_ADDRS", "")
	switch {
	case sentinels != "" && cluster != "":
		src.Check("REDIS_CLUSTER_ADDRS", errors.New("cannot be combined with REDIS_SENTINEL_ADDRS (choose Sentinel or Cluster)"))
	case sentinels != "" && o.SentinelMaster == "":
		src.Check("REDIS_SENTINEL_ADDRS", errors.New("needs REDIS_SENTINEL_MASTER (the master name the Sentinels monitor)"))
	case sentinels == "" && o.SentinelMaster != "":
		src.Check("REDIS_SENTINEL_MASTER", errors.New("needs REDIS_SENTINEL_ADDRS (the Sentinels' host:port list)"))
	case cluster != "":
		// A Cluster has database 0 only. A service's default database
		// (blog uses 2 on a single server) silently becomes 0; an explicit
		// other value is a mistake worth stopping for.
		if db := src.String("REDIS_DB", ""); db != "" && o.DB != 0 {
			src.Check("REDIS_DB", fmt.Errorf("is %s; must be 0 with REDIS_CLUSTER_ADDRS (Redis Cluster has only database 0)", db))
		}
		o.DB = 0
	}
	return o
}

// hostPorts reads a comma-separated host:port list; an item that is not
// host:port with a port from 1 to 65535 is reported.
func hostPorts(src *config.Source, key string) []string {
	addrs := src.List(key, nil)
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || strings.ContainsAny(host, " /") || perr != nil || n < 1 || n > 65535 {
			shown := fmt.Sprintf("%q", a)
			if strings.Contains(a, "@") {
				// user:password@host: the entry holds credentials; name its
				// place, never its text.
				shown = fmt.Sprintf("entry %d (it holds credentials, which belong in REDIS_USERNAME/REDIS_PASSWORD)", i+1)
			}
			src.Check(key, fmt.Errorf("%s is not host:port (a comma-separated list of host:port is expected)", shown))
			return nil
		}
	}
	return addrs
}
