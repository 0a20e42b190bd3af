// Package cache connects to Redis and offers a typed JSON cache that never
// fails a request: a Redis error is logged and counted, then treated as a miss
// (reads) or ignored (writes), so the service falls back to the store.
//
// For coherence it offers generation-guarded writes: a reader notes the
// generation before reading the store and its write lands only if no
// invalidation happened since, so a slow reader cannot put back data that a
// concurrent write has already invalidated.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"blogplatform/chassis/metrics"
)

// RedisOptions selects one of three deployments, all reached through
// go-redis's UniversalClient so callers never know which one they talk to:
// a single server (Host, Port; the default), a primary found through
// Sentinels (SentinelAddrs + SentinelMaster) or a Redis Cluster
// (ClusterAddrs, a seed list: the client discovers the other nodes). The
// pool, buffer, timeout and retry settings are the same in every mode.
type RedisOptions struct {
	Host string
	Port int
	// SentinelAddrs are the Sentinels' host:port; SentinelMaster is the
	// name they monitor. SentinelUsername/SentinelPassword log in to the
	// Sentinels themselves (Username/Password still log in to the data
	// nodes).
	SentinelAddrs    []string
	SentinelMaster   string
	SentinelUsername string
	SentinelPassword string
	// ClusterAddrs are some of the cluster's nodes (host:port).
	ClusterAddrs []string
	// Username is the Redis ACL user (Redis 6+); "" logs in as the default
	// user with Password alone (requirepass).
	Username string
	Password string
	DB       int // always 0 on a Cluster
	// Timeout bounds each Redis call (default 250ms): the cache must never be
	// slower than the store it protects.
	Timeout  time.Duration
	PoolSize int
	// Failover guards a Sentinel client against a promoted replica's
	// stale keys (see failover.go); ignored in the other modes.
	Failover FailoverOptions
}

// Redis deployment kinds, as reported by RedisOptions.Mode.
const (
	RedisSingle   = "single"
	RedisSentinel = "sentinel"
	RedisCluster  = "cluster"
)

// Mode names the deployment the options select.
func (o RedisOptions) Mode() string {
	switch {
	case len(o.ClusterAddrs) > 0:
		return RedisCluster
	case o.SentinelMaster != "":
		return RedisSentinel
	default:
		return RedisSingle
	}
}

// NewRedis returns a client; it does not ping (the service starts and serves
// from the store while Redis is down).
func NewRedis(o RedisOptions) redis.UniversalClient {
	if o.Timeout <= 0 {
		o.Timeout = 250 * time.Millisecond
	}
	if o.PoolSize <= 0 {
		// go-redis defaults to 10 per CPU (20 on 2 cores): fewer than the
		// requests a replica has in flight under load, so callers queued for
		// a connection, timed out and fell back to the store, which made the
		// overload worse. Connections are cheap for Redis. (On a Cluster
		// or behind Sentinel this is per node.)
		o.PoolSize = 256
	}
	u := &redis.UniversalOptions{
		Addrs:        []string{net.JoinHostPort(o.Host, strconv.Itoa(o.Port))},
		Username:     o.Username,
		Password:     o.Password,
		DB:           o.DB,
		DialTimeout:  o.Timeout * 2,
		ReadTimeout:  o.Timeout,
		WriteTimeout: o.Timeout,
		PoolSize:     o.PoolSize,
		MaxRetries:   1,
		// One dial attempt per try: go-redis otherwise retries a refused dial
		// five times with 100ms pauses, so every request would wait ~1s for
		// the fallback while Redis is down.
		DialerRetries:   1,
		DisableIdentity: true, // CLIENT SETINFO is unknown to older servers and stand-ins
		// go-redis gives every pooled connection 32 KiB read and write
		// buffers (and pipeline connections 128 KiB): with hundreds of
		// connections that is most of a replica's memory. The values here
		// are a few KiB (a blog, a list page of ids); larger replies are
		// read straight into their own slice, so small buffers cost
		// nothing but memory saved.
		ReadBufferSize:         8 << 10,
		WriteBufferSize:        8 << 10,
		PipelineReadBufferSize: 16 << 10,
	}
	switch o.Mode() {
	case RedisCluster:
		// IsClusterMode: a single seed address must still give a cluster
		// client (NewUniversalClient would otherwise pick a plain one).
		u.Addrs, u.IsClusterMode, u.DB = o.ClusterAddrs, true, 0
	case RedisSentinel:
		u.Addrs, u.MasterName = o.SentinelAddrs, o.SentinelMaster
		u.SentinelUsername, u.SentinelPassword = o.SentinelUsername, o.SentinelPassword
		u.OnConnect = newFailoverGuard(o.Failover).onConnect
	}
	return redis.NewUniversalClient(u)
}

