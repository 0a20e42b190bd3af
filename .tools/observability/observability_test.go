package observability

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	dashboardFile = "../../.extra/observability/grafana/dashboards/platform.json"
	alertsFile    = "../../.extra/observability/alerts.yml"
)

// prometheusSeries are made by Prometheus itself for every target, not
// exported by the services.
var prometheusSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// checkedLabels are the labels whose values a query may name and the
// services must really produce. Others (status, outcome, kind, method)
// name values that appear only when things go wrong, or that Prometheus
// adds (job, instance).
var checkedLabels = []string{"service", "route", "cache", "side", "subject", "name"}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

// grafanaVariables are Grafana's built-in interval variables, replaced by a
// duration so the expression parses as PromQL.
var grafanaVariables = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)

// labelValues is a template variable's label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// dashboardQueries returns every PromQL expression of the dashboard: the
// panels' targets (in rows too) and the template variables' queries.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{where: "panel " + p.Title + " " + tg.RefID, expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
		}
		out = append(out, query{where: "variable " + v.Name, expr: m[1]})
	}
	return out
}

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", alertsFile, errs)
	}
	return groups
}

// selectors parses expr with Prometheus' PromQL parser and returns its
// vector selectors.
func selectors(t *testing.T, q query) []*parser.VectorSelector {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.ReplaceAllString(q.expr, "5m"))
	if err != nil {
		t.Fatalf("%s: %v\n%s", q.where, err, q.expr)
	}
	var out []*parser.VectorSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatalf("%s queries no metric: %s", q.where, q.expr)
	}
	return out
}

// exported is every series name the services export, with a histogram's
// _bucket, _sum and _count and a summary's _sum and _count, each with the
// label sets of its samples.
func exported(families ...map[string]*dto.MetricFamily) map[string][]labels.Labels {
	out := map[string][]labels.Labels{}
	for _, fams := range families {
		for name, f := range fams {
			var names []string
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				names = []string{name + "_bucket", name + "_sum", name + "_count"}
			case dto.MetricType_SUMMARY:
				names = []string{name, name + "_sum", name + "_count"}
			default:
				names = []string{name}
			}
			for _, m := range f.GetMetric() {
				b := labels.NewScratchBuilder(len(m.GetLabel()))
				for _, l := range m.GetLabel() {
					b.Add(l.GetName(), l.GetValue())
				}
				b.Sort()
				for _, n := range names {
					out[n] = append(out[n], b.Labels())
				}
			}
		}
	}
	return out
}

// The dashboard's and the alert rules' queries name only metrics the
// services export once they have served traffic, and their matchers on
// service, route, cache, side, subject and breaker name select series that
// exist.
func TestQueriedMetricsAreExported(t *testing.T) {
	queries := dashboardQueries(t)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			queries = append(queries, query{where: "rule " + r.Alert + r.Record, expr: r.Expr})
		}
	}
	if len(queries) < 20 {
		t.Fatalf("only %d queries found: the files were not read as expected", len(queries))
	}

	s := startServices(t)
	s.traffic()
	series := exported(scrape(t, s.authMetrics), scrape(t, s.blogMetrics))

	queried := map[string]bool{}
	for _, q := range queries {
		for _, vs := range selectors(t, q) {
			name := vs.Name
			if name == "" {
				t.Errorf("%s selects by labels only (%s): name the metric", q.where, vs)
				continue
			}
			queried[name] = true
			if slices.Contains(prometheusSeries, name) {
				continue
			}
			have, ok := series[name]
			if !ok {
				t.Errorf("%s queries %s, which the services do not export", q.where, name)
				continue
			}
			var checked []*labels.Matcher
			for _, m := range vs.LabelMatchers {
				if slices.Contains(checkedLabels, m.Name) && !strings.Contains(m.Value, "$") &&
					(m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp) {
					checked = append(checked, m)
				}
			}
			if !slices.ContainsFunc(have, func(ls labels.Labels) bool {
				for _, m := range checked {
					if !m.Matches(ls.Get(m.Name)) {
						return false
					}
				}
				return true
			}) {
				t.Errorf("%s: no exported %s series matches %v", q.where, name, checked)
			}
		}
	}
	// The dashboard covers what it promises.
	for _, name := range []string{"http_requests_total", "http_request_duration_seconds_bucket", "nats_requests_total",
		"nats_request_duration_seconds_bucket", "cache_lookups_total", "circuit_breaker_state", "go_goroutines", "up"} {
		if !queried[name] {
			t.Errorf("nothing queries %s", name)
		}
	}
}

// The rules load with Prometheus' own rule parser, and every alert has a
// known severity and a summary.
func TestAlertRules(t *testing.T) {
	groups := loadRules(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, sev)
			}
			if strings.TrimSpace(r.Annotations["summary"]) == "" {
				t.Errorf("%s has no summary annotation", r.Alert)
			}
		}
	}
	for _, want := range []string{"AuthUnreachableFromBlog", "AuthBreakerOpen", "HighErrorRatio", "HighLatencyP99", "ReplicaDown", "ReplicaNotReady"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no %s alert (have %v)", want, alerts)
		}
	}
	// A broken rule is refused by the same parser, so the check above can
	// fail.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: g\n    rules:\n      - alert: Broken\n        expr: rate(http_requests_total[5m]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs := rulefmt.ParseFile(bad, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler)); len(errs) == 0 {
		t.Error("the rule parser accepted an expression with an unclosed parenthesis")
	}
}
