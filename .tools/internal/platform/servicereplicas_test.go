package platform

import (
	"slices"
	"testing"
)

// TestServiceReplicas: a per-service count overrides Replicas for that
// service only, and the gateway balances over exactly the replicas that run.
func TestServiceReplicas(t *testing.T) {
	p, _ := startStandinsWith(t, Options{Replicas: 1, ServiceReplicas: map[string]int{"blog": 3}})
	var names []string
	for _, r := range p.Replicas() {
		names = append(names, r.Name)
	}
	if want := []string{"auth1", "blog1", "blog2", "blog3"}; !slices.Equal(names, want) {
		t.Fatalf("replicas %v, want %v", names, want)
	}
	targets := map[string][]string{}
	for _, s := range p.GatewayStats() {
		targets[s.Upstream] = append(targets[s.Upstream], s.Name)
	}
	if got := targets["blog_upstream"]; !slices.Equal(got, []string{"blog1", "blog2", "blog3"}) {
		t.Errorf("blog upstream targets %v, want blog1..blog3", got)
	}
	if got := targets["auth_upstream"]; !slices.Equal(got, []string{"auth1"}) {
		t.Errorf("auth upstream targets %v, want auth1", got)
	}
	ports := map[string]bool{}
	for range 6 {
		status, body := get(t, p.GatewayURL()+"/blog/list/latest?page=1", DevAPIKey)
		if status != 200 {
			t.Fatalf("status %d %v", status, body)
		}
		ports[body["data"].(map[string]any)["port"].(string)] = true
	}
	if len(ports) != 3 {
		t.Errorf("6 requests reached %d blog replicas, want all 3 (round robin)", len(ports))
	}
}
