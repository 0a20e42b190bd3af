package runtime

import (
	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
)

func redisClient(o cache.RedisOptions) *redis.Client { return cache.NewRedis(o) }
