package plan

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture has round costs so every figure below can be checked by hand.
func fixture() *Costs {
	return &Costs{Commit: "abc1234", Cores: 2, Clients: 16, Rounds: 1, Duration: "5s", Command: "go run ./.tools/bench",
		Routes: []Route{
			// Shared 20 all to the gateway (the only host component): 120.
			{Case: "a", Class: PublicRead, CPUus: map[string]float64{Blog: 50, Gateway: 100, Redis: 10, Shared: 20}, RedisCommands: 1},
			{Case: "b", Class: PublicRead, CPUus: map[string]float64{Blog: 70, Gateway: 100, Redis: 10}, RedisCommands: 1},
			// Shared 14 over gateway 100 + NATS 40: +10 and +4.
			{Case: "c", Class: ProtectedRead, CPUus: map[string]float64{Auth: 50, Blog: 100, Gateway: 100, NATS: 40, Redis: 20, Shared: 14}, RedisCommands: 2},
			// Shared 100 over 200 + 100 + 700: +20, +10, +70.
			{Case: "d", Class: Write, CPUus: map[string]float64{Blog: 400, Gateway: 200, NATS: 100, Store: 700, Redis: 40, Shared: 100}, RedisCommands: 4},
		}}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestCost(t *testing.T) {
	m, err := Cost(fixture(), DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		Auth:    0.08 * 50,                     // 4
		Blog:    0.9*60 + 0.08*100 + 0.02*400,  // 70
		Gateway: 0.9*110 + 0.08*110 + 0.02*220, // 112.2
		NATS:    0.08*44 + 0.02*110,            // 5.72
		Store:   0.02 * 770,                    // 15.4
		Redis:   0.9*10 + 0.08*20 + 0.02*40,    // 11.4
	}
	for comp, w := range want {
		if !near(m.CPUus[comp], w) {
			t.Errorf("%s: %v µs per request, want %v", comp, m.CPUus[comp], w)
		}
	}
	if !near(m.RedisCommands, 1.14) {
		t.Errorf("Redis commands per request %v, want 1.14", m.RedisCommands)
	}
	if !near(m.StoreByClass[Write], 770) || m.StoreByClass[PublicRead] != 0 {
		t.Errorf("store by class %v, want write 770 and no public-read cost", m.StoreByClass)
	}
}

func TestSize(t *testing.T) {
	m, err := Cost(fixture(), DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rps                              float64
		auth, blog, gw, nats, redis, mdb int
		mongoShards                      int
		tightest                         string
		change                           string
	}{
		// Every component at its minimum; blog 0.7 cores of 2 × 2 × 0.6.
		{10_000, 2, 2, 2, 3, 1, 3, 1, Blog, "three Sentinels"},
		// Blog 7 cores ÷ 1.2 = 5.83 → 6 (97 % of its target: the tightest);
		// gateway 11.22 ÷ 2.4 → 5; Redis
		// 1.14 cores ÷ 0.6 → 2 shards: Cluster.
		{100_000, 2, 6, 5, 3, 2, 3, 1, Blog, "Redis Cluster"},
		// Blog 70 ÷ 1.2 → 59; gateway 112.2 ÷ 2.4 → 47 (> 24: regions);
		// Redis 11.4 ÷ 0.6 = 19 shards exactly at target (the tightest);
		// writes 15.4 cores ÷ (8 × 0.5 ÷ 2) → 8 shards of 3.
		{1_000_000, 4, 59, 47, 3, 19, 24, 8, Redis, "sharded cluster of 8 shards"},
	}
	for _, tt := range tests {
		l := Size(m, DefaultMix, DefaultSizing, tt.rps)
		got := []int{l.Units[Auth], l.Units[Blog], l.Units[Gateway], l.Units[NATS], l.Units[Redis], l.Units[Store], l.MongoShards}
		want := []int{tt.auth, tt.blog, tt.gw, tt.nats, tt.redis, tt.mdb, tt.mongoShards}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%.0f req/s: units auth, blog, gateway, NATS, Redis, MongoDB, Mongo shards = %v, want %v", tt.rps, got, want)
				break
			}
		}
		if l.Tightest != tt.tightest {
			t.Errorf("%.0f req/s: tightest %s, want %s", tt.rps, l.Tightest, tt.tightest)
		}
		if !strings.Contains(strings.Join(l.Changes, "\n"), tt.change) {
			t.Errorf("%.0f req/s: changes lack %q:\n%s", tt.rps, tt.change, strings.Join(l.Changes, "\n"))
		}
		if !near(l.RedisOpsPerShard, 60_000) {
			t.Errorf("Redis ops per shard %v, want 0.6 ÷ 10 µs per command = 60,000", l.RedisOpsPerShard)
		}
	}
	if l := Size(m, DefaultMix, DefaultSizing, 1_000_000); !strings.Contains(strings.Join(l.Changes, "\n"), "split the entry by region") ||
		!strings.Contains(strings.Join(l.Changes, "\n"), "each region runs its own cluster of 3") {
		t.Errorf("47 gateway nodes should split the entry by region, and NATS with it (3 nodes of CPU):\n%s", strings.Join(l.Changes, "\n"))
	}
	if l := Size(m, DefaultMix, DefaultSizing, 100_000); strings.Contains(strings.Join(l.Changes, "\n"), "supercluster") {
		t.Errorf("5 gateway nodes and 3 NATS nodes need no supercluster:\n%s", strings.Join(l.Changes, "\n"))
	}
	if l := Size(m, DefaultMix, DefaultSizing, 10_000_000); !strings.Contains(strings.Join(l.Changes, "\n"), "supercluster") {
		t.Errorf("NATS at 10M req/s (57 cores, 29 nodes) should be a supercluster:\n%s", strings.Join(l.Changes, "\n"))
	}
}

