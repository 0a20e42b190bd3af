package natsx

import (
	"sync"
	"time"
)

const (
	// budgetFloorPerSecond extra messages are always allowed per second of
	// the window, so hedging works at low traffic and at start-up, when
	// there are too few requests for the ratio to allow anything.
	budgetFloorPerSecond = 100
	budgetBuckets        = 10
	budgetBucket         = time.Second
)

// retryBudget bounds the extra messages (hedges) a client sends: over the
// last budgetBuckets seconds they may not exceed ratio times the requests
// plus a floor. A frozen responder makes about half the requests (with two
// replicas) send one to three extra messages for the few seconds it takes
// the server to drop it, which the requests of the window before pay for;
// an overloaded responder, whose every request is slow, gets at most ratio
// times more work instead of MaxAttempts times more.
type retryBudget struct {
	mu    sync.Mutex
	ratio float64
	floor int
	now   func() time.Time
	slots [budgetBuckets]budgetSlot
}

type budgetSlot struct {
	epoch            int64 // seconds since the Unix epoch this slot counts
	requests, extras int
}

func newRetryBudget(ratio float64, floorPerSecond int) *retryBudget {
	return &retryBudget{ratio: ratio, floor: floorPerSecond * budgetBuckets, now: time.Now}
}

// slot returns the current bucket, cleared if it held an older second.
func (b *retryBudget) slot() *budgetSlot {
	epoch := b.now().UnixNano() / int64(budgetBucket)
	s := &b.slots[epoch%budgetBuckets]
	if s.epoch != epoch {
		*s = budgetSlot{epoch: epoch}
	}
	return s
}

// request counts one request.
func (b *retryBudget) request() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slot().requests++
}

// take returns how many of n extra messages may be sent now (0..n) and
// charges them.
func (b *retryBudget) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.slot()
	requests, extras := 0, 0
	for i := range b.slots {
		if s := &b.slots[i]; cur.epoch-s.epoch < budgetBuckets {
			requests += s.requests
			extras += s.extras
		}
	}
	allowed := int(b.ratio*float64(requests)) + b.floor - extras
	n = max(0, min(n, allowed))
	cur.extras += n
	return n
}
