// Package telemetry sets up OpenTelemetry tracing for one service instance.
// Traces are exported over OTLP/HTTP only when an endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT); otherwise tracing is a no-op and costs
// nothing. The provider is returned, not installed globally, so two
// replicas in one process keep separate providers.
package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator is W3C trace context plus baggage: the traceparent header in
// HTTP and in NATS message headers.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup returns a tracer provider and its shutdown function. With an empty
// endpoint the provider is a no-op.
func Setup(ctx context.Context, service, version, endpoint string) (trace.TracerProvider, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	opts, err := exporterOptions(endpoint)
	if err != nil {
		return nil, nil, err
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	tp := NewProvider(sdktrace.NewBatchSpanProcessor(exporter), service, version)
	return tp, tp.Shutdown, nil
}

// NewProvider builds an SDK provider around a span processor (tests pass an
// in-memory one).
func NewProvider(processor sdktrace.SpanProcessor, service, version string) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(processor),
		sdktrace.WithRawSpanLimits(sdktrace.NewSpanLimits()),
		sdktrace.WithResource(newResource(service, version)),
	)
}

// exporterOptions accepts the standard endpoint forms: a full URL
// (http://collector:4318, scheme decides TLS) or host:port.
func exporterOptions(endpoint string) ([]otlptracehttp.Option, error) {
	if !strings.Contains(endpoint, "://") {
		return []otlptracehttp.Option{otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure()}, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("invalid OTEL_EXPORTER_OTLP_ENDPOINT %q", endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		opts = append(opts, otlptracehttp.WithURLPath(p+"/v1/traces"))
	}
	return opts, nil
}

func newResource(service, version string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", service), attribute.String("service.version", version))
}
