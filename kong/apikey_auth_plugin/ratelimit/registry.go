package ratelimit

import (
	"encoding/json"
	"sync"
)

// DefaultMaxShared bounds a Registry: configurations are few (one per
// plugin instance in the Kong files), but every reload with changed rules
// adds one.
const DefaultMaxShared = 32

// Registry hands out one Limiter per distinct rule set, so that several
// holders of the same configuration count together. Kong starts a separate
// plugin instance for each nginx worker (and again on every configuration
// reload), all in the one plugin-server process; with a Limiter each, a
// client would get the budget once per worker. It is safe for concurrent
// use.
type Registry struct {
	opts Options
	max  int

	mu    sync.Mutex
	byKey map[string]*Limiter
	order []string // keys, least recently handed out first
}

// NewRegistry builds an empty Registry whose limiters use opts. At most max
// limiters are remembered (<= 0 means DefaultMaxShared); forgetting one only
// means a later holder of that rule set starts counting afresh.
func NewRegistry(opts Options, max int) *Registry {
	if max <= 0 {
		max = DefaultMaxShared
	}
	return &Registry{opts: opts, max: max, byKey: map[string]*Limiter{}}
}

// Get returns the Limiter of rules, building it on first use. Equal rule
// sets (same prefixes and budgets, in the same order) share one Limiter, so
// a reload that keeps the rules keeps the counts. Invalid rules give New's
// error and are not remembered.
func (r *Registry) Get(rules []Rule) (*Limiter, error) {
	raw, err := json.Marshal(rules)
	if err != nil {
		return nil, err
	}
	key := string(raw)
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.byKey[key]; ok {
		r.touch(key)
		return l, nil
	}
	l, err := New(rules, r.opts)
	if err != nil {
		return nil, err
	}
	if len(r.order) >= r.max {
		delete(r.byKey, r.order[0])
		r.order = r.order[1:]
	}
	r.byKey[key] = l
	r.order = append(r.order, key)
	return l, nil
}

// touch moves key to the most recently used end. Called with r.mu held.
func (r *Registry) touch(key string) {
	for i, k := range r.order {
		if k == key {
			r.order = append(append(r.order[:i:i], r.order[i+1:]...), key)
			return
		}
	}
}
