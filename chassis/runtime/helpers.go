package runtime

import (
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
)

type ginContext = gin.Context

func redisClient(o cache.RedisOptions) *redis.Client { return cache.NewRedis(o) }
