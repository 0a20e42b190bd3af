package platform

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"blogplatform/tools/internal/gateway"
)

// requestLine is a service's request log line, the bulk of a replica's
// output at LOG_LEVEL=info.
const requestLine = `{"time":"2026-11-30T01:53:55.267276665Z","level":"INFO","msg":"request","service":"blog","method":"GET","path":"/id/6b0cd7684892e30caf421ebf","status":200,"latencyMs":0.21,"bytes":2302,"requestId":"efc77feafc69fe71942e046010027de1"}`

// BenchmarkLogSink measures re-printing one replica's log lines to a file.
func BenchmarkLogSink(b *testing.B) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	const lines = 1000
	input := []byte(strings.Repeat(requestLine+"\n", lines))
	s := newLogSink(devNull, 5, false)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.copyLines("blog1", bytes.NewReader(input))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}

func TestLogSinkPrefixesFiltersAndKeepsTails(t *testing.T) {
	probe := `{"msg":"request","status":200,"requestId":"` + gateway.HealthProbeRequestIDPrefix + `x"}`
	failedProbe := `{"msg":"request","status":503,"requestId":"` + gateway.HealthProbeRequestIDPrefix + `x"}`
	long := strings.Repeat("x", pipeBuffer*2+10)
	input := "first\r\n" + probe + "\n" + failedProbe + "\n" + long + "\nlast without newline"
	tests := []struct {
		name       string
		showProbes bool
		want       []string
	}{
		{name: "probes dropped", want: []string{"first", failedProbe, long, "last without newline"}},
		{name: "probes shown", showProbes: true, want: []string{"first", probe, failedProbe, long, "last without newline"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			s := newLogSink(&out, 5, tc.showProbes)
			s.copyLines("auth1", strings.NewReader(input))
			s.note("auth1", "stopped")

			var want strings.Builder
			for _, l := range append(tc.want, "[devstack] stopped") {
				want.WriteString("auth1 | " + l + "\n")
			}
			if got := out.String(); got != want.String() {
				t.Errorf("output:\n%.300q\nwant:\n%.300q", got, want.String())
			}
			if got, want := s.tail("auth1", 2), "last without newline\n[devstack] stopped"; got != want {
				t.Errorf("tail(2) = %q, want %q", got, want)
			}
			if got := s.tail("blog1", 5); got != "" {
				t.Errorf("tail of a silent process = %q", got)
			}
		})
	}
}

func TestLogSinkFlushesALoneLineAtOnce(t *testing.T) {
	var out syncBuffer
	s := newLogSink(&out, 5, false)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); s.copyLines("blog1", pr) }()
	defer func() { pw.Close(); <-done }()

	// The pipe stays open: the line must not wait in a buffer for more.
	if _, err := pw.Write([]byte("ready\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "blog1 | ready\n" {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want the line written while the pipe is open", out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLogSinkTailIsBounded(t *testing.T) {
	s := newLogSink(nil, 5, false)
	line := strings.Repeat("y", 100)
	var in strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&in, "%05d %s\n", i, line)
	}
	s.copyLines("blog1", strings.NewReader(in.String()))
	if n := len(s.tails["blog1"].b); n > 2*tailBytes {
		t.Errorf("tail holds %d bytes, want at most %d", n, 2*tailBytes)
	}
	got := strings.Split(s.tail("blog1", 3), "\n")
	want := []string{"04997 " + line, "04998 " + line, "04999 " + line}
	if !slices.Equal(got, want) {
		t.Errorf("tail(3) = %.80q..., want the last three lines", got)
	}
	if n := len(strings.Split(s.tail("blog1", 100000), "\n")); n < 200 {
		t.Errorf("tail keeps %d lines, want at least 200", n)
	}
}
