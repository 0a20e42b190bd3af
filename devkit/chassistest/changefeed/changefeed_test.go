package changefeed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/localcache"
	"blogplatform/devkit/embedded"
	"blogplatform/devkit/wait"
)

const subject = "events.test.changed"

type event struct {
	From string `json:"from"`
	N    int    `json:"n"`
}

var quiet = slog.New(slog.DiscardHandler)

func startNATS(t *testing.T) *embedded.NATS {
	t.Helper()
	n, err := embedded.StartNATS(embedded.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// connect is a replica's connection: it reconnects quickly and forever, as
// the services' connections do.
func connect(t *testing.T, n *embedded.NATS, name string, extra ...nats.Option) *nats.Conn {
	t.Helper()
	opts := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(0, 0)}, extra...)
	nc, err := nats.Connect(n.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// recorder keeps every event a follower handled, in order.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) handle(_ string, data []byte) {
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// follow subscribes a new replica connection with a cache to guard.
func follow(t *testing.T, nc *nats.Conn, handle func(string, []byte)) (*localcache.Cache[string], *changefeed.Follower) {
	t.Helper()
	cache := localcache.New[string](localcache.Options{Name: "test", TTL: time.Minute})
	f, err := changefeed.Follow(nc, subject, handle, quiet, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	if err := nc.Flush(); err != nil { // the server has the subscription
		t.Fatal(err)
	}
	return cache, f
}

// Every follower (a plain subscription on every replica, not a queue group)
// gets every event, each publisher's in order; and Publish returns only
// once the server holds the event, so the caller may answer its client.
func TestEventsReachEveryFollower(t *testing.T) {
	n := startNATS(t)
	const followers, perPublisher = 3, 50
	recs := make([]*recorder, followers)
	for i := range recs {
		recs[i] = &recorder{}
		follow(t, connect(t, n, fmt.Sprint("follower-", i)), recs[i].handle)
	}
	publishers := map[string]*changefeed.Feed{
		"a": newFeed(t, connect(t, n, "publisher-a")),
		"b": newFeed(t, connect(t, n, "publisher-b")),
	}
	// A witness asks the server for a round trip after each Publish: the
	// server answers it only after delivering what it already holds, so
	// the event must be waiting at the witness by then.
	witness := connect(t, n, "witness")
	seen, err := witness.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := witness.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range perPublisher {
		for name, p := range publishers {
			if err := p.Publish(context.Background(), event{From: name, N: i}); err != nil {
				t.Fatal(err)
			}
			if err := witness.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := seen.NextMsg(0); err != nil {
				t.Fatalf("Publish returned before the server had the event: %v", err)
			}
		}
	}
	for i, r := range recs {
		wait.Eventually(t, 5*time.Second, fmt.Sprint("follower ", i, " gets every event"), func() bool {
			return len(r.snapshot()) == len(publishers)*perPublisher
		})
		next := map[string]int{}
		for _, e := range r.snapshot() {
			if e.N != next[e.From] {
				t.Fatalf("follower %d: event %d of %s after %d", i, e.N, e.From, next[e.From]-1)
			}
			next[e.From]++
		}
	}
}

func TestPublishOnAClosedConnectionFails(t *testing.T) {
	n := startNATS(t)
	nc := connect(t, n, "publisher")
	f := newFeed(t, nc)
	nc.Close()
	if err := f.Publish(context.Background(), event{}); err == nil {
		t.Fatal("publish on a closed connection reported success")
	}
}

// newFeed is a feed on subject that only publishes (the followers of these
// tests use the bare Follow, which neither announces itself nor
// acknowledges, so Publish waits for nobody but the server).
func newFeed(t *testing.T, nc *nats.Conn) *changefeed.Feed {
	t.Helper()
	f, err := changefeed.NewFeed(nc, subject, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// While the follower's connection is down it may miss events, so its
// caches neither serve nor store; when it is back they start empty (an
// event sent meanwhile was lost), and events reach it again.
func TestCachesSuspendedWhileDisconnected(t *testing.T) {
	cases := []struct {
		name string
		// cut separates the follower from the server; restore undoes it
		// (nil when the follower reconnects on its own).
		cut, restore func(t *testing.T, n *embedded.NATS, follower *nats.Conn)
	}{
		{
			name: "server restarts",
			cut:  func(t *testing.T, n *embedded.NATS, _ *nats.Conn) { n.Shutdown() },
			restore: func(t *testing.T, n *embedded.NATS, _ *nats.Conn) {
				if err := n.Restart(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// The server drops this one client (as it drops one that
			// stopped answering pings); the client reconnects at once.
			name: "server drops the client",
			cut: func(t *testing.T, n *embedded.NATS, follower *nats.Conn) {
				id, err := follower.GetClientID()
				if err != nil {
					t.Fatal(err)
				}
				if err := n.Server().DisconnectClientByID(id); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := startNATS(t)
			nc := connect(t, n, "follower")
			rec := &recorder{}
			cache, _ := follow(t, nc, rec.handle)
			if !cache.Set("k", "v", cache.Generation(), "user:1") {
				t.Fatal("a connected follower's cache refused a fill")
			}

			// A fill that began before the cut must not land after it.
			generation := cache.Generation()
			tc.cut(t, n, nc)
			if tc.restore != nil {
				// The server stays away until restored: the cache must
				// stop serving meanwhile. (A dropped client is back
				// within milliseconds, too fast to watch it suspended.)
				wait.Eventually(t, 5*time.Second, "the cache is suspended", cache.Suspended)
				if _, ok := cache.Get("k"); ok {
					t.Fatal("served while disconnected")
				}
				if cache.Set("k2", "v", cache.Generation()) {
					t.Fatal("stored while disconnected")
				}
				tc.restore(t, n, nc)
			}
			wait.Eventually(t, 5*time.Second, "the follower reconnects", func() bool {
				return nc.IsConnected() && nc.Stats().Reconnects > 0
			})
			// Resumed, and without the entry from before the cut (status
			// changes reach the follower asynchronously, so wait for both).
			wait.Eventually(t, 5*time.Second, "the cache serves again, empty", func() bool {
				return !cache.Suspended() && cache.Len() == 0
			})
			if cache.Set("old", "v", generation) {
				t.Fatal("a fill begun before the disconnection was stored after it")
			}
			if !cache.Set("k", "v2", cache.Generation()) {
				t.Fatal("fill refused after the connection came back")
			}

			// The subscription is back: events arrive again.
			pub := newFeed(t, connect(t, n, "publisher-after"))
			wait.Eventually(t, 5*time.Second, "events reach the follower again", func() bool {
				if err := pub.Publish(context.Background(), event{From: "after", N: 0}); err != nil {
					t.Fatal(err)
				}
				for _, e := range rec.snapshot() {
					if e.From == "after" {
						return true
					}
				}
				return false
			})
		})
	}
}

// A closed connection never comes back: its caches stay suspended, and so
// do those of a stopped follower.
func TestCachesSuspendedForGood(t *testing.T) {
	n := startNATS(t)
	closed := connect(t, n, "closed")
	cacheClosed, _ := follow(t, closed, func(string, []byte) {})
	stopped := connect(t, n, "stopped")
	cacheStopped, f := follow(t, stopped, func(string, []byte) {})
	if cacheClosed.Suspended() || cacheStopped.Suspended() {
		t.Fatal("suspended while connected")
	}
	closed.Close()
	wait.Eventually(t, 5*time.Second, "a closed connection suspends its caches", cacheClosed.Suspended)
	f.Stop()
	if !cacheStopped.Suspended() {
		t.Fatal("Stop left the cache serving")
	}
}

// Following on a connection that is down (reconnecting) starts suspended.
func TestFollowWhileDisconnected(t *testing.T) {
	n := startNATS(t)
	nc := connect(t, n, "follower")
	n.Shutdown()
	wait.Eventually(t, 5*time.Second, "the client sees the server go", func() bool { return !nc.IsConnected() })
	cache := localcache.New[string](localcache.Options{Name: "test"})
	f, err := changefeed.Follow(nc, subject, func(string, []byte) {}, quiet, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	if !cache.Suspended() {
		t.Fatal("a follower without a connection serves")
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 5*time.Second, "serves once connected", func() bool { return !cache.Suspended() })
}

// A follower that falls behind loses events (its client drops what exceeds
// the subscription's pending limit): its caches are emptied, since what the
// lost events changed is unknown, and they keep serving.
func TestDroppedEventsEmptyTheCaches(t *testing.T) {
	n := startNATS(t)
	slow := make(chan struct{}, 1)
	nc := connect(t, n, "slow-follower", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			select {
			case slow <- struct{}{}:
			default:
			}
		}
	}))
	release := make(chan struct{})
	var handled atomic.Int64
	cache, _ := follow(t, nc, func(string, []byte) {
		if handled.Add(1) == 1 {
			<-release // the follower is stuck on its first event
		}
	})
	if !cache.Set("k", "v", cache.Generation(), "untouched-by-events") {
		t.Fatal("fill refused")
	}

	// nats.go's default pending limit of a subscription is 64 MiB (or
	// 65,536 messages): a few hundred large events exceed it cheaply.
	payload := make([]byte, 512<<10)
	events := int(nats.DefaultSubPendingBytesLimit/len(payload)) + 8
	pub := connect(t, n, "publisher")
	for range events {
		if err := pub.Publish(subject, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-slow:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower dropped nothing")
	}
	if _, ok := cache.Get("k"); !ok {
		t.Fatal("the entry went before any event was handled")
	}
	close(release)
	wait.Eventually(t, 10*time.Second, "the dropped events empty the cache", func() bool { return cache.Len() == 0 })
	if cache.Suspended() {
		t.Fatal("the cache stays suspended after dropped events")
	}
	if !cache.Set("k", "v", cache.Generation()) {
		t.Fatal("fill refused after the drop")
	}
	// The client dropped the events itself: the server did not cut it off
	// (which would empty the cache for another reason).
	if r := nc.Stats().Reconnects; r != 0 {
		t.Fatalf("the follower reconnected %d times", r)
	}
}

// A server that does not allow the subscription would leave the caches
// serving without ever hearing of a change: Follow fails instead, naming
// the subject, and a permitted subject follows normally.
func TestFollowRefusedByPermissions(t *testing.T) {
	n, err := embedded.StartNATS(embedded.NATSOptions{Users: []embedded.NATSUser{
		{Name: "blog", Password: "b", Publish: []string{}, Subscribe: []string{"events.blog.>"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	nc := connect(t, n, "blog", nats.UserInfo("blog", "b"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	cache := localcache.New[string](localcache.Options{Name: "test"})
	f, err := changefeed.Follow(nc, "events.auth.changed", func(string, []byte) {}, quiet, cache)
	if err == nil {
		f.Stop()
		t.Fatal("Follow accepted a subscription the server refuses")
	}
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "events.auth.changed") {
		t.Fatalf("err = %v, want a permissions violation naming the subject", err)
	}
	f, err = changefeed.Follow(nc, "events.blog.changed", func(string, []byte) {}, quiet, cache)
	if err != nil {
		t.Fatalf("a permitted subject: %v", err)
	}
	f.Stop()
}
