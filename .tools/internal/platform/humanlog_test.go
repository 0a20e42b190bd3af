package platform

import (
	"strings"
	"testing"
	"time"
)

func TestHumanizeLogLines(t *testing.T) {
	// The clock shown is local time; build the expected one the same way.
	at := time.Date(2026, 11, 30, 1, 53, 55, 267_276_665, time.UTC)
	clock := at.Local().Format("15:04:05.000")
	stamp := at.Format(time.RFC3339Nano)
	tests := []struct {
		name, line, want string
		color            bool
	}{
		{
			name: "request line",
			line: `{"time":"` + stamp + `","level":"INFO","msg":"http request","service":"blog","requestId":"r-1","method":"GET","route":"/blog/id/:id","status":200,"latencyMs":0.21,"remote":"127.0.0.1"}`,
			want: clock + " INFO  GET /blog/id/:id 200 0.21ms requestId=r-1",
		},
		{
			name: "request line with a path and a slow latency",
			line: `{"time":"` + stamp + `","level":"ERROR","msg":"request","method":"POST","path":"/author","status":503,"latencyMs":1520.5}`,
			want: clock + " ERROR POST /author 503 1.52s",
		},
		{
			name: "other line keeps its fields in order, quoting values with spaces",
			line: `{"time":"` + stamp + `","level":"WARN","msg":"cache unavailable; falling back","cache":"blog","op":"get","error":"dial tcp: refused","attempt":2}`,
			want: clock + ` WARN  cache unavailable; falling back cache=blog op=get error="dial tcp: refused" attempt=2`,
		},
		{
			name: "a line that is not a request keeps its status and remote fields",
			line: `{"level":"INFO","msg":"admin action","service":"auth","audit":true,"action":"apikeys.revoke","status":200,"remote":"10.0.0.9"}`,
			want: `INFO  admin action audit=true action=apikeys.revoke status=200 remote=10.0.0.9`,
		},
		{
			name:  "colour marks the level and a failing status",
			line:  `{"level":"WARN","msg":"request","method":"GET","route":"/x","status":404,"latencyMs":12.34}`,
			want:  ansiYellow + "WARN " + ansiReset + " GET /x " + ansiYellow + "404" + ansiReset + " 12.3ms",
			color: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := humanize(nil, []byte(tc.line), tc.color)
			if !ok {
				t.Fatalf("humanize(%s) not ok", tc.line)
			}
			if string(got) != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	for _, raw := range []string{"plain text from a panic", "{not json", ""} {
		if _, ok := humanize(nil, []byte(raw), false); ok {
			t.Errorf("humanize(%q) ok, want the line passed through", raw)
		}
	}
}

func TestLogSinkPrintsHumanLinesAndKeepsJSONTails(t *testing.T) {
	line := `{"level":"INFO","msg":"http request","method":"GET","route":"/blog/list/latest","status":200,"latencyMs":3}`
	var out syncBuffer
	s := newLogSink(&out, 5, false)
	s.format = LogHuman
	s.copyLines("blog1", strings.NewReader(line+"\npanic: boom\n"))
	want := "blog1 | INFO  GET /blog/list/latest 200 3.00ms\nblog1 | panic: boom\n"
	if got := out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if got := s.tail("blog1", 2); got != line+"\npanic: boom" {
		t.Errorf("tail %q: want the lines as the replica wrote them", got)
	}
	if _, err := ParseLogFormat("yaml"); err == nil {
		t.Error("ParseLogFormat(yaml): want an error")
	}
}
