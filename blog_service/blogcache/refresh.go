package blogcache

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Background refresh of first pages. A write orphans every cached page of
// the families it touches, so without help the next reader of a hot list
// pays the cold query. The replica that wrote therefore reloads, in the
// background, the first pages readers asked for lately (any page size, any
// tag, any list kind), bounded:
//   - at most maxHotPages pages are remembered, each for hotFor after it
//     was last read below the first-level cache;
//   - at most one refresh of a page runs at a time: writes that land while
//     it runs ask for one more run after it (what it read may predate
//     them), never for a second one in parallel;
//   - a refresh goes through Fetch like a reader (joining a reader's query
//     on the same key), so it stores only under the generation and version
//     it read: a refresh that raced a later write stores nothing stale;
//   - it runs under its own deadline (Options.RefreshTimeout), not the
//     request's, and Close cancels it and waits for it.
const (
	maxHotPages = 32
	hotFor      = time.Minute
)

type hotPage struct {
	entry Entry
	load  Loader
	seen  time.Time
}

type refresher struct {
	mu  sync.Mutex
	hot map[string]hotPage
	// running maps a page being refreshed to whether another run was asked
	// for while it ran.
	running map[string]bool
	closed  bool
	wg      sync.WaitGroup
	// life is cancelled by Close.
	life   context.Context
	cancel context.CancelFunc
}

func newRefresher() refresher {
	life, cancel := context.WithCancel(context.Background())
	return refresher{hot: map[string]hotPage{}, running: map[string]bool{}, life: life, cancel: cancel}
}

// remember notes that a reader asked for a first page (called below the
// first-level cache, so at most once per entry lifetime per replica on a
// hot page, or on every request when the first-level cache is off; the
// time check keeps that to one map write per second per page).
func (r *refresher) remember(key string, e Entry, load Loader) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.hot[key]; ok && now.Sub(p.seen) < time.Second {
		return
	}
	if _, ok := r.hot[key]; !ok && len(r.hot) >= maxHotPages {
		oldest := ""
		for k, p := range r.hot {
			if oldest == "" || p.seen.Before(r.hot[oldest].seen) {
				oldest = k
			}
		}
		delete(r.hot, oldest)
	}
	r.hot[key] = hotPage{entry: e, load: load, seen: now}
}

// refreshFirstPages refreshes the remembered first pages of families.
func (c *Cache) refreshFirstPages(ctx context.Context, families []string) {
	r := &c.refresh
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for key, p := range r.hot {
		if now.Sub(p.seen) > hotFor {
			delete(r.hot, key)
			continue
		}
		if !slices.Contains(families, p.entry.family) {
			continue
		}
		if _, busy := r.running[key]; busy {
			r.running[key] = true // once more after the current run
			continue
		}
		r.running[key] = false
		r.wg.Add(1)
		go c.refreshPage(ctx, key, p)
	}
}

func (c *Cache) refreshPage(ctx context.Context, key string, p hotPage) {
	r := &c.refresh
	defer r.wg.Done()
	// The write's trace goes on; its deadline and cancellation do not.
	base := context.WithoutCancel(ctx)
	for {
		rctx, cancel := context.WithTimeout(base, c.opts.RefreshTimeout)
		stop := context.AfterFunc(r.life, cancel)
		_, err := c.fetchAll(rctx, p.entry, p.load, false)
		stop()
		cancel()
		if err != nil {
			c.opts.Logger.Debug("list refresh after a write failed; the next reader loads it", "page", key, "error", err.Error())
		}
		r.mu.Lock()
		again := r.running[key] && !r.closed
		if !again {
			delete(r.running, key)
			r.mu.Unlock()
			return
		}
		r.running[key] = false
		r.mu.Unlock()
	}
}

// RefreshesRunning is the number of first pages being refreshed now.
func (c *Cache) RefreshesRunning() int {
	c.refresh.mu.Lock()
	defer c.refresh.mu.Unlock()
	return len(c.refresh.running)
}

// stopRefreshes cancels the refreshes in flight and waits for them.
func (c *Cache) stopRefreshes() {
	r := &c.refresh
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
