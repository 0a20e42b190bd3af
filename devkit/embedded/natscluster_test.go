package embedded

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"blogplatform/devkit/wait"
)

// TestNATSClusterRoutesKillsAndRestarts: three routed nodes carry a request
// from a client on one node to a responder on another; a client that loses
// its node reconnects to another one it learned from the cluster; a
// restarted node rejoins on the same ports.
func TestNATSClusterRoutesKillsAndRestarts(t *testing.T) {
	c, err := StartNATSCluster(NATSClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	if len(c.Nodes()) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes()))
	}
	for _, n := range c.Nodes() {
		if got := n.Server().Name(); got != n.Name() {
			t.Errorf("server name %q, want %q", got, n.Name())
		}
	}

	// The responder knows only node 1; the requester lists node 3 only.
	responder := natsConnect(t, c.Node(0).ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if _, err := responder.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	requester := natsConnect(t, c.Node(2).ClientURL())
	if err := c.WaitInterest("svc.echo", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if m, err := requester.Request("svc.echo", []byte("x"), 2*time.Second); err != nil || string(m.Data) != "x" {
		t.Fatalf("across routes: %v %v", m, err)
	}
	// The servers told the responder about the other nodes.
	if got := len(responder.DiscoveredServers()); got != 2 {
		t.Fatalf("responder discovered %d servers (%v), want 2", got, responder.DiscoveredServers())
	}

	killedURL := c.Node(0).ClientURL()
	c.Node(0).Shutdown()
	if c.Node(0).Running() {
		t.Fatal("node 1 still running after Shutdown")
	}
	wait.Eventually(t, 5*time.Second, "the responder reconnects to another node", func() bool {
		return responder.IsConnected() && responder.ConnectedUrl() != killedURL
	})
	if err := c.WaitRouted(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 5*time.Second, "requests reach the moved responder", func() bool {
		m, err := requester.Request("svc.echo", []byte("y"), 500*time.Millisecond)
		return err == nil && string(m.Data) == "y"
	})

	clusterPort := c.Node(0).clusterPort
	if err := c.Node(0).Restart(); err != nil {
		t.Fatal(err)
	}
	if c.Node(0).ClientURL() != killedURL || c.Node(0).Server().ClusterAddr().Port != clusterPort {
		t.Fatalf("restart moved ports: %s cluster %d", c.Node(0).ClientURL(), c.Node(0).Server().ClusterAddr().Port)
	}
	if err := c.WaitRouted(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	late := natsConnect(t, killedURL)
	if err := c.WaitInterest("svc.echo", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if m, err := late.Request("svc.echo", []byte("z"), 2*time.Second); err != nil || string(m.Data) != "z" {
		t.Fatalf("through the restarted node: %v %v", m, err)
	}
}

func TestNATSClusterRejectsBadOptions(t *testing.T) {
	for _, o := range []NATSClusterOptions{{Nodes: 1}, {NATSOptions: NATSOptions{Port: 4222}}} {
		if c, err := StartNATSCluster(o); err == nil {
			c.Shutdown()
			t.Errorf("%+v accepted", o)
		} else if !strings.HasPrefix(err.Error(), "embedded: ") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
