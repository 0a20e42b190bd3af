package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisCounters is what redis-server reports about its own work: CPU seconds
// (INFO cpu: used_cpu_sys + used_cpu_user, microsecond resolution, the
// server's main thread and its background threads) and commands processed
// (INFO stats: total_commands_processed).
type redisCounters struct {
	CPU      float64
	Commands float64
}

// redisStats reads the counters of one Redis server as its default user.
type redisStats struct {
	client *redis.Client
}

func newRedisStats(addr, password string) *redisStats {
	return &redisStats{client: redis.NewClient(&redis.Options{Addr: addr, Password: password, PoolSize: 1,
		DisableIdentity: true})}
}

func (r *redisStats) Close() error { return r.client.Close() }

// read returns the counters; the INFO call itself counts one command, which
// the caller's request counts dwarf.
func (r *redisStats) read(ctx context.Context) (redisCounters, error) {
	raw, err := r.client.Info(ctx, "cpu", "stats").Result()
	if err != nil {
		return redisCounters{}, fmt.Errorf("redis INFO: %w", err)
	}
	return parseRedisInfo(raw)
}

// parseRedisInfo reads used_cpu_sys, used_cpu_user and
// total_commands_processed from INFO's "field:value" lines.
func parseRedisInfo(raw string) (redisCounters, error) {
	var c redisCounters
	var have int
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_cpu_sys", "used_cpu_user", "total_commands_processed":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return c, fmt.Errorf("redis INFO: bad %s %q", k, v)
			}
			if k == "total_commands_processed" {
				c.Commands = f
			} else {
				c.CPU += f
			}
			have++
		}
	}
	if have != 3 {
		return c, fmt.Errorf("redis INFO: lacks used_cpu_sys, used_cpu_user or total_commands_processed")
	}
	return c, nil
}
