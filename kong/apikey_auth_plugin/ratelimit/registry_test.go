package ratelimit

import (
	"fmt"
	"sync"
	"testing"
)

func TestRegistrySharesOneLimiterPerRuleSet(t *testing.T) {
	clock := newClock(minuteStart)
	reg := NewRegistry(Options{Now: clock.Now}, 0)
	rules := func(perMinute int) []Rule {
		return []Rule{{Paths: []string{"/auth/signin/basic", "/auth/signup/basic"}, PerMinute: perMinute}}
	}
	a, errA := reg.Get(rules(2))
	b, errB := reg.Get(rules(2)) // e.g. the same configuration in another worker
	other, errO := reg.Get(rules(3))
	if errA != nil || errB != nil || errO != nil {
		t.Fatal(errA, errB, errO)
	}
	if a != b || a == other {
		t.Fatalf("equal rules must share one limiter, different rules must not")
	}
	spend(t, a, "c", "/auth/signin/basic", 2)
	if b.Allow("c", "/auth/signin/basic").Allowed {
		t.Fatal("budget spent through one holder, allowed through the other")
	}
	if !other.Allow("c", "/auth/signin/basic").Allowed {
		t.Fatal("different rules share counts")
	}
	if _, err := reg.Get([]Rule{{Paths: []string{"/x"}}}); err == nil {
		t.Fatal("invalid rules accepted")
	}
}

func TestRegistryIsBounded(t *testing.T) {
	reg := NewRegistry(Options{}, 3)
	get := func(n int) *Limiter {
		l, err := reg.Get([]Rule{{Paths: []string{"/p"}, PerMinute: n}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	first := get(1)
	get(2)
	get(3)
	if get(1) != first {
		t.Fatal("a remembered rule set got a new limiter")
	}
	get(4) // evicts 2, the least recently used; 1 was just used
	if get(1) != first {
		t.Fatal("the most recently used limiter was evicted")
	}
	if len(reg.byKey) != 3 || len(reg.order) != 3 {
		t.Fatalf("registry holds %d/%d, want 3", len(reg.byKey), len(reg.order))
	}
}

func TestRegistryIsSafeForConcurrentUse(t *testing.T) {
	reg := NewRegistry(Options{}, 64) // room for all: nothing is evicted
	var wg sync.WaitGroup
	results := make([]*Limiter, 16)
	for i := range results {
		wg.Go(func() {
			l, err := reg.Get([]Rule{{Paths: []string{"/p"}, PerMinute: 5}})
			if err != nil {
				t.Error(err)
			}
			results[i] = l
			_, _ = reg.Get([]Rule{{Paths: []string{fmt.Sprintf("/own%d", i)}, PerMinute: 5}})
		})
	}
	wg.Wait()
	for i, l := range results {
		if l == nil || l != results[0] {
			t.Fatalf("caller %d got limiter %p, want the one shared %p", i, l, results[0])
		}
	}
}
