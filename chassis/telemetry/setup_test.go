package telemetry_test

import (
	"context"
	"testing"
	"time"

	"blogplatform/chassis/telemetry"
)

func TestSetupWithoutEndpointIsNoop(t *testing.T) {
	tp, shutdown, err := telemetry.Setup(context.Background(), "auth", "1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("x").Start(context.Background(), "s")
	if span.SpanContext().IsValid() {
		t.Error("no-op provider produced a recording span")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSetupRejectsBadEndpoint(t *testing.T) {
	if _, _, err := telemetry.Setup(context.Background(), "auth", "1", "http://"); err == nil {
		t.Fatal("accepted an endpoint without a host")
	}
	tp, shutdown, err := telemetry.Setup(context.Background(), "auth", "1", "http://127.0.0.1:4318")
	if err != nil || tp == nil {
		t.Fatalf("valid endpoint: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = shutdown(ctx)
}