func TestCeilings(t *testing.T) {
	m, err := Cost(fixture(), DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	got := Ceilings(m, DefaultMix, DefaultSizing)
	want := []struct {
		comp string
		rps  float64
	}{
		{Blog, 4 / 70e-6},       // 57,143
		{Gateway, 8 / 112.2e-6}, // 71,301
		{Redis, 1 / 11.4e-6},    // 87,719
		{Store + " (primary)", 8 / 15.4e-6},
		{Store + " (secondaries)", 8 / 15.4e-6},
		{Auth, 4 / 4e-6},
		{NATS, 12 / 5.72e-6},
	}
	if len(got) != len(want) {
		t.Fatalf("%d ceilings, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Component != w.comp || !near(got[i].RPS, w.rps) {
			t.Errorf("ceiling %d: %s at %.0f, want %s at %.0f", i, got[i].Component, got[i].RPS, w.comp, w.rps)
		}
	}
}

func TestValidate(t *testing.T) {
	noWrite := fixture()
	noWrite.Routes = noWrite.Routes[:3]
	negative := fixture()
	negative.Routes[0].CPUus[Blog] = -1
	unknown := fixture()
	unknown.Routes[0].Class = "admin"
	for name, c := range map[string]*Costs{"no write route": noWrite, "negative cost": negative, "unknown class": unknown} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for name, m := range map[string]Mix{"sums to 0.9": {PublicRead: 0.8, ProtectedRead: 0.08, Write: 0.02},
		"unknown class": {PublicRead: 0.9, "admin": 0.1}, "negative": {PublicRead: 1.1, Write: -0.1}} {
		if err := m.Validate(); err == nil {
			t.Errorf("mix %s: no error", name)
		}
	}
}

// TestPlanMatchesCommittedCosts keeps plan.md (the README's capacity table is
// copied from it) equal to what the program prints from the committed
// measured costs with the default mix, sizing and rates. Regenerate with
// `go run ./.tools/capacity -o .tools/capacity/plan.md`.
func TestPlanMatchesCommittedCosts(t *testing.T) {
	c, err := Load(filepath.Join("..", "measured.json"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, c, DefaultMix, DefaultSizing, DefaultRates); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "plan.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("plan.md is not what the program prints from measured.json; run `go run ./.tools/capacity -o .tools/capacity/plan.md`\n--- printed:\n%s", buf.String())
	}
}

func TestSizeMongo(t *testing.T) {
	tests := []struct {
		name            string
		write, read     float64
		shards, members int
		busiest         float64
	}{
		{"idle: the minimum replica set", 0, 0, 1, 3, 0},
		// Writes up to half of 8 × 0.5 = 2 cores per primary.
		{"writes shard", 5, 0, 3, 3, 5.0 / 3},
		// 30 cores of reads: one shard would need 8 secondaries (9 members
		// > 7 voting); two shards need 4 each.
		{"reads shard beyond 7 members", 0, 30, 2, 5, 15.0 / 4},
		// 1 core of writes leaves 3 per secondary: 10 cores of reads → 4.
		{"secondaries replay writes", 1, 10, 1, 5, 1 + 10.0/4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sizeMongo(tt.write, tt.read, DefaultSizing)
			if m.shards != tt.shards || m.members != tt.members || !near(m.busiest, tt.busiest) {
				t.Fatalf("got %d shards × %d members, busiest %.3f cores; want %d × %d, %.3f", m.shards, m.members, m.busiest, tt.shards, tt.members, tt.busiest)
			}
		})
	}
	m, err := Cost(fixture(), DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	// 1M req/s × 2 % writes × 100 µs = 2 cores: one primary's half.
	if shards, members := MongoMembers(m, DefaultMix, DefaultSizing, 1_000_000, 100); shards != 1 || members != 3 {
		t.Fatalf("100 µs per write at 1M req/s: %d × %d, want 1 × 3", shards, members)
	}
}
