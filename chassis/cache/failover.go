package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Failover safety behind Sentinel.
//
// Redis replicates asynchronously: a primary acknowledges a write before
// its replicas have it. When the primary dies, Sentinel promotes a replica
// that may lack the last writes, and among them the invalidations: the
// deletes, version bumps and revocation markers the services wrote after
// changing the store. The new primary then serves values the store no
// longer holds, until their TTL. The services' own caches in front of
// Redis do not help: they refill from Redis.
//
// So no value written under another primary is trusted. Every new
// connection of a Sentinel client first asks the node who it is (INFO:
// its run_id, which is new for every redis-server process and differs
// between a primary and the replica that replaces it) and compares it with
// the service's marker key in that database, which records the primary the
// service's keys were last purged on:
//   - equal: the keys were written under this primary; the connection is
//     used;
//   - different (a promoted replica, or a primary restarted from an older
//     snapshot): the first connection to get there takes a lease (the
//     purge lock), deletes every key of the service (its KeySpace
//     patterns), then records the primary in the marker and releases the
//     lease; meanwhile every other connection of every replica of the
//     service is refused, so their requests fall back to the store exactly
//     as when Redis is down, and none of them reads a value of the old
//     primary's timeline.
//
// The check lives in Redis (the marker), not in one process: whichever
// replica reaches the new primary first purges for all of them, and no
// connection of any replica is used before the purge ended. A purger that
// dies mid-purge loses its lease after FailoverOptions.Lease and another
// connection starts over. A node that answers as a replica is never used.
//
// This covers a primary that fails (crash, kill, lost host). An old
// primary that is cut off but still running keeps acknowledging writes of
// the clients that still reach it until they learn of the switch (go-redis
// follows the Sentinels' +switch-master); bound that window with
// min-replicas-to-write / min-replicas-max-lag on the data nodes.

// KeySpace is what one service owns in a Redis database.
type KeySpace struct {
	// Patterns match every key of the service (SCAN MATCH globs such as
	// "auth_*"): what a new primary must not serve from the old one.
	Patterns []string
	// Marker is the service's key recording the primary its keys were last
	// purged on. It must match one of Patterns (so a Redis ACL of the
	// service allows it) and must not be a name the service builds from
	// client input.
	Marker string
}

// Validate reports a key space the guard cannot work with.
func (k KeySpace) Validate() error {
	if len(k.Patterns) == 0 || k.Marker == "" {
		return errors.New("cache: a Sentinel client needs the service's key space (key patterns and a marker key) to discard it after a failover")
	}
	for _, p := range k.Patterns {
		if p == "" || p == "*" {
			return fmt.Errorf("cache: key pattern %q would take other services' keys", p)
		}
	}
	return nil
}

// FailoverOptions configure the guard of a Sentinel client.
type FailoverOptions struct {
	Keys   KeySpace
	Logger *slog.Logger
	// Lease bounds how long the other connections wait for a purger that
	// died (default 10s); a live purger renews it with every batch, so a
	// purge may take longer than one lease.
	Lease time.Duration
}

// ErrPurging refuses a connection while another connection discards the
// service's keys on a new primary: callers fall back to the store.
var ErrPurging = errors.New("cache: the Redis primary changed and this service's keys are being discarded")

// ErrNotPrimary refuses a connection to a node that answers as a replica.
var ErrNotPrimary = errors.New("cache: the node the Sentinels named is not (yet) a primary")

// purgeBatch is the SCAN COUNT hint and the most keys deleted per call.
const purgeBatch = 500

type failoverGuard struct {
	keys  KeySpace
	lock  string
	log   *slog.Logger
	lease time.Duration
}

func newFailoverGuard(o FailoverOptions) *failoverGuard {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Second
	}
	return &failoverGuard{keys: o.Keys, lock: o.Keys.Marker + ":purge", log: o.Logger, lease: o.Lease}
}

// enter: 1 when the keys were purged on this primary, 2 when the caller
// took the lease and must purge, 0 when another connection is purging.
// KEYS[1] marker, KEYS[2] lock; ARGV[1] run_id, ARGV[2] token, ARGV[3]
// lease in milliseconds.
var enterScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 2 end
return 0`)

// purgeScript deletes KEYS[2..] while the caller holds the lease (KEYS[1]
// holds ARGV[1]) and renews the lease; -1 when it was lost.
var purgeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if #KEYS > 1 then return redis.call('DEL', unpack(KEYS, 2)) end
return 0`)

