package plan

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Mix is the share of each class in the traffic (summing to 1).
type Mix map[string]float64

// DefaultMix is 90 % public reads, 8 % protected reads, 2 % writes.
var DefaultMix = Mix{PublicRead: 0.90, ProtectedRead: 0.08, Write: 0.02}

// Validate checks that the mix names known classes and sums to 1.
func (m Mix) Validate() error {
	var sum float64
	for cl, v := range m {
		if !slices.Contains(Classes, cl) {
			return fmt.Errorf("mix: unknown class %q", cl)
		}
		if v < 0 {
			return fmt.Errorf("mix: negative share for %s", cl)
		}
		sum += v
	}
	if math.Abs(sum-1) > 1e-9 {
		return fmt.Errorf("mix: shares sum to %.4f, not 1", sum)
	}
	return nil
}

// Sizing is the unit of each component and how busy it may run. Services,
// gateway and NATS scale by adding nodes of CoresPer… cores; a Redis shard's
// commands run on one thread, so a shard is one core; a MongoDB member has
// MongoCoresPerMember cores. Util is the target CPU utilisation (headroom for
// bursts, a lost zone and rolling updates).
type Sizing struct {
	ServiceCoresPerPod  float64
	ServiceUtil         float64
	MinServicePods      int
	GatewayCoresPerNode float64
	GatewayUtil         float64
	MinGatewayNodes     int
	NATSCoresPerNode    float64
	NATSUtil            float64
	MinNATSNodes        int
	RedisUtil           float64
	MongoCoresPerMember float64
	MongoUtil           float64
	MinMongoSecondaries int
	// SentinelMaxShards is the most Redis shards a Sentinel set-up has (one:
	// Sentinel fails over one primary; more shards need Cluster).
	SentinelMaxShards int
	// NATSClusterMax is the most nodes in one NATS cluster (full mesh of
	// routes); beyond it, clusters joined by gateways (a supercluster).
	NATSClusterMax int
	// MongoVotingMax is the most voting members of a replica set.
	MongoVotingMax int
	// GatewayRegionMax is the most gateway nodes behind one entry point
	// before the plan splits the entry by region.
	GatewayRegionMax int
}

// DefaultSizing is the plan's stated unit sizes.
var DefaultSizing = Sizing{
	ServiceCoresPerPod: 2, ServiceUtil: 0.6, MinServicePods: 2,
	GatewayCoresPerNode: 4, GatewayUtil: 0.6, MinGatewayNodes: 2,
	NATSCoresPerNode: 4, NATSUtil: 0.5, MinNATSNodes: 3,
	RedisUtil:           0.6,
	MongoCoresPerMember: 8, MongoUtil: 0.5, MinMongoSecondaries: 2,
	SentinelMaxShards: 1, NATSClusterMax: 5, MongoVotingMax: 7, GatewayRegionMax: 24,
}

// MixCost is the CPU cost of one request of the mix.
type MixCost struct {
	// CPUus is µs per request by component (Auth, Blog, Gateway, NATS,
	// Store, Redis), Shared spread over Gateway, NATS and Store.
	CPUus map[string]float64
	// StoreByClass is the store's µs per request of each class (before the
	// mix's weights): writes go to the primary, reads to secondaries.
	StoreByClass map[string]float64
	// RedisCommands is Redis commands per request.
	RedisCommands float64
}

// Components of a MixCost, in table order.
var Components = []string{Auth, Blog, Gateway, NATS, Redis, Store}

// spread returns a route's costs with Shared distributed over the
// components that share the process it was measured in (Gateway, NATS,
// Store) in proportion to their own CPU; all to Gateway when they have none.
func spread(r Route) map[string]float64 {
	out := map[string]float64{}
	for _, c := range Components {
		out[c] = r.CPUus[c]
	}
	host := out[Gateway] + out[NATS] + out[Store]
	sh := r.CPUus[Shared]
	if host == 0 {
		out[Gateway] += sh
		return out
	}
	for _, c := range []string{Gateway, NATS, Store} {
		out[c] += sh * out[c] / host
	}
	return out
}

