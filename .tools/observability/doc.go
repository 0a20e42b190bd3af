// Package observability checks the Grafana dashboard and the Prometheus
// alerting rules of .extra/observability against the services: every
// metric they query must be one the services export after traffic, so
// neither can drift from the code; the rules must load in Prometheus'
// own parser, each with a severity and a summary.
package observability
