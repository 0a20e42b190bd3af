package changefeed_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/chassis/changefeed"
	"blogplatform/devkit/wait"
)

const feedSubject = "events.test.fed"

// slowReplica follows the feed with a handler that takes a while, so a
// Publish that returned before it finished would be seen.
type slowReplica struct {
	feed *changefeed.Feed
	nc   *nats.Conn
	mu   sync.Mutex
	seen map[int]bool
}

func (r *slowReplica) applied(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[n]
}

func newFeeds(t *testing.T, n int) []*slowReplica {
	t.Helper()
	srv := startNATS(t)
	out := make([]*slowReplica, n)
	for i := range out {
		nc := connect(t, srv, "replica-"+strconv.Itoa(i))
		f, err := changefeed.NewFeed(nc, feedSubject, quiet)
		if err != nil {
			t.Fatal(err)
		}
		r := &slowReplica{feed: f, nc: nc, seen: map[int]bool{}}
		if err := f.Follow(func(_ string, data []byte) {
			var e event
			if err := json.Unmarshal(data, &e); err != nil {
				panic(err)
			}
			time.Sleep(30 * time.Millisecond)
			r.mu.Lock()
			r.seen[e.N] = true
			r.mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		out[i] = r
	}
	for _, r := range out {
		wait.Eventually(t, 5*time.Second, "followers know each other", func() bool { return r.feed.Peers() == n-1 })
	}
	return out
}

// TestFeedPublishWaitsForEveryFollower: when Publish returns, every live
// follower (the publisher's own included) has applied the event.
func TestFeedPublishWaitsForEveryFollower(t *testing.T) {
	rs := newFeeds(t, 3)
	for n := 1; n <= 5; n++ {
		pub := rs[n%3]
		if err := pub.feed.Publish(context.Background(), event{From: "p", N: n}); err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if !r.applied(n) {
				t.Fatalf("event %d: Publish returned before replica %d applied it", n, i)
			}
		}
	}
}

// TestFeedHeadersCarryTheProtocol: origin and sequence travel in headers,
// the payload is the plain event.
func TestFeedHeadersCarryTheProtocol(t *testing.T) {
	rs := newFeeds(t, 1)
	sub, err := rs[0].nc.SubscribeSync(feedSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs[0].nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= 2; seq++ {
		if err := rs[0].feed.Publish(context.Background(), event{From: "x", N: seq}); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(event{From: "x", N: seq})
		if string(m.Data) != string(want) {
			t.Errorf("payload %s, want the plain event %s", m.Data, want)
		}
		if got := m.Header.Get(changefeed.HeaderOrigin); got != rs[0].feed.Origin() {
			t.Errorf("origin header %q, want %q", got, rs[0].feed.Origin())
		}
		if got := m.Header.Get(changefeed.HeaderSeq); got != strconv.Itoa(seq) {
			t.Errorf("seq header %q, want %d", got, seq)
		}
	}
}

// TestFeedGoneAndSilentFollowers: a follower that closes says so and is
// not waited for at all; one that vanishes without a word costs a Publish
// at most the timeout, and only until its presence runs out.
func TestFeedGoneAndSilentFollowers(t *testing.T) {
	rs := newFeeds(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	n := 0
	publish := func() (time.Duration, error) {
		n++
		start := time.Now()
		err := a.feed.Publish(context.Background(), event{From: "a", N: n})
		return time.Since(start), err
	}
	if d, err := publish(); err != nil || d > 500*time.Millisecond {
		t.Fatalf("publish with live followers: %v after %v", err, d)
	}
	b.feed.Close()
	if got := a.feed.Peers(); got != 1 {
		// The goodbye is flushed by Close; it reaches A a moment later.
		wait.Eventually(t, time.Second, "B no longer a peer", func() bool { return a.feed.Peers() == 1 })
	}
	if d, err := publish(); err != nil || d > 500*time.Millisecond {
		t.Errorf("publish after B said goodbye: %v after %v", err, d)
	}
	c.nc.Close() // C vanishes without a word
	d, err := publish()
	if !errors.Is(err, changefeed.ErrNotAcknowledged) {
		t.Errorf("publish with a silent follower: error %v, want ErrNotAcknowledged", err)
	}
	if d > changefeed.PublishTimeout+300*time.Millisecond {
		t.Errorf("publish waited %v for a silent follower, more than the publish timeout", d)
	}
	wait.Eventually(t, 2*changefeed.PresenceFor, "C no longer a peer", func() bool { return a.feed.Peers() == 0 })
	if d, err := publish(); err != nil || d > 500*time.Millisecond {
		t.Errorf("publish after C's presence ran out: %v after %v", err, d)
	}
	if !a.applied(n) {
		t.Error("the publisher did not apply its own event before Publish returned")
	}
}

// TestFeedPublisherOnly: a feed that does not follow still waits for the
// followers, and not for itself.
func TestFeedPublisherOnly(t *testing.T) {
	rs := newFeeds(t, 1)
	srv := rs[0].nc.ConnectedUrl()
	nc, err := nats.Connect(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, err := changefeed.NewFeed(nc, feedSubject, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	wait.Eventually(t, 5*time.Second, "the follower is known", func() bool { return pub.Peers() == 1 })
	if err := pub.Publish(context.Background(), event{N: 7}); err != nil {
		t.Fatal(err)
	}
	if !rs[0].applied(7) {
		t.Error("Publish returned before the follower applied the event")
	}
}

// TestFeedPublishWhileNATSDown: a change made while NATS is away waits at
// most the publish timeout and reports the failure.
func TestFeedPublishWhileNATSDown(t *testing.T) {
	srv := startNATS(t)
	nc := connect(t, srv, "replica")
	f, err := changefeed.NewFeed(nc, feedSubject, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	if err := f.Follow(func(string, []byte) {}); err != nil {
		t.Fatal(err)
	}
	if err := f.Publish(context.Background(), event{N: 1}); err != nil {
		t.Fatalf("publish while connected: %v", err)
	}
	srv.Shutdown()
	wait.Eventually(t, 5*time.Second, "connection lost", func() bool { return !nc.IsConnected() })
	start := time.Now()
	err = f.Publish(context.Background(), event{N: 2})
	if err == nil {
		t.Error("publish while NATS is down reported success")
	}
	if d := time.Since(start); d > changefeed.PublishTimeout+300*time.Millisecond {
		t.Errorf("publish while NATS is down took %v, more than the publish timeout", d)
	}
}
