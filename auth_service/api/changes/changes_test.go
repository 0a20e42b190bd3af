package changes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/changefeed"
	"blogplatform/chassis/localcache"
)

// recording is a publisher that keeps what it was given; fail makes it
// refuse instead.
type recording struct {
	mu        sync.Mutex
	published []authwire.Change
	fail      bool
	err       error // returned after recording (an unacknowledged event)
}

func (l *recording) Publish(_ context.Context, event any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return errors.New("nats down")
	}
	l.published = append(l.published, event.(authwire.Change))
	return l.err
}

func newCache() *localcache.Cache[string] {
	return localcache.New[string](localcache.Options{Name: "test", TTL: time.Minute})
}

func TestFeedDropsLocalEntriesAndPublishes(t *testing.T) {
	c := newCache()
	pub := &recording{}
	f := NewFeed(pub, slog.New(slog.DiscardHandler), c)
	c.Set("sess", "s", c.Generation(), authwire.SessionTag("j1"), authwire.UserTag("u1"))
	c.Set("user", "u", c.Generation(), authwire.UserTag("u1"))
	c.Set("key", "k", c.Generation(), authwire.APIKeyTag(authwire.APIKeyHash("secret")))

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
	f := NewFeed(&recording{fail: true}, slog.New(slog.NewTextHandler(&log, nil)), c)
	c.Set("user", "u", c.Generation(), authwire.UserTag("u1"))
	f.User(context.Background(), "u1")
	if _, ok := c.Get("user"); ok {
		t.Fatal("the local entry survived a change whose event could not be published")
	}
	if !strings.Contains(log.String(), "change event not published") {
		t.Fatalf("failure not logged: %q", log.String())
	}
}

func TestFeedUnacknowledgedEventIsLogged(t *testing.T) {
	var log bytes.Buffer
	pub := &recording{err: fmt.Errorf("%w: missing [b]", changefeed.ErrNotAcknowledged)}
	f := NewFeed(pub, slog.New(slog.NewTextHandler(&log, nil)))
	f.Session(context.Background(), "u1", "j1")
	if len(pub.published) != 1 {
		t.Fatalf("published %d events, want 1", len(pub.published))
	}
	if !strings.Contains(log.String(), "not acknowledged by every replica") {
		t.Fatalf("missing acknowledgement not logged: %q", log.String())
	}
}

func TestHandleIgnoresMalformedEvents(t *testing.T) {
	c := newCache()
	f := NewFeed(nil, slog.New(slog.DiscardHandler), c)
	c.Set("user", "u", c.Generation(), authwire.UserTag("u1"))
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
