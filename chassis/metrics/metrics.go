// Package metrics holds one Prometheus registry per service instance (no
// global registry, so two replicas can live in one process) with the series
// both services share: HTTP, NATS, cache and circuit breaker.
package metrics

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

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

	// Resolved series of the per-request recorders below: a lookup in a
	// vector hashes every label value and takes the vector's lock on each
	// call; these maps are read without a lock.
	http     seriesCache[httpKey, timedSeries]
	nats     seriesCache[natsKey, timedSeries]
	cache    seriesCache[cacheKey, prometheus.Counter]
	attempts seriesCache[attemptKey, prometheus.Counter]
}

type attemptKey struct{ subject, kind string }

type httpKey struct {
	route, method string
	status        int
}

type natsKey struct{ subject, side, outcome string }

type cacheKey struct{ cache, result string }

type timedSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
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
	m.cache.get(cacheKey{cache, result}, func() prometheus.Counter {
		return m.CacheLookups.WithLabelValues(cache, result)
	}).Inc()
}

// HTTP records one HTTP request (http_requests_total and
// http_request_duration_seconds); safe on a nil *Metrics.
func (m *Metrics) HTTP(route, method string, status int, seconds float64) {
	if m == nil {
		return
	}
	s := m.http.get(httpKey{route, method, status}, func() timedSeries {
		code := strconv.Itoa(status)
		return timedSeries{m.HTTPRequests.WithLabelValues(route, method, code), m.HTTPDuration.WithLabelValues(route, method, code)}
	})
	s.count.Inc()
	s.duration.Observe(seconds)
}

// NATS records one NATS request on side "client" or "server"
// (nats_requests_total and nats_request_duration_seconds); safe on a nil
// *Metrics.
func (m *Metrics) NATS(subject, side, outcome string, seconds float64) {
	if m == nil {
		return
	}
	s := m.nats.get(natsKey{subject, side, outcome}, func() timedSeries {
		return timedSeries{m.NATSRequests.WithLabelValues(subject, side, outcome), m.NATSDuration.WithLabelValues(subject, side, outcome)}
	})
	s.count.Inc()
	s.duration.Observe(seconds)
}

// NATSAttempt adds n (when positive) to the messages a NATS client sent for
// subject, of kind "first", "hedge" or "retry"; safe on a nil *Metrics.
func (m *Metrics) NATSAttempt(subject, kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.attempts.get(attemptKey{subject, kind}, func() prometheus.Counter {
		return m.NATSAttempts.WithLabelValues(subject, kind)
	}).Add(float64(n))
}

// maxCachedSeries bounds each series cache: label values come from a
// bounded set in practice (route templates, subjects, statuses), but a
// client can send any method, and past the bound lookups simply go to the
// vector every time.
const maxCachedSeries = 1024

// seriesCache maps label values to resolved series. Reads load an
// immutable map without locking; a new series copies the map (rare: the
// set of label values is small and settles after warm-up).
type seriesCache[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

func (c *seriesCache[K, V]) get(k K, resolve func() V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		if len(*old) >= maxCachedSeries {
			return resolve()
		}
	}
	v := resolve()
	next := map[K]V{k: v}
	if old != nil {
		maps.Copy(next, *old)
	}
	c.m.Store(&next)
	return v
}
