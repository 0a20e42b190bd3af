package changes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/localcache"
)

// loopback is a publisher whose events come back to a feed's Handle, like
// NATS delivering a replica's own events to its follower; fail makes it
// refuse instead, lose drops the event.
type loopback struct {
	mu        sync.Mutex
	feed      *Feed
	published []authwire.Change
	fail      bool
	lose      bool
}

func (l *loopback) Publish(_ context.Context, subject string, event any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if subject != authwire.SubjectChanges {
		return errors.New("wrong subject " + subject)
	}
	if l.fail {
		return errors.New("nats down")
	}
	c := event.(authwire.Change)
	l.published = append(l.published, c)
	if !l.lose && l.feed != nil {
		raw, _ := json.Marshal(c)
		go l.feed.Handle(subject, raw)
	}
	return nil
}

func TestTags(t *testing.T) {
	tests := []struct {
		change authwire.Change
		want   []string
	}{
		{authwire.Change{Kind: authwire.ChangeSession, UserID: "U1", SessionID: "j1"}, []string{"session:j1"}},
		{authwire.Change{Kind: authwire.ChangeSession, UserID: "U1"}, []string{"user:u1"}},
		{authwire.Change{Kind: authwire.ChangeUser, UserID: "AbC"}, []string{"user:abc"}},
		{authwire.Change{Kind: authwire.ChangeAPIKey, APIKeyHash: "ff"}, []string{"apikey:ff"}},
		{authwire.Change{Kind: authwire.ChangeUser}, nil},
		{authwire.Change{Kind: "blog", UserID: "u"}, nil},
	}
	for _, tt := range tests {
		if got := Tags(tt.change); !slices.Equal(got, tt.want) {
			t.Errorf("Tags(%+v) = %v, want %v", tt.change, got, tt.want)
		}
	}
}

func newCache() *localcache.Cache[string] {
	return localcache.New[string](localcache.Options{Name: "test", TTL: time.Minute})
}

func TestFeedDropsLocalEntriesAndPublishes(t *testing.T) {
	c := newCache()
	pub := &loopback{}
	f := NewFeed(pub, slog.New(slog.DiscardHandler), c)
	c.Set("sess", "s", c.Generation(), SessionTag("j1"), UserTag("u1"))
	c.Set("user", "u", c.Generation(), UserTag("u1"))
	c.Set("key", "k", c.Generation(), APIKeyTag(authwire.APIKeyHash("secret")))

	f.Session(context.Background(), "u1", "j1")
	if _, ok := c.Get("sess"); ok {
		t.Fatal("session entry survived its session's change")
	}
	if _, ok := c.Get("user"); !ok {
		t.Fatal("a session change dropped the user")
	}
	f.APIKey(context.Background(), "secret")
	if _, ok := c.Get("key"); ok {
		t.Fatal("key verdict survived its key's change")
	}
	f.User(context.Background(), "U1")
	if _, ok := c.Get("user"); ok {
		t.Fatal("user entry survived its user's change")
	}
	want := []authwire.Change{
		{Kind: authwire.ChangeSession, UserID: "u1", SessionID: "j1"},
		{Kind: authwire.ChangeAPIKey, APIKeyHash: authwire.APIKeyHash("secret")},
		{Kind: authwire.ChangeUser, UserID: "u1"},
	}
	if !slices.Equal(pub.published, want) {
		t.Fatalf("published %+v, want %+v", pub.published, want)
	}
}

func TestFeedPublishFailureIsLoggedNotFatal(t *testing.T) {
	c := newCache()
	var log bytes.Buffer
	f := NewFeed(&loopback{fail: true}, slog.New(slog.NewTextHandler(&log, nil)), c)
	c.Set("user", "u", c.Generation(), UserTag("u1"))
	f.User(context.Background(), "u1")
	if _, ok := c.Get("user"); ok {
		t.Fatal("the local entry survived a change whose event could not be published")
	}
	if !strings.Contains(log.String(), "change event not published") {
		t.Fatalf("failure not logged: %q", log.String())
	}
}

func TestFeedWaitsForItsOwnEcho(t *testing.T) {
	other := newCache() // another replica's cache, fed by the same events
	otherFeed := NewFeed(nil, slog.New(slog.DiscardHandler), other)
	pub := &loopback{}
	f := NewFeed(pub, slog.New(slog.DiscardHandler))
	f.ExpectEchoes()
	pub.feed = f
	other.Set("user", "u", other.Generation(), UserTag("u1"))

	// The echo arrives asynchronously; emitting returns only after it.
	done := make(chan struct{})
	go func() { f.User(context.Background(), "u1"); close(done) }()
	select {
	case <-done:
	case <-time.After(EchoTimeout / 2):
		t.Fatal("emit did not return once its echo was back")
	}
	raw, _ := json.Marshal(pub.published[0])
	otherFeed.Handle(authwire.SubjectChanges, raw)
	if _, ok := other.Get("user"); ok {
		t.Fatal("a follower kept an entry the event made stale")
	}

	// A lost echo delays the answer by at most EchoTimeout.
	pub.lose = true
	start := time.Now()
	f.User(context.Background(), "u2")
	if d := time.Since(start); d < EchoTimeout || d > EchoTimeout+time.Second {
		t.Fatalf("emit without its echo took %v", d)
	}
	f.mu.Lock()
	left := len(f.waiting)
	f.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters left behind", left)
	}
}

func TestHandleIgnoresMalformedEvents(t *testing.T) {
	c := newCache()
	f := NewFeed(nil, slog.New(slog.DiscardHandler), c)
	c.Set("user", "u", c.Generation(), UserTag("u1"))
	for _, raw := range []string{`not json`, `{"kind":"user"}`, `{"kind":"other","userId":"u1"}`} {
		f.Handle(authwire.SubjectChanges, []byte(raw))
	}
	if _, ok := c.Get("user"); !ok {
		t.Fatal("a malformed event dropped an entry")
	}
	f.Handle(authwire.SubjectChanges, []byte(`{"kind":"user","userId":"u1"}`))
	if _, ok := c.Get("user"); ok {
		t.Fatal("a valid event was ignored")
	}
	var nilFeed *Feed
	nilFeed.User(context.Background(), "u1") // a nil feed emits nothing
	nilFeed.Handle(authwire.SubjectChanges, []byte(`{"kind":"user","userId":"u1"}`))
}
