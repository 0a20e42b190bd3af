package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"blogplatform/chassis/apperr"
)

// syncBuffer collects log output written from the engine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the decoded JSON lines written so far and forgets them.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", raw)
		}
		out = append(out, m)
	}
	b.buf.Reset()
	return out
}

func accessLines(lines []map[string]any) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == "http request" {
			out = append(out, l)
		}
	}
	return out
}

func sampledEngine(sample *float64) (*Engine, *syncBuffer) {
	out := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(out, nil)).With("service", "test")
	e := NewEngine(Options{Logger: log, SuccessLogSample: sample})
	e.GET("/ok", func(c *gin.Context) { OK(c, "success") })
	e.GET("/missing", func(c *gin.Context) { Fail(c, apperr.Missing("blog not found")) })
	e.GET("/broken", func(c *gin.Context) { Fail(c, errors.New("driver detail")) })
	e.GET("/talk", func(c *gin.Context) {
		Logger(c).Info("handler says")
		OK(c, "success")
	})
	return e, out
}

func serve(e http.Handler, path string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w
}

func ptr(f float64) *float64 { return &f }

func TestAccessLogSample(t *testing.T) {
	tests := []struct {
		name   string
		sample *float64
		wantOK int // access lines for 10 successful requests
	}{
		{"unset logs all", nil, 10},
		{"one logs all", ptr(1), 10},
		{"zero logs only failures", ptr(0), 0},
		{"above one is one", ptr(7), 10},
		{"below zero is zero", ptr(-1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, out := sampledEngine(tt.sample)
			for range 10 {
				serve(e, "/ok")
			}
			if got := len(accessLines(out.lines(t))); got != tt.wantOK {
				t.Fatalf("successful requests: %d access lines, want %d", got, tt.wantOK)
			}
			// Failures are always written: 4xx at info, 5xx at error.
			for _, f := range []struct {
				path, level string
				status      float64
			}{{"/missing", "INFO", 404}, {"/broken", "ERROR", 500}, {"/nope", "INFO", 404}} {
				w := serve(e, f.path)
				lines := out.lines(t)
				access := accessLines(lines)
				if len(access) != 1 {
					t.Fatalf("%s: %d access lines, want 1", f.path, len(access))
				}
				l := access[0]
				if l["level"] != f.level || l["status"] != f.status || l["requestId"] != w.Header().Get(RequestIDHeader) {
					t.Errorf("%s: access line %v", f.path, l)
				}
				if f.status == 500 {
					// The cause is logged with the request id, once.
					if len(lines) != 2 || lines[0]["msg"] != "request failed" || lines[0]["requestId"] != l["requestId"] || lines[0]["error"] != "driver detail" {
						t.Errorf("5xx cause line: %v", lines)
					}
				}
			}
		})
	}
}

func TestAccessLogSampleShare(t *testing.T) {
	e, out := sampledEngine(ptr(0.25))
	const n = 2000
	for range n {
		serve(e, "/ok")
	}
	// Binomial(2000, 0.25): mean 500, standard deviation ~19; the bounds
	// are more than 7 deviations away.
	if got := len(accessLines(out.lines(t))); got < 360 || got > 640 {
		t.Fatalf("%d of %d successful requests logged at a 0.25 sample", got, n)
	}
}

// The access line keeps its fields and their order; a handler's own lines
// carry requestId and traceId even when the access line is sampled away.
func TestRequestLogLines(t *testing.T) {
	e, out := sampledEngine(ptr(0))
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	w := serve(e, "/talk", RequestIDHeader, "req-1", "traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	if w.Code != 200 || w.Header().Get(RequestIDHeader) != "req-1" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("response %d %v", w.Code, w.Header())
	}
	lines := out.lines(t)
	if len(lines) != 1 || lines[0]["msg"] != "handler says" || lines[0]["requestId"] != "req-1" || lines[0]["traceId"] != trace || lines[0]["service"] != "test" {
		t.Fatalf("handler lines: %v", lines)
	}

	e, raw := sampledEngine(nil)
	serve(e, "/missing?x=1", RequestIDHeader, "req-2", "traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	line := strings.TrimSpace(raw.buf.String())
	keys := []string{`"time":`, `"level":"INFO"`, `"msg":"http request"`, `"service":"test"`, `"requestId":"req-2"`,
		`"traceId":"` + trace + `"`, `"method":"GET"`, `"route":"/missing"`, `"status":404`, `"latencyMs":`, `"remote":"192.0.2.1"`}
	at := 0
	for _, k := range keys {
		i := strings.Index(line[at:], k)
		if i < 0 {
			t.Fatalf("access line %s: %s missing or out of order", line, k)
		}
		at += i + len(k)
	}
	// Without a trace there is no traceId at all.
	raw.buf.Reset()
	serve(e, "/ok")
	if line := raw.buf.String(); strings.Contains(line, "traceId") || !strings.Contains(line, `"requestId":"`) {
		t.Fatalf("access line without a trace: %s", line)
	}
}

func TestCanonicalRequestIDHeader(t *testing.T) {
	if got := textproto.CanonicalMIMEHeaderKey(RequestIDHeader); got != canonicalRequestIDHeader {
		t.Fatalf("canonical form of %s is %s, not %s", RequestIDHeader, got, canonicalRequestIDHeader)
	}
}

func TestGeneratedRequestIDsAreUnique(t *testing.T) {
	a, b := newRequestIDs(), newRequestIDs()
	seen := map[string]bool{}
	for range 5000 {
		for _, id := range []string{a.next(), b.next()} {
			if len(id) != 32 || SanitizeRequestID(id) != id || seen[id] {
				t.Fatalf("id %q: length %d, duplicate %v", id, len(id), seen[id])
			}
			seen[id] = true
		}
	}
	// Consecutive ids of one engine differ beyond the last digits: they do
	// not read as a request count.
	x, y := a.next(), a.next()
	if x[:16] != y[:16] || x[16:28] == y[16:28] {
		t.Errorf("consecutive ids %s %s", x, y)
	}
}
