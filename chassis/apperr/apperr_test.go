package apperr

import (
	"errors"
	"fmt"
	"testing"
)

func TestPublicNeverLeaksInternalText(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
	}{
		{"raw error", errors.New("mongo: connection refused on 10.0.0.3"), 500, GenericMessage},
		{"internal wraps cause", InternalErr(errors.New("E11000 duplicate key")), 500, GenericMessage},
		{"wrapped app error keeps its message", fmt.Errorf("ctx: %w", BadRequest("title is required")), 400, "title is required"},
		{"unavailable has a safe message", Wrap(Unavailable, "authentication service unavailable", errors.New("nats: timeout")), 503, "authentication service unavailable"},
		{"unauthorized", Unauthorized("wrong password"), 401, "wrong password"},
		{"forbidden", Denied("permission denied: role missing"), 403, "permission denied: role missing"},
		{"not found", Missing("blog not found"), 404, "blog not found"},
		{"too many", New(TooManyRequests, "too many requests"), 429, "too many requests"},
		{"conflict", New(Conflict, "blog changed: review it again"), 409, "blog changed: review it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := Public(tt.err)
			if status != tt.wantStatus || msg != tt.wantMsg {
				t.Errorf("Public = %d %q, want %d %q", status, msg, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

func TestWireRoundTrip(t *testing.T) {
	tests := []struct {
		err  error
		wire string
	}{
		{Unauthorized("permission denied: missing Authorization"), "401:permission denied: missing Authorization"},
		{Denied("permission denied: does not have sufficient role"), "403:permission denied: does not have sufficient role"},
		{errors.New("driver detail"), "500:something went wrong"},
		{BadRequest("a: b: c"), "400:a: b: c"},
		{New(Conflict, "changed since"), "409:changed since"},
	}
	for _, tt := range tests {
		if got := WireText(tt.err); got != tt.wire {
			t.Errorf("WireText = %q, want %q", got, tt.wire)
		}
		parsed, ok := ParseWire(tt.wire)
		if !ok {
			t.Fatalf("ParseWire(%q) failed", tt.wire)
		}
		status, msg := Public(tt.err)
		if parsed.Status() != status || parsed.Message != msg {
			t.Errorf("ParseWire(%q) = %d %q", tt.wire, parsed.Status(), parsed.Message)
		}
	}
}

func TestParseWireRejectsUnprefixedText(t *testing.T) {
	for _, text := range []string{"mongo: no documents in result", "abc:def", "999:x", "", "401"} {
		if _, ok := ParseWire(text); ok {
			t.Errorf("ParseWire(%q) accepted", text)
		}
	}
}
