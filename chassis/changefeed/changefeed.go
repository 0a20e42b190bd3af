// Package changefeed carries change events between replicas over NATS, so
// per-replica caches (package localcache) drop what another replica changed.
//
// Events are plain NATS publications, not queue-group requests: every
// subscribed replica of every service receives each one. A Feed (feed.go)
// numbers them and waits until every live follower has acknowledged one
// before its publisher answers the client whose request caused it.
//
// Core NATS does not keep events for a follower that is away. Follow
// therefore suspends the caches it guards while the connection is down and
// empties them when it is back, and empties them too when the subscription
// drops events because its follower fell behind.
package changefeed

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// PublishTimeout bounds one Feed.Publish: the flush and the wait for the
// acknowledgements.
const PublishTimeout = time.Second

// Guarded is what Follow protects: a cache that can stop serving while
// events may be missed and start again empty (localcache.Cache).
type Guarded interface {
	Suspend()
	Resume()
}

// Follower is one subscription and the caches it guards.
type Follower struct {
	nc       *nats.Conn
	sub      *nats.Subscription
	statuses chan nats.Status
	guarded  []Guarded
	log      *slog.Logger

	mu        sync.Mutex
	dropped   int
	suspended bool
	done      chan struct{}
}

// Follow subscribes to subject (wildcards allowed) on every replica and
// calls handle with each event's payload, in order, on one goroutine.
// guarded caches are suspended while the connection is not up and resumed
// empty when it is (and emptied when events were dropped).
func Follow(nc *nats.Conn, subject string, handle func(subject string, data []byte), log *slog.Logger, guarded ...Guarded) (*Follower, error) {
	return followMsgs(nc, subject, func(m *nats.Msg) { handle(m.Subject, m.Data) }, log, guarded...)
}

// followMsgs is Follow with the whole message (headers included) handed
// to handle.
func followMsgs(nc *nats.Conn, subject string, handle func(m *nats.Msg), log *slog.Logger, guarded ...Guarded) (*Follower, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &Follower{nc: nc, guarded: guarded, log: log, done: make(chan struct{})}
	// Listen before looking at the status, so no change falls in between.
	f.statuses = nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	if nc.IsConnected() {
		f.resume()
	} else {
		f.suspend()
	}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		handle(m)
		f.checkDropped()
	})
	if err == nil {
		err = refused(nc, subject)
		if err != nil {
			_ = sub.Unsubscribe()
		}
	}
	if err != nil {
		nc.RemoveStatusListener(f.statuses)
		return nil, fmt.Errorf("changefeed: subscribe %s: %w", subject, err)
	}
	f.sub = sub
	go f.watch()
	return f, nil
}

// refused reports the server's refusal of the subscription to subject. A
// server that does not allow it says so only asynchronously, and the
// caches would then serve without ever hearing of a change: a
// misconfigured permission must stop the service instead. The server
// answers a flush after handling the subscription, so its refusal has
// arrived by then. A flush that fails otherwise (NATS away at start-up)
// refuses nothing: the caches stay suspended until the connection is up.
func refused(nc *nats.Conn, subject string) error {
	if err := nc.FlushTimeout(PublishTimeout); err != nil {
		return nil
	}
	if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
		return err
	}
	return nil
}

func (f *Follower) watch() {
	defer close(f.done)
	// The connection's state is read when a change is handled rather than
	// taken from the notice: nats.go drops notices while this channel is
	// full, so the last one seen may not be the last change, but every
	// change is followed by a notice handled after it.
	for range f.statuses {
		if f.nc.IsConnected() {
			f.log.Info("change events: connection back; local caches start empty")
			f.resume()
		} else {
			f.suspend()
		}
	}
}

// checkDropped empties the caches when the subscription lost events
// (slow consumer): what they dropped is unknown.
func (f *Follower) checkDropped() {
	n, err := f.sub.Dropped()
	if err != nil {
		return
	}
	f.mu.Lock()
	grew := n > f.dropped
	f.dropped = n
	f.mu.Unlock()
	if grew {
		f.log.Warn("change events dropped; local caches emptied", "subject", f.sub.Subject, "dropped", n)
		f.resume()
	}
}

func (f *Follower) suspend() {
	f.mu.Lock()
	f.suspended = true
	f.mu.Unlock()
	for _, g := range f.guarded {
		g.Suspend()
	}
}

func (f *Follower) resume() {
	f.mu.Lock()
	f.suspended = false
	f.mu.Unlock()
	for _, g := range f.guarded {
		g.Resume()
	}
}

// Suspended reports whether the guarded caches are suspended (the
// connection is not up, or the follower stopped).
func (f *Follower) Suspended() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suspended
}

// Stop unsubscribes and leaves the caches suspended.
func (f *Follower) Stop() {
	if f.sub != nil {
		_ = f.sub.Unsubscribe()
	}
	f.nc.RemoveStatusListener(f.statuses)
	<-f.done
	f.suspend()
}