// Cost weighs the routes by the mix: each class's routes count equally
// within the class.
func Cost(c *Costs, mix Mix) (MixCost, error) {
	if err := mix.Validate(); err != nil {
		return MixCost{}, err
	}
	if err := c.Validate(); err != nil {
		return MixCost{}, err
	}
	m := MixCost{CPUus: map[string]float64{}, StoreByClass: map[string]float64{}}
	for _, cl := range Classes {
		var routes []Route
		for _, r := range c.Routes {
			if r.Class == cl {
				routes = append(routes, r)
			}
		}
		w := mix[cl] / float64(len(routes))
		for _, r := range routes {
			costs := spread(r)
			for comp, v := range costs {
				m.CPUus[comp] += w * v
			}
			m.StoreByClass[cl] += costs[Store] / float64(len(routes))
			m.RedisCommands += w * r.RedisCommands
		}
	}
	return m, nil
}

// Level is the deployment for one request rate.
type Level struct {
	RPS float64
	// Cores is the CPU each component keeps busy (cores at 100 %).
	Cores map[string]float64
	// Units is what is deployed: pods (Auth, Blog), nodes (Gateway, NATS),
	// shards (Redis), members in all (Store: MongoDB).
	Units                  map[string]int
	RedisOpsPerSec         float64
	RedisOpsPerShard       float64
	MongoShards            int
	MongoMembersPerShard   int
	MongoWriteCoresPerShrd float64
	MongoReadCores         float64
	// Provisioned is the cores of all units together.
	Provisioned float64
	// Tightest is the component closest to its target utilisation (cores
	// busy ÷ cores provisioned × 1/util), the first to need another unit.
	Tightest string
	Changes  []string
}

func ceilDiv(need, per float64) int {
	if need <= 0 {
		return 0
	}
	return int(math.Ceil(need/per - 1e-9))
}

// Size plans one request rate.
func Size(m MixCost, mix Mix, s Sizing, rps float64) Level {
	l := Level{RPS: rps, Cores: map[string]float64{}, Units: map[string]int{}}
	for _, c := range Components {
		l.Cores[c] = rps * m.CPUus[c] / 1e6
	}
	pods := func(cores float64) int {
		return max(s.MinServicePods, ceilDiv(cores, s.ServiceCoresPerPod*s.ServiceUtil))
	}
	l.Units[Auth] = pods(l.Cores[Auth])
	l.Units[Blog] = pods(l.Cores[Blog])
	l.Units[Gateway] = max(s.MinGatewayNodes, ceilDiv(l.Cores[Gateway], s.GatewayCoresPerNode*s.GatewayUtil))
	l.Units[NATS] = max(s.MinNATSNodes, ceilDiv(l.Cores[NATS], s.NATSCoresPerNode*s.NATSUtil))
	l.Units[Redis] = max(1, ceilDiv(l.Cores[Redis], s.RedisUtil))
	l.RedisOpsPerSec = rps * m.RedisCommands
	if m.RedisCommands > 0 && m.CPUus[Redis] > 0 {
		l.RedisOpsPerShard = s.RedisUtil / (m.CPUus[Redis] / m.RedisCommands / 1e6)
	}

	writeCores := rps * mix[Write] * m.StoreByClass[Write] / 1e6
	readCores := max(0, l.Cores[Store]-writeCores)
	mg := sizeMongo(writeCores, readCores, s)
	l.MongoShards, l.MongoMembersPerShard, l.MongoWriteCoresPerShrd = mg.shards, mg.members, mg.writePerShard
	l.MongoReadCores = readCores
	l.Units[Store] = mg.shards * mg.members

	unitCores := map[string]float64{Auth: s.ServiceCoresPerPod, Blog: s.ServiceCoresPerPod, Gateway: s.GatewayCoresPerNode,
		NATS: s.NATSCoresPerNode, Redis: 1, Store: s.MongoCoresPerMember}
	util := map[string]float64{Auth: s.ServiceUtil, Blog: s.ServiceUtil, Gateway: s.GatewayUtil, NATS: s.NATSUtil,
		Redis: s.RedisUtil, Store: s.MongoUtil}
	best := -1.0
	for _, c := range Components {
		prov := float64(l.Units[c]) * unitCores[c]
		l.Provisioned += prov
		// Store: the busiest member is a primary (its writes) or a
		// secondary (replayed writes + its share of the reads).
		busy := l.Cores[c] / prov
		if c == Store {
			busy = mg.busiest / s.MongoCoresPerMember
		}
		if f := busy / util[c]; f > best {
			best, l.Tightest = f, c
		}
	}
	l.Changes = changes(l, s)
	return l
}

