package runtime

import (
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/cache"
)

type ginContext = gin.Context

func redisClient(host string, port int, password string, db int, timeout time.Duration) *redis.Client {
	return cache.NewRedis(cache.RedisOptions{Host: host, Port: port, Password: password, DB: db, Timeout: timeout})
}
