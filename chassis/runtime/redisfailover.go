package runtime

import (
	"log/slog"

	"blogplatform/chassis/cache"
)

// withFailover completes the Redis options of a Sentinel deployment with
// the service's key space, which its client discards on a new primary
// before using it (see cache.KeySpace); without one the service does not
// start, since it could not tell which keys to distrust. Other modes are
// returned unchanged.
func withFailover(o cache.RedisOptions, keys cache.KeySpace, log *slog.Logger) (cache.RedisOptions, error) {
	if o.Mode() != cache.RedisSentinel {
		return o, nil
	}
	if err := keys.Validate(); err != nil {
		return o, err
	}
	o.Failover = cache.FailoverOptions{Keys: keys, Logger: log}
	return o, nil
}
