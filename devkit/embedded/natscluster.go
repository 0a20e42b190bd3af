package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSClusterOptions configures [StartNATSCluster]. The zero value is three
// nodes on random 127.0.0.1 ports without authentication.
type NATSClusterOptions struct {
	// Nodes is the number of servers; 0 means 3.
	Nodes int
	// NATSOptions apply to every node (host, users, logging); Port must be 0.
	NATSOptions
}

// NATSCluster is a cluster of embedded nats-server nodes joined by routes,
// as a production NATS cluster is (a cluster block with explicit routes to
// the other nodes): a message published on one node reaches subscribers on
// every other, queue groups span the nodes, and the servers tell their
// clients about the other nodes (INFO connect_urls) so a client that loses
// its node reconnects to another. Each node can be shut down and restarted
// on its ports, which is how tests kill the node a replica uses.
type NATSCluster struct {
	nodes []*NATSClusterNode
}

// NATSClusterNode is one node of a NATSCluster; its client and cluster ports
// stay the same across Restart.
type NATSClusterNode struct {
	*NATS
	cluster *NATSCluster
	name    string

	mu          sync.Mutex
	clusterPort int
}

// clusterName names the embedded cluster in every node's cluster block.
const clusterName = "embedded"

// StartNATSCluster starts the nodes one after the other, each with routes to
// the nodes started before it (later nodes learn the rest by gossip), and
// waits until every node is routed to every other. On error, whatever was
// started is shut down.
func StartNATSCluster(opts NATSClusterOptions) (c *NATSCluster, err error) {
	n := opts.Nodes
	if n == 0 {
		n = 3
	}
	if n < 2 {
		return nil, errors.New("embedded: a NATS cluster needs at least 2 nodes")
	}
	if opts.Port != 0 {
		return nil, errors.New("embedded: NATS cluster nodes take random ports (Port must be 0)")
	}
	c = &NATSCluster{}
	defer func() {
		if err != nil {
			c.Shutdown()
		}
	}()
	for i := range n {
		node := &NATSClusterNode{cluster: c, name: fmt.Sprintf("embedded-nats-%d", i+1), clusterPort: server.RANDOM_PORT}
		node.NATS, err = startNATSTuned(opts.NATSOptions, node.tune)
		if err != nil {
			return c, fmt.Errorf("embedded: NATS cluster node %d: %w", i+1, err)
		}
		// Fixed from now on, so Restart and the later nodes' routes find it.
		node.mu.Lock()
		node.clusterPort = node.Server().ClusterAddr().Port
		node.mu.Unlock()
		c.nodes = append(c.nodes, node)
	}
	if err := c.WaitRouted(natsReadyTimeout); err != nil {
		return c, err
	}
	return c, nil
}

// tune gives a node its own server name and its cluster block: the cluster
// port and explicit routes to every other node whose cluster port is known
// (at the first start, the nodes started before it; at a restart, all).
func (n *NATSClusterNode) tune(o *server.Options) {
	n.mu.Lock()
	port := n.clusterPort
	n.mu.Unlock()
	o.ServerName = n.name
	o.Cluster = server.ClusterOpts{Name: clusterName, Host: o.Host, Port: port}
	for _, other := range n.cluster.nodes {
		if other == n {
			continue
		}
		other.mu.Lock()
		p := other.clusterPort
		other.mu.Unlock()
		o.Routes = append(o.Routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort(o.Host, strconv.Itoa(p))})
	}
}

// Nodes are the cluster's nodes, in start order.
func (c *NATSCluster) Nodes() []*NATSClusterNode { return c.nodes }

// Node is the i-th node (0-based).
func (c *NATSCluster) Node(i int) *NATSClusterNode { return c.nodes[i] }

// ClientURLs are the nodes' client URLs in node order.
func (c *NATSCluster) ClientURLs() []string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.ClientURL()
	}
	return urls
}

// Name is the node's server name (as clients and monitoring see it).
func (n *NATSClusterNode) Name() string { return n.name }

// Running reports whether the node is up.
func (n *NATSClusterNode) Running() bool { return n.Server() != nil }

// Shutdown stops every node.
func (c *NATSCluster) Shutdown() {
	for _, n := range c.nodes {
		n.Shutdown()
	}
}

// WaitRouted waits until every running node has a route to every other
// running node. It counts peers with NumRemotes: NumRoutes counts route
// connections, several per peer since nats-server pools them.
func (c *NATSCluster) WaitRouted(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var running []*server.Server
		for _, n := range c.nodes {
			if s := n.Server(); s != nil {
				running = append(running, s)
			}
		}
		routed := true
		for _, s := range running {
			if s.NumRemotes() != len(running)-1 {
				routed = false
			}
		}
		if routed {
			return nil
		}
		if time.Now().After(deadline) {
			counts := make([]int, len(running))
			for i, s := range running {
				counts[i] = s.NumRemotes()
			}
			return fmt.Errorf("embedded: NATS cluster not routed after %s (peers per running node: %v)", timeout, counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitInterest waits until every running node knows at least one
// subscriber matching subject in the global account (the one the
// password users share), local or behind a route: a request published on
// any node then finds a responder.
func (c *NATSCluster) WaitInterest(subject string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := ""
		for _, n := range c.nodes {
			if s := n.Server(); s != nil && s.GlobalAccount().Interest(subject) == 0 {
				missing = n.name
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded: no interest in %q on %s after %s", subject, missing, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