// Cache is a named view on a Redis client (the name labels metrics).
type Cache struct {
	rdb     redis.UniversalClient
	name    string
	log     *slog.Logger
	metrics *metrics.Metrics
}

func New(rdb redis.UniversalClient, name string, log *slog.Logger, m *metrics.Metrics) *Cache {
	if log == nil {
		log = slog.Default()
	}
	return &Cache{rdb: rdb, name: name, log: log, metrics: m}
}

func (c *Cache) Client() redis.UniversalClient { return c.rdb }

func (c *Cache) warn(op, key string, err error) {
	c.metrics.Cache(c.name, "error")
	c.log.Warn("cache unavailable; falling back", "cache", c.name, "op", op, "key", key, "error", err.Error())
}

// GetRaw returns the stored bytes and whether it was a hit.
func (c *Cache) GetRaw(ctx context.Context, key string) ([]byte, bool) {
	b, err := c.rdb.Get(ctx, key).Bytes()
	switch {
	case err == nil:
		c.metrics.Cache(c.name, "hit")
		return b, true
	case errors.Is(err, redis.Nil):
		c.metrics.Cache(c.name, "miss")
	default:
		c.warn("get", key, err)
	}
	return nil, false
}

// GetManyRaw fetches several keys in one round trip (MGET). The result has
// one entry per key, nil for a miss; when Redis cannot answer every entry is
// nil, so callers fall back to the store exactly as for misses. On a Redis
// Cluster, whose MGET takes keys of one hash slot only, the keys are read
// with pipelined GETs instead: still one round trip per node, sent to the
// nodes in parallel.
func (c *Cache) GetManyRaw(ctx context.Context, keys ...string) [][]byte {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out
	}
	var vals []any
	var err error
	if IsCluster(c.rdb) && len(keys) > 1 {
		vals, err = getEach(ctx, c.rdb, keys)
	} else {
		vals, err = c.rdb.MGet(ctx, keys...).Result()
	}
	if err != nil {
		c.warn("mget", keys[0], err)
		return out
	}
	for i, v := range vals {
		if s, ok := v.(string); ok && i < len(out) {
			out[i] = []byte(s)
			c.metrics.Cache(c.name, "hit")
		} else {
			c.metrics.Cache(c.name, "miss")
		}
	}
	return out
}

// getEach is MGET as pipelined GETs (nil for a missing key), for keys that
// may live in different hash slots.
func getEach(ctx context.Context, rdb redis.UniversalClient, keys []string) ([]any, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	vals := make([]any, len(keys))
	for i, cmd := range cmds {
		if v, err := cmd.Result(); err == nil {
			vals[i] = v
		}
	}
	return vals, nil
}

// IsCluster reports whether rdb talks to a Redis Cluster, where every
// command and script must keep its keys in one hash slot.
func IsCluster(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}

// SlotTag is the part of key that Redis Cluster hashes to choose its slot:
// the text between the first "{" and the next "}" when that is not empty,
// otherwise the whole key.
func SlotTag(key string) string {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			return key[open+1 : open+1+n]
		}
	}
	return key
}

// SameSlot names a companion of key (a generation, a lock) that Redis
// Cluster keeps in key's hash slot, so one script may use both: name
// followed by key's slot tag in braces. key must not contain "}" unless it
// has a slot tag of its own (SlotTag would then not fit in braces).
func SameSlot(name, key string) string { return name + "{" + SlotTag(key) + "}" }

