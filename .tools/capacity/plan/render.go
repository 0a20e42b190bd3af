package plan

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// DefaultRates are the request rates the plan sizes.
var DefaultRates = []float64{10_000, 100_000, 1_000_000}

// Render writes the capacity plan as markdown: the measured costs, the mix's
// cost per request, the deployment per rate, the minimum deployment's
// ceilings (what saturates first) and the design at each rate.
func Render(w io.Writer, c *Costs, mix Mix, s Sizing, rates []float64) error {
	m, err := Cost(c, mix)
	if err != nil {
		return err
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	p("Measured on %d cores at commit %s (%s, %s per case and round, %d round(s), %d clients, load average %.1f at the start), store %s:\n`%s`\n\n",
		c.Cores, c.Commit, c.Measured.UTC().Format("2006-01-02 15:04 UTC"), c.Duration, c.Rounds, c.Clients, c.LoadAvg[0], c.Store, c.Command)
	p("CPU µs per request through the gateway, by component (median over rounds; the bench process's GC and unattributed share spread over gateway, NATS and store):\n\n")
	p("| class | route | auth | blog | gateway | NATS | Redis | store | Redis cmds/req |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range c.Routes {
		costs := spread(r)
		p("| %s | `%s` |", className(r.Class), r.Case)
		for _, comp := range Components {
			p(" %s |", us(costs[comp]))
		}
		p(" %.2f |\n", r.RedisCommands)
	}
	p("| **mix** | %s |", mixString(mix))
	for _, comp := range Components {
		p(" **%s** |", us(m.CPUus[comp]))
	}
	p(" **%.2f** |\n\n", m.RedisCommands)

	p("Units: service pods of %g cores at %.0f %% CPU (at least %d), gateway (Kong) nodes of %g cores at %.0f %% (at least %d), "+
		"NATS nodes of %g cores at %.0f %% (at least %d), Redis shards of one core (its command thread) at %.0f %%, "+
		"MongoDB members of %g cores at %.0f %% (at least %d secondaries; every secondary replays the writes).\n\n",
		s.ServiceCoresPerPod, 100*s.ServiceUtil, s.MinServicePods, s.GatewayCoresPerNode, 100*s.GatewayUtil, s.MinGatewayNodes,
		s.NATSCoresPerNode, 100*s.NATSUtil, s.MinNATSNodes, 100*s.RedisUtil, s.MongoCoresPerMember, 100*s.MongoUtil, s.MinMongoSecondaries)

	p("| req/s | auth pods | blog pods | gateway nodes | NATS nodes | Redis shards | MongoDB members | busy cores | provisioned cores | closest to its limit |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	levels := make([]Level, len(rates))
	for i, rps := range rates {
		l := Size(m, mix, s, rps)
		levels[i] = l
		var busy float64
		for _, comp := range Components {
			busy += l.Cores[comp]
		}
		mongo := fmt.Sprintf("%d (%.1f)", l.Units[Store], l.Cores[Store])
		if l.MongoShards > 1 {
			mongo = fmt.Sprintf("%d × %d (%.1f)", l.MongoShards, l.MongoMembersPerShard, l.Cores[Store])
		}
		p("| %s | %d (%.1f) | %d (%.1f) | %d (%.1f) | %d (%.2f) | %d (%.2f) | %s | %.0f | %.0f | %s |\n",
			count(rps), l.Units[Auth], l.Cores[Auth], l.Units[Blog], l.Cores[Blog], l.Units[Gateway], l.Cores[Gateway],
			l.Units[NATS], l.Cores[NATS], l.Units[Redis], l.Cores[Redis], mongo, busy, l.Provisioned, l.Tightest)
	}
	p("\n(In brackets: cores the component keeps busy.)\n\n")

	p("The store was measured on the embedded FerretDB with SQLite, not MongoDB: it pushes down only `{_id: value}` filters, so an update's "+
		"version-guarded filter scans the collection (%.0f µs per write here, growing with the collection), where MongoDB uses the `_id` index. "+
		"MongoDB members (shards × members per shard) by the store's CPU per write:\n\n", m.StoreByClass[Write])
	p("| req/s | measured (%s µs) |", us(m.StoreByClass[Write]))
	for _, w := range StoreWriteScenarios {
		p(" %s µs |", us(w))
	}
	p("\n|---|---|")
	for range StoreWriteScenarios {
		p("---|")
	}
	p("\n")
	for _, rps := range rates {
		p("| %s |", count(rps))
		for _, w := range append([]float64{m.StoreByClass[Write]}, StoreWriteScenarios...) {
			shards, members := MongoMembers(m, mix, s, rps, w)
			p(" %d × %d |", shards, members)
		}
		p("\n")
	}
	p("\n")

	ceilings := Ceilings(m, mix, s)
	p("What saturates first: the minimum deployment's ceiling per component at this mix (100 %% CPU), lowest first:\n\n")
	p("| component | minimum deployment | saturates at req/s |\n|---|---|---|\n")
	for _, ce := range ceilings {
		p("| %s | %s | %s |\n", ce.Component, ce.Units, count(ce.RPS))
	}
	p("\n")

	for _, l := range levels {
		p("**%s req/s.**\n", count(l.RPS))
		for _, ch := range l.Changes {
			p("- %s\n", ch)
		}
		p("\n")
	}
	return nil
}

func className(c string) string {
	return strings.ReplaceAll(c, "_", " ")
}

func mixString(m Mix) string {
	var parts []string
	for _, cl := range Classes {
		parts = append(parts, fmt.Sprintf("%g %% %s", 100*m[cl], className(cl)))
	}
	return strings.Join(parts, ", ")
}

func us(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// count writes a rate with thousands separators; "∞" for no limit.
func count(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
