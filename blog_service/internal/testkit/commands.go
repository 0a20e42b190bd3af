package testkit

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
)

// Commands counts the queries an app sends to the store (find and
// aggregate, per collection), seen through the driver's command monitor,
// so a test can tell how many store queries a burst of requests cost.
type Commands struct {
	mu     sync.Mutex
	counts map[string]int
}

func newCommands() *Commands { return &Commands{counts: map[string]int{}} }

// monitor counts into c, then hands the event to next (when set).
func (c *Commands) monitor(next *event.CommandMonitor) *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "find" || e.CommandName == "aggregate" {
			coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
			c.mu.Lock()
			c.counts[coll]++
			c.mu.Unlock()
		}
		if next != nil && next.Started != nil {
			next.Started(ctx, e)
		}
	}}
}

// Queries is the number of find and aggregate commands sent on collection
// so far.
func (c *Commands) Queries(collection string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[collection]
}