// finishScript records the primary in the marker and releases the lease,
// if still held. KEYS[1] marker, KEYS[2] lock; ARGV[1] run_id, ARGV[2]
// token.
var finishScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1`)

// releaseScript gives up the lease if the caller still holds it. KEYS[1]
// lock; ARGV[1] token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// onConnect is the client's OnConnect: it runs on every new connection,
// after AUTH and SELECT, before the connection serves any command.
func (g *failoverGuard) onConnect(ctx context.Context, cn *redis.Conn) error {
	if err := g.keys.Validate(); err != nil {
		return err
	}
	runID, err := primaryRunID(ctx, cn)
	if err != nil || runID == "" {
		return err // runID "": a Sentinel (go-redis passes OnConnect on to them)
	}
	token := rand.Text()
	state, err := enterScript.Run(ctx, cn, []string{g.keys.Marker, g.lock}, runID, token, g.lease.Milliseconds()).Int()
	switch {
	case err != nil:
		return err
	case state == 1:
		return nil
	case state == 0:
		return ErrPurging
	}
	// The purge must finish even if the request that opened this
	// connection gives up: the others wait for it. It has no overall
	// deadline (a large key space takes many batches): each command is
	// bounded by the client's own read and write timeouts, and the lease,
	// renewed with every batch, tells the other connections the purger is
	// alive; a purger that stops answering loses it after one lease.
	pctx := context.WithoutCancel(ctx)
	begin := time.Now()
	n, err := g.purge(pctx, cn, token)
	if err == nil {
		var ok int
		ok, err = finishScript.Run(pctx, cn, []string{g.keys.Marker, g.lock}, runID, token).Int()
		if err == nil && ok != 1 {
			err = errLeaseLost
		}
	}
	if err != nil {
		// Let the next connection start over at once instead of waiting
		// for the lease to expire.
		_ = releaseScript.Run(pctx, cn, []string{g.lock}, token).Err()
		g.log.Warn("redis primary changed; discarding this service's cached keys failed, another connection will retry",
			"run_id", runID, "deleted", n, "error", err.Error())
		return errors.New("cache: discarding keys after a primary change: " + err.Error())
	}
	g.log.Warn("redis primary changed; discarded this service's cached keys written under the previous primary",
		"run_id", runID, "deleted", n, "took", time.Since(begin).String())
	return nil
}

var errLeaseLost = errors.New("purge lease lost")

// purge deletes every key of the key space except the marker and the lock,
// in batches, renewing the lease with each.
func (g *failoverGuard) purge(ctx context.Context, cn *redis.Conn, token string) (int64, error) {
	var deleted int64
	for _, pattern := range g.keys.Patterns {
		var cursor uint64
		for {
			keys, next, err := cn.Scan(ctx, cursor, pattern, purgeBatch).Result()
			if err != nil {
				return deleted, permissionHint(err)
			}
			batch := append(make([]string, 0, len(keys)+1), g.lock)
			for _, k := range keys {
				if k != g.keys.Marker && k != g.lock {
					batch = append(batch, k)
				}
			}
			n, err := purgeScript.Run(ctx, cn, batch, token, g.lease.Milliseconds()).Int64()
			switch {
			case err != nil:
				return deleted, err
			case n < 0:
				return deleted, errLeaseLost
			}
			deleted += n
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return deleted, nil
}

// primaryRunID returns the node's run_id, or ErrNotPrimary when it answers
// as a replica (the Sentinels named it before it finished its promotion, or
// it was demoted since), or "" for a Sentinel.
func primaryRunID(ctx context.Context, cn *redis.Conn) (string, error) {
	var server, repl *redis.StringCmd
	_, _ = cn.Pipelined(ctx, func(p redis.Pipeliner) error {
		server, repl = p.Info(ctx, "server"), p.Info(ctx, "replication")
		return nil
	})
	if err := server.Err(); err != nil {
		return "", permissionHint(err)
	}
	if infoField(server.Val(), "redis_mode") == "sentinel" {
		return "", nil
	}
	if err := repl.Err(); err != nil {
		return "", permissionHint(err)
	}
	if role := infoField(repl.Val(), "role"); role != "master" {
		return "", fmt.Errorf("%w (role %q)", ErrNotPrimary, role)
	}
	id := infoField(server.Val(), "run_id")
	if id == "" {
		return "", errors.New("cache: the Redis primary reports no run_id")
	}
	return id, nil
}

// permissionHint says what to grant when a Redis ACL refuses the guard's
// commands: without them no connection is used and the service runs
// uncached. (go-redis unwraps an OnConnect error once, so the hint is a
// flat message, not a wrapper.)
func permissionHint(err error) error {
	if strings.HasPrefix(err.Error(), "NOPERM") {
		return errors.New("cache: behind Sentinel the service's Redis user needs +info and +scan (the failover guard): " + err.Error())
	}
	return err
}

// infoField is one "name:value" line of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