// mongoSize is a MongoDB deployment: shards of members (a primary and
// secondaries) each.
type mongoSize struct {
	shards, members int
	writePerShard   float64
	// busiest is the busiest member's cores: a secondary replays its
	// shard's writes (at the write's own cost: conservative) and serves its
	// share of the reads.
	busiest float64
}

// sizeMongo places writes on each shard's primary and reads (cache misses)
// on its secondaries. A primary's writes may take half a member's budget:
// every secondary replays them and needs the other half for reads.
func sizeMongo(writeCores, readCores float64, s Sizing) mongoSize {
	budget := s.MongoCoresPerMember * s.MongoUtil
	for shards := max(1, ceilDiv(writeCores, budget/2)); ; shards++ {
		m := mongoSize{shards: shards, writePerShard: writeCores / float64(shards)}
		readPerShard := readCores / float64(shards)
		secondaries := max(s.MinMongoSecondaries, ceilDiv(readPerShard, budget-m.writePerShard))
		m.members = 1 + secondaries
		m.busiest = max(m.writePerShard, m.writePerShard+readPerShard/float64(secondaries))
		// Reads beyond what a replica set's voting members serve are
		// spread by sharding too: non-voting members would add read
		// capacity but no failover safety, and one primary's oplog feeds
		// them all.
		if m.members <= s.MongoVotingMax {
			return m
		}
	}
}

// StoreWriteScenarios are the store costs per write (µs) the plan also
// sizes MongoDB for, besides the measured one: the embedded store's cost
// is not MongoDB's (see Render), so the plan shows how the members depend
// on it.
var StoreWriteScenarios = []float64{2000, 500, 100}

// MongoMembers sizes MongoDB at rps with the store costing writeUs per
// write (reads as measured): shards and members per shard.
func MongoMembers(m MixCost, mix Mix, s Sizing, rps, writeUs float64) (shards, members int) {
	writeCores := rps * mix[Write] * writeUs / 1e6
	readCores := max(0, rps*m.CPUus[Store]/1e6-rps*mix[Write]*m.StoreByClass[Write]/1e6)
	mg := sizeMongo(writeCores, readCores, s)
	return mg.shards, mg.members
}

