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
// it: it reaches them in parallel with the answer. The events therefore go
// through a changefeed.Feed, whose Publish returns only once every live
// follower of authwire.SubjectChanges (the auth replicas' caches and the
// blog replicas' verified sessions) has applied and acknowledged the
// event, or after a bounded wait.
package changes

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"blogplatform/chassis/authwire"
	"blogplatform/chassis/changefeed"
)

// Publisher sends one event of authwire.SubjectChanges to every follower
// and waits for their acknowledgements (changefeed.Feed).
type Publisher interface {
	Publish(ctx context.Context, event any) error
}

// Invalidator is an in-process cache whose entries carry tags
// (localcache.Cache). A nil cache is a cache turned off and must accept
// calls.
type Invalidator interface {
	Invalidate(tags ...string)
}

// Feed emits change events and applies the ones it receives to this
// replica's caches. A nil *Feed emits nothing (tests of a single service).
type Feed struct {
	pub   Publisher
	log   *slog.Logger
	local []Invalidator
}

// NewFeed publishes through pub (nil: events stay in this replica) and
// keeps local, this replica's caches, coherent with every change.
func NewFeed(pub Publisher, log *slog.Logger, local ...Invalidator) *Feed {
	if log == nil {
		log = slog.Default()
	}
	return &Feed{pub: pub, log: log, local: local}
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
	// Local caches first: this replica answers the client.
	f.apply(c)
	if f.pub == nil {
		return
	}
	// The publisher bounds its own wait; a cancelled request still
	// announces its change.
	err := f.pub.Publish(context.WithoutCancel(ctx), c)
	switch {
	case err == nil:
	case errors.Is(err, changefeed.ErrNotAcknowledged):
		f.log.Warn("change event not acknowledged by every replica in time; answering anyway",
			"kind", c.Kind, "user", c.UserID, "error", err.Error())
	default:
		f.log.Warn("change event not published; other replicas drop their cached copy at its TTL",
			"kind", c.Kind, "user", c.UserID, "error", err.Error())
	}
}

func (f *Feed) apply(c authwire.Change) {
	tags := c.Tags()
	if len(tags) == 0 {
		return
	}
	for _, l := range f.local {
		l.Invalidate(tags...)
	}
}

// Handle applies an event received from NATS (any replica's, this one's
// included) to this replica's caches. It is the follower's handler; the
// changefeed.Feed it follows with acknowledges the event after it.
func (f *Feed) Handle(_ string, data []byte) {
	if f == nil {
		return
	}
	var c authwire.Change
	if err := json.Unmarshal(data, &c); err != nil {
		f.log.Warn("malformed change event ignored", "error", err.Error())
		return
	}
	if len(c.Tags()) == 0 {
		f.log.Warn("change event of unknown kind or without a subject ignored", "kind", c.Kind)
		return
	}
	f.apply(c)
}
