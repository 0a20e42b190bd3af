// Package changes tells every replica of every service what changed in
// auth_service (a session ended, a user changed, an API key changed), so
// that answers they keep in process stop being served at once instead of at
// their TTL. Events are authwire.Change values on authwire.SubjectChanges.
//
// A change is emitted after it is made (store and Redis written) and before
// the client is answered: the replica that made it drops its own cached
// entries synchronously, and the event is handed to the NATS server before
// the caller goes on, so a client that is told "signed out" cannot then be
// served the session by another replica that was told nothing. A failed
// publication is logged, never turned into a failed change: the change
// stands, and other replicas' entries still end at their TTL.
//
// The server holding the event is not yet every follower having applied
// it: it reaches them in parallel with the answer, and a client quick
// enough to ask another replica at once could win that race. A replica
// that follows the events itself (ExpectEchoes) therefore also waits,
// briefly and boundedly, until its own copy has come back: the server fans
// an event out to all followers at once, so by then the others have it
// too.
package changes

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"blogplatform/chassis/authwire"
)

// EchoTimeout bounds the wait for this replica's own copy of an event.
const EchoTimeout = time.Second

// Publisher sends one event to every follower (changefeed.Publisher).
type Publisher interface {
	Publish(ctx context.Context, subject string, event any) error
}

// Invalidator is an in-process cache whose entries carry tags
// (localcache.Cache). A nil cache is a cache turned off and must accept
// calls.
type Invalidator interface {
	Invalidate(tags ...string)
}

// Tags of the entries an event makes stale. Every in-process cache of auth
// answers tags its entries with the ones it depends on.
func SessionTag(jti string) string { return "session:" + jti }
func UserTag(id string) string     { return "user:" + strings.ToLower(id) }
func APIKeyTag(hash string) string { return "apikey:" + hash }

// Tags returns the tags of the entries c makes stale.
func Tags(c authwire.Change) []string {
	switch c.Kind {
	case authwire.ChangeSession:
		if c.SessionID != "" {
			return []string{SessionTag(c.SessionID)}
		}
		// A session event without its id: the whole user is stale.
		if c.UserID != "" {
			return []string{UserTag(c.UserID)}
		}
	case authwire.ChangeUser:
		if c.UserID != "" {
			return []string{UserTag(c.UserID)}
		}
	case authwire.ChangeAPIKey:
		if c.APIKeyHash != "" {
			return []string{APIKeyTag(c.APIKeyHash)}
		}
	}
	return nil
}

// Feed emits change events and applies the ones it receives to this
// replica's caches. A nil *Feed emits nothing (tests of a single service).
type Feed struct {
	pub   Publisher
	log   *slog.Logger
	local []Invalidator

	mu      sync.Mutex
	echoes  bool
	waiting map[authwire.Change][]chan struct{}
}

// NewFeed publishes through pub (nil: events stay in this replica) and
// keeps local, this replica's caches, coherent with every change.
func NewFeed(pub Publisher, log *slog.Logger, local ...Invalidator) *Feed {
	if log == nil {
		log = slog.Default()
	}
	return &Feed{pub: pub, log: log, local: local, waiting: make(map[authwire.Change][]chan struct{})}
}

// ExpectEchoes tells the feed that Handle receives this replica's own
// events (it follows authwire.SubjectChanges): emitting then waits for the
// echo, see the package comment.
func (f *Feed) ExpectEchoes() {
	f.mu.Lock()
	f.echoes = true
	f.mu.Unlock()
}

// Session reports that the session of access token jti (of user userID)
// ended or was replaced.
func (f *Feed) Session(ctx context.Context, userID, jti string) {
	f.emit(ctx, authwire.Change{Kind: authwire.ChangeSession, UserID: userID, SessionID: jti})
}

// User reports that anything about user id changed (roles, status, sessions).
func (f *Feed) User(ctx context.Context, id string) {
	f.emit(ctx, authwire.Change{Kind: authwire.ChangeUser, UserID: strings.ToLower(id)})
}

// APIKey reports that API key key was created, disabled or enabled. Only its
// hash travels.
func (f *Feed) APIKey(ctx context.Context, key string) {
	f.emit(ctx, authwire.Change{Kind: authwire.ChangeAPIKey, APIKeyHash: authwire.APIKeyHash(key)})
}

func (f *Feed) emit(ctx context.Context, c authwire.Change) {
	if f == nil {
		return
	}
	// Local caches first: this replica answers the client, and its own
	// copy of the event arrives asynchronously.
	f.apply(c)
	if f.pub == nil {
		return
	}
	echo := f.await(c)
	// The client must not wait on a dead NATS connection longer than the
	// publisher's own bound; a cancelled request still announces its change.
	if err := f.pub.Publish(context.WithoutCancel(ctx), authwire.SubjectChanges, c); err != nil {
		f.forget(c, echo)
		f.log.Warn("change event not published; other replicas drop their cached copy at its TTL",
			"kind", c.Kind, "user", c.UserID, "error", err.Error())
		return
	}
	if echo == nil {
		return
	}
	t := time.NewTimer(EchoTimeout)
	defer t.Stop()
	select {
	case <-echo:
	case <-t.C:
		f.forget(c, echo)
		f.log.Warn("own change event not back in time; answering anyway", "kind", c.Kind, "user", c.UserID)
	}
}

// await registers interest in the echo of c (nil when none is expected).
// Equal events are interchangeable: any echo of c answers every waiter.
func (f *Feed) await(c authwire.Change) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.echoes {
		return nil
	}
	ch := make(chan struct{})
	f.waiting[c] = append(f.waiting[c], ch)
	return ch
}

func (f *Feed) forget(c authwire.Change, ch chan struct{}) {
	if ch == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	waiters := f.waiting[c]
	for i, w := range waiters {
		if w == ch {
			waiters = append(waiters[:i], waiters[i+1:]...)
			break
		}
	}
	if len(waiters) == 0 {
		delete(f.waiting, c)
	} else {
		f.waiting[c] = waiters
	}
}

// echoed releases whoever waits for c.
func (f *Feed) echoed(c authwire.Change) {
	f.mu.Lock()
	waiters := f.waiting[c]
	delete(f.waiting, c)
	f.mu.Unlock()
	for _, ch := range waiters {
		close(ch)
	}
}

func (f *Feed) apply(c authwire.Change) {
	tags := Tags(c)
	if len(tags) == 0 {
		return
	}
	for _, l := range f.local {
		l.Invalidate(tags...)
	}
}

// Handle applies an event received from NATS (any replica's, this one's
// included) to this replica's caches. It is the follower's handler.
func (f *Feed) Handle(_ string, data []byte) {
	if f == nil {
		return
	}
	var c authwire.Change
	if err := json.Unmarshal(data, &c); err != nil {
		f.log.Warn("malformed change event ignored", "error", err.Error())
		return
	}
	if len(Tags(c)) == 0 {
		f.log.Warn("change event of unknown kind or without a subject ignored", "kind", c.Kind)
		return
	}
	f.apply(c)
	f.echoed(c)
}