// changes is the design at a level, by rule.
func changes(l Level, s Sizing) []string {
	var out []string
	out = append(out, fmt.Sprintf("Services: %d auth and %d blog pods of %g cores (HorizontalPodAutoscaler on CPU at %.0f %%).",
		l.Units[Auth], l.Units[Blog], s.ServiceCoresPerPod, 100*s.ServiceUtil))
	gw := fmt.Sprintf("Gateway: %d Kong nodes of %g cores, DB-less with one declarative config, behind an L4 load balancer.",
		l.Units[Gateway], s.GatewayCoresPerNode)
	if l.Units[Gateway] > s.GatewayRegionMax {
		gw += fmt.Sprintf(" More than %d nodes behind one entry point: split the entry by region (GeoDNS or anycast), each region's Kong fleet in front of its own services.",
			s.GatewayRegionMax)
	}
	out = append(out, gw)
	regions := l.Units[Gateway] > s.GatewayRegionMax
	switch {
	case l.Units[NATS] <= s.NATSClusterMax && !regions:
		out = append(out, fmt.Sprintf("NATS: one cluster of %d nodes (full mesh of routes), services spread over them.", l.Units[NATS]))
	case l.Units[NATS] <= s.NATSClusterMax:
		out = append(out, fmt.Sprintf("NATS: %d nodes of CPU would do, but with the entry split by region each region runs its own cluster of 3, joined by gateways into a supercluster, so a request is answered in its region (queue groups prefer local members).",
			l.Units[NATS]))
	default:
		clusters := ceilDiv(float64(l.Units[NATS]), 3)
		out = append(out, fmt.Sprintf("NATS: %d nodes are more than one full-mesh cluster should hold (%d): a supercluster of %d clusters of 3 joined by gateways, one per region or zone; a request is answered in its own cluster when a responder is there (queue groups prefer local members).",
			l.Units[NATS], s.NATSClusterMax, clusters))
	}
	if l.Units[Redis] <= s.SentinelMaxShards {
		out = append(out, fmt.Sprintf("Redis: one primary with a replica and three Sentinels (REDIS_SENTINEL_ADDRS); %s ops/s of about %s one shard holds.",
			count(l.RedisOpsPerSec), count(l.RedisOpsPerShard)))
	} else {
		out = append(out, fmt.Sprintf("Redis: %s ops/s need %d shards (about %s ops/s each): Redis Cluster (REDIS_CLUSTER_ADDRS) with %d primaries and a replica each instead of Sentinel; the services' multi-key operations already stay in one hash slot.",
			count(l.RedisOpsPerSec), l.Units[Redis], count(l.RedisOpsPerShard), l.Units[Redis]))
	}
	mongo := fmt.Sprintf("MongoDB: one replica set of %d members (primary + %d secondaries): writes on the primary with DB_WRITE_CONCERN=majority, public reads on secondaries (DB_READ_PREFERENCE=secondaryPreferred).",
		l.MongoMembersPerShard, l.MongoMembersPerShard-1)
	if l.MongoShards > 1 {
		mongo = fmt.Sprintf("MongoDB: writes keep %.1f cores of primaries busy and reads %.1f cores of secondaries: more than one replica set holds (a primary's writes up to half of a member's %g cores at %.0f %%, at most %d voting members): a sharded cluster of %d shards (hashed _id), each a replica set of %d, mongos routers next to the services.",
			l.MongoWriteCoresPerShrd*float64(l.MongoShards), l.MongoReadCores, s.MongoCoresPerMember, 100*s.MongoUtil, s.MongoVotingMax, l.MongoShards, l.MongoMembersPerShard)
	}
	out = append(out, mongo)
	return out
}

// Ceiling is the request rate at which one component of the minimum
// deployment runs at 100 % CPU.
type Ceiling struct {
	Component string
	Units     string
	RPS       float64
}

// Ceilings are the minimum deployment's limits, lowest first: the first is
// the component that saturates first as traffic grows on it.
func Ceilings(m MixCost, mix Mix, s Sizing) []Ceiling {
	at := func(cores, usPerReq float64) float64 {
		if usPerReq <= 0 {
			return math.Inf(1)
		}
		return cores / (usPerReq / 1e6)
	}
	writeUs := mix[Write] * m.StoreByClass[Write]
	readUs := m.CPUus[Store] - writeUs
	// A secondary replays every write and serves its share of the reads.
	secondaryRPS := at(s.MongoCoresPerMember, writeUs+readUs/float64(s.MinMongoSecondaries))
	out := []Ceiling{
		{Auth, fmt.Sprintf("%d auth pods × %g cores", s.MinServicePods, s.ServiceCoresPerPod), at(float64(s.MinServicePods)*s.ServiceCoresPerPod, m.CPUus[Auth])},
		{Blog, fmt.Sprintf("%d blog pods × %g cores", s.MinServicePods, s.ServiceCoresPerPod), at(float64(s.MinServicePods)*s.ServiceCoresPerPod, m.CPUus[Blog])},
		{Gateway, fmt.Sprintf("%d gateway nodes × %g cores", s.MinGatewayNodes, s.GatewayCoresPerNode), at(float64(s.MinGatewayNodes)*s.GatewayCoresPerNode, m.CPUus[Gateway])},
		{NATS, fmt.Sprintf("%d NATS nodes × %g cores", s.MinNATSNodes, s.NATSCoresPerNode), at(float64(s.MinNATSNodes)*s.NATSCoresPerNode, m.CPUus[NATS])},
		{Redis, "1 Redis shard (1 core)", at(1, m.CPUus[Redis])},
		{Store + " (primary)", fmt.Sprintf("1 MongoDB primary × %g cores (writes)", s.MongoCoresPerMember), at(s.MongoCoresPerMember, writeUs)},
		{Store + " (secondaries)", fmt.Sprintf("%d MongoDB secondaries × %g cores (reads + replayed writes)", s.MinMongoSecondaries, s.MongoCoresPerMember), secondaryRPS},
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RPS < out[j].RPS })
	return out
}
