package changefeed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// A Feed is one subject's change events with acknowledgements: Publish
// returns only once every live follower of the subject has applied the
// event (or PublishTimeout has passed), so a client answered after a
// change finds no replica of any service still serving the old state.
// Without it the NATS server fans an event out in parallel with the
// answer, and nothing orders the follower's handling before the client's
// next request to that follower.
//
// The protocol, all plain NATS subjects under the neutral events.presence.>
// and events.ack.> namespaces so that every service can take part in every
// other service's stream:
//   - every following Feed announces itself on PresencePrefix+subject every
//     PresenceEvery (header Origin), and says goodbye (header Gone) on Close;
//     a follower is counted live until PresenceFor passes without a word;
//   - Publish numbers an event in its headers (Origin, Seq; the payload is
//     the plain JSON event) and waits for the acknowledgements, on
//     AckPrefix+origin, of every live follower, itself included when it
//     follows and its connection is up;
//   - a follower applies the event, then acknowledges it to its origin.
//
// A follower that dies or loses NATS stops acknowledging and stops
// announcing itself: it costs each change at most PublishTimeout, for at
// most PresenceFor, and while it is away its guarded caches are suspended
// (Follower), so it serves nothing stale meanwhile.
type Feed struct {
	nc      *nats.Conn
	subject string
	log     *slog.Logger
	origin  string

	acks     *nats.Subscription
	presence *nats.Subscription

	mu       sync.Mutex
	seq      uint64
	peers    map[string]time.Time       // origin → last heartbeat
	waiting  map[uint64]map[string]bool // seq → origins yet to acknowledge
	done     map[uint64]chan struct{}
	follower *Follower
	stop     chan struct{}
	stopped  chan struct{}
	closed   bool
}

// Subjects and headers of the protocol.
const (
	PresencePrefix = "events.presence."
	AckPrefix      = "events.ack."

	HeaderOrigin = "Changefeed-Origin"
	HeaderSeq    = "Changefeed-Seq"
	HeaderGone   = "Changefeed-Gone"
)

// Presence timings.
const (
	PresenceEvery = time.Second
	PresenceFor   = 3 * time.Second
)

// ErrNotAcknowledged: the event was published, but not every live follower
// acknowledged it within PublishTimeout.
var ErrNotAcknowledged = errors.New("changefeed: not acknowledged by every follower in time")

// NewFeed opens the feed of subject on nc: it listens for the followers'
// presence and for acknowledgements of its own events at once, so even a
// replica that only publishes waits for every follower.
func NewFeed(nc *nats.Conn, subject string, log *slog.Logger) (*Feed, error) {
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	f := &Feed{nc: nc, subject: subject, log: log, origin: hex.EncodeToString(b[:]),
		peers: map[string]time.Time{}, waiting: map[uint64]map[string]bool{}, done: map[uint64]chan struct{}{}}
	var err error
	if f.acks, err = nc.Subscribe(AckPrefix+f.origin, f.applyAck); err != nil {
		return nil, fmt.Errorf("changefeed: subscribe acks of %s: %w", subject, err)
	}
	if f.presence, err = nc.Subscribe(PresencePrefix+subject, f.applyPresence); err != nil {
		_ = f.acks.Unsubscribe()
		return nil, fmt.Errorf("changefeed: subscribe presence of %s: %w", subject, err)
	}
	// A refused subscription would leave Publish blind to its followers:
	// the service must not start like that (see refused).
	for _, s := range []string{AckPrefix + f.origin, PresencePrefix + subject} {
		if err := refused(nc, s); err != nil {
			_ = f.acks.Unsubscribe()
			_ = f.presence.Unsubscribe()
			return nil, fmt.Errorf("changefeed: subscribe %s: %w", s, err)
		}
	}
	return f, nil
}

// Origin names this feed (this replica) in the protocol's headers.
func (f *Feed) Origin() string { return f.origin }

// Publish sends event (JSON) and waits, at most PublishTimeout, until
// every live follower has applied it. An error means some followers may
// not have applied it yet (they will, or drop it at their TTL); callers
// log it, the change itself stands.
func (f *Feed) Publish(ctx context.Context, event any) error {
	raw, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("changefeed: encode %s: %w", f.subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	seq, done := f.expect()
	defer f.forget(seq)
	msg := &nats.Msg{Subject: f.subject, Data: raw, Header: nats.Header{}}
	msg.Header.Set(HeaderOrigin, f.origin)
	msg.Header.Set(HeaderSeq, strconv.FormatUint(seq, 10))
	if err := f.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("changefeed: publish %s: %w", f.subject, err)
	}
	if err := f.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("changefeed: flush %s: %w", f.subject, err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s seq %d, missing %v", ErrNotAcknowledged, f.subject, seq, f.missing(seq))
	}
}

