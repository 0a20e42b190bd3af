package apikey

import (
	"strconv"
	"testing"
	"time"
)

// TestRejectedCacheStaysBoundedAndForgets: the cache never holds more than
// its size, forgets an entry after the TTL, and forgets it at once when the
// key is created.
func TestRejectedCacheStaysBoundedAndForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newRejectedCache(5*time.Second, 100, func() time.Time { return now })
	for i := range 10_000 {
		c.add(strconv.Itoa(i))
		if n := c.len(); n > 100 {
			t.Fatalf("%d entries after %d adds, limit 100", n, i+1)
		}
	}
	tests := []struct {
		name    string
		prepare func()
		want    bool
	}{
		{"a fresh entry is remembered", func() { c.add("k") }, true},
		{"an entry just before its TTL is remembered", func() { c.add("k"); now = now.Add(5*time.Second - time.Millisecond) }, true},
		{"an entry is forgotten after its TTL", func() { c.add("k"); now = now.Add(5 * time.Second) }, false},
		{"a removed entry is forgotten", func() { c.add("k"); c.remove("k") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare()
			if got := c.has("k"); got != tt.want {
				t.Fatalf("has = %v, want %v", got, tt.want)
			}
		})
	}
	off := newRejectedCache(0, 100, nil)
	off.add("k")
	if off.has("k") {
		t.Fatal("a zero TTL disables the cache")
	}
}
