// Package metrics holds one Prometheus registry per service instance (no
// global registry, so two replicas can live in one process) with the series
// both services share: HTTP, NATS, cache and circuit breaker.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec   // route, method, status
	HTTPDuration *prometheus.HistogramVec // route, method, status
	NATSRequests *prometheus.CounterVec   // subject, role (client|server), outcome
	NATSDuration *prometheus.HistogramVec // subject, role, outcome
	NATSAttempts *prometheus.CounterVec   // subject, kind (first|hedge|retry): messages a client sent
	CacheLookups *prometheus.CounterVec   // cache, result (hit|miss|error)
	BreakerState *prometheus.GaugeVec     // name; 0 closed, 1 half-open, 2 open
}

func New(service string) *Metrics {
	reg := prometheus.NewRegistry()
	constLabels := prometheus.Labels{"service": service}
	m := &Metrics{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route template, method and status.", ConstLabels: constLabels,
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency.", ConstLabels: constLabels,
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		NATSRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nats_requests_total", Help: "NATS requests by subject, side and outcome.", ConstLabels: constLabels,
		}, []string{"subject", "side", "outcome"}),
		NATSDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nats_request_duration_seconds", Help: "NATS request latency.", ConstLabels: constLabels,
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"subject", "side", "outcome"}),
		NATSAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nats_request_attempts_total", Help: "NATS request messages sent by clients: first, hedge (no reply in time) or retry (no responders).", ConstLabels: constLabels,
		}, []string{"subject", "kind"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_lookups_total", Help: "Cache lookups by cache name and result (hit, miss, error).", ConstLabels: constLabels,
		}, []string{"cache", "result"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "circuit_breaker_state", Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ConstLabels: constLabels,
		}, []string{"name"}),
	}
	reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.NATSRequests, m.NATSDuration, m.NATSAttempts, m.CacheLookups, m.BreakerState,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Cache records one cache lookup; safe on a nil *Metrics.
func (m *Metrics) Cache(cache, result string) {
	if m == nil {
		return
	}
	m.CacheLookups.WithLabelValues(cache, result).Inc()
}