// expect numbers the next event and notes whose acknowledgements to wait
// for: every live peer, and this replica when its follower is up (a
// suspended follower serves nothing, so it has nothing to apply first).
func (f *Feed) expect() (uint64, chan struct{}) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	want := map[string]bool{}
	if f.follower != nil && !f.follower.Suspended() {
		want[f.origin] = true
	}
	for origin, seen := range f.peers {
		if now.Sub(seen) > PresenceFor {
			delete(f.peers, origin)
			continue
		}
		want[origin] = true
	}
	done := make(chan struct{})
	if len(want) == 0 {
		close(done)
		return f.seq, done
	}
	f.waiting[f.seq] = want
	f.done[f.seq] = done
	return f.seq, done
}

func (f *Feed) missing(seq uint64) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for origin := range f.waiting[seq] {
		out = append(out, origin)
	}
	slices.Sort(out)
	return out
}

func (f *Feed) forget(seq uint64) {
	f.mu.Lock()
	delete(f.waiting, seq)
	delete(f.done, seq)
	f.mu.Unlock()
}

// acked records that origin applied this feed's event seq.
func (f *Feed) acked(origin string, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ackedLocked(origin, seq)
}

func (f *Feed) ackedLocked(origin string, seq uint64) {
	want, ok := f.waiting[seq]
	if !ok || !want[origin] {
		return
	}
	delete(want, origin)
	if len(want) == 0 {
		close(f.done[seq])
		delete(f.done, seq)
		delete(f.waiting, seq)
	}
}

func (f *Feed) applyAck(m *nats.Msg) {
	seq, err := strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
	if origin := m.Header.Get(HeaderOrigin); err == nil && origin != "" {
		f.acked(origin, seq)
	}
}

func (f *Feed) applyPresence(m *nats.Msg) {
	origin := m.Header.Get(HeaderOrigin)
	if origin == "" || origin == f.origin {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Header.Get(HeaderGone) == "" {
		f.peers[origin] = time.Now()
		return
	}
	// A follower that says goodbye is not waited for any longer, not even
	// by the events already in flight.
	delete(f.peers, origin)
	for seq := range f.waiting {
		f.ackedLocked(origin, seq)
	}
}

// Follow makes this replica a follower of the feed: handle applies each
// event (payload only, in order, on one goroutine; see changefeed.Follow
// for guarded), then the event is acknowledged to its publisher. The
// replica announces itself on the feed's presence subject until Close.
// A feed follows at most once.
func (f *Feed) Follow(handle func(subject string, data []byte), guarded ...Guarded) error {
	f.mu.Lock()
	if f.follower != nil || f.closed {
		f.mu.Unlock()
		return fmt.Errorf("changefeed: %s already followed or closed", f.subject)
	}
	f.mu.Unlock()
	fl, err := followMsgs(f.nc, f.subject, func(m *nats.Msg) {
		handle(m.Subject, m.Data)
		f.acknowledge(m)
	}, f.log, guarded...)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.follower = fl
	f.stop, f.stopped = make(chan struct{}), make(chan struct{})
	f.mu.Unlock()
	go f.heartbeat()
	return nil
}

// acknowledge tells m's publisher that this replica applied it.
func (f *Feed) acknowledge(m *nats.Msg) {
	origin, seq := m.Header.Get(HeaderOrigin), m.Header.Get(HeaderSeq)
	if origin == "" || seq == "" {
		return // published without the protocol (a bare NATS publication)
	}
	if origin == f.origin {
		if n, err := strconv.ParseUint(seq, 10, 64); err == nil {
			f.acked(f.origin, n)
		}
		return
	}
	ack := &nats.Msg{Subject: AckPrefix + origin, Header: nats.Header{}}
	ack.Header.Set(HeaderOrigin, f.origin)
	ack.Header.Set(HeaderSeq, seq)
	// Not flushed here: the connection's writer sends it at once, and the
	// publisher's wait is bounded anyway.
	_ = f.nc.PublishMsg(ack)
}

func (f *Feed) heartbeat() {
	defer close(f.stopped)
	t := time.NewTicker(PresenceEvery)
	defer t.Stop()
	for {
		f.announce(false)
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

func (f *Feed) announce(gone bool) {
	m := &nats.Msg{Subject: PresencePrefix + f.subject, Header: nats.Header{}}
	m.Header.Set(HeaderOrigin, f.origin)
	if gone {
		m.Header.Set(HeaderGone, "1")
	}
	if err := f.nc.PublishMsg(m); err == nil && gone {
		_ = f.nc.FlushTimeout(PublishTimeout)
	}
}

// Peers is the number of other live followers a Publish waits for.
func (f *Feed) Peers() int {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, seen := range f.peers {
		if now.Sub(seen) <= PresenceFor {
			n++
		}
	}
	return n
}

// Close stops following (the guarded caches stay suspended), tells the
// other replicas this one is gone, so their changes stop waiting for it
// at once, and stops listening. Call it while NATS is still connected.
func (f *Feed) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	fl := f.follower
	f.mu.Unlock()
	if fl != nil {
		close(f.stop)
		<-f.stopped
		fl.Stop()
		f.announce(true)
	}
	_ = f.acks.Unsubscribe()
	_ = f.presence.Unsubscribe()
	// Whoever still waits is not waiting for a closed feed's acks.
	f.mu.Lock()
	for seq, done := range f.done {
		close(done)
		delete(f.done, seq)
		delete(f.waiting, seq)
	}
	f.mu.Unlock()
}