// GetJSON decodes a hit into dst; an undecodable value counts as a miss.
func (c *Cache) GetJSON(ctx context.Context, key string, dst any) bool {
	b, ok := c.GetRaw(ctx, key)
	if !ok {
		return false
	}
	if err := json.Unmarshal(b, dst); err != nil {
		c.log.Warn("cache value does not decode; ignoring it", "cache", c.name, "key", key, "error", err.Error())
		return false
	}
	return true
}

// SetJSON stores v with ttl; failures are logged only.
func (c *Cache) SetJSON(ctx context.Context, key string, v any, ttl time.Duration) {
	b, err := encode(v)
	if err != nil {
		c.log.Error("cache value does not encode", "cache", c.name, "key", key, "error", err.Error())
		return
	}
	if err := c.rdb.Set(ctx, key, b, ttl).Err(); err != nil {
		c.warn("set", key, err)
	}
}

// SetNXJSON stores v only when key is absent (used with tombstones: a
// revocation written with SetJSON is never overwritten by a slower reader).
func (c *Cache) SetNXJSON(ctx context.Context, key string, v any, ttl time.Duration) {
	b, err := encode(v)
	if err != nil {
		return
	}
	if err := c.rdb.SetNX(ctx, key, b, ttl).Err(); err != nil {
		c.warn("setnx", key, err)
	}
}

// Delete removes keys; it returns the error so a caller can retry. On a
// Redis Cluster several keys are deleted with one pipelined DEL each (a DEL
// of keys in different slots is refused there).
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	var err error
	if IsCluster(c.rdb) && len(keys) > 1 {
		pipe := c.rdb.Pipeline()
		for _, k := range keys {
			pipe.Del(ctx, k)
		}
		_, err = pipe.Exec(ctx)
	} else {
		err = c.rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		c.warn("del", keys[0], err)
		return err
	}
	return nil
}

// Generation reads the current generation of genKey ("0" when unset). ok is
// false when Redis cannot answer; then the caller should not write back.
func (c *Cache) Generation(ctx context.Context, genKey string) (gen string, ok bool) {
	v, err := c.rdb.Get(ctx, genKey).Result()
	switch {
	case err == nil:
		return v, true
	case errors.Is(err, redis.Nil):
		return "0", true
	default:
		c.warn("get", genKey, err)
		return "", false
	}
}

var setIfGeneration = redis.NewScript(`
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// SetIfGeneration stores v under key only while genKey still holds gen, so a
// reader that read the store before an invalidation cannot put its stale
// value back after it.
func (c *Cache) SetIfGeneration(ctx context.Context, genKey, gen, key string, v any, ttl time.Duration) {
	b, err := encode(v)
	if err != nil {
		return
	}
	if err := setIfGeneration.Run(ctx, c.rdb, []string{key, genKey}, b, ttl.Milliseconds(), gen).Err(); err != nil {
		c.warn("set_if_generation", key, err)
	}
}

var invalidate = redis.NewScript(`
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return 1`)

// Invalidate atomically bumps genKey and deletes keys. On a Redis Cluster
// they must all share genKey's hash slot (see SameSlot), as must the key
// and genKey of SetIfGeneration: the guard only works within one slot. It returns the error
// so the caller can retry. (Nothing records cached keys: a cache of many
// entries invalidates them by versioning their keys, never by a set that
// grows with the traffic.)
func (c *Cache) Invalidate(ctx context.Context, genKey string, keys []string) error {
	all := append([]string{genKey}, keys...)
	if err := invalidate.Run(ctx, c.rdb, all).Err(); err != nil {
		c.warn("invalidate", genKey, err)
		return err
	}
	return nil
}

// encode is json.Marshal, except that pre-encoded JSON (json.RawMessage,
// as the services' byte caches hold) is stored as it is instead of being
// scanned and copied again.
func encode(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok && raw != nil {
		return raw, nil
	}
	return json.Marshal(v)
}

// Ping checks Redis answers (readiness).
func (c *Cache) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }
