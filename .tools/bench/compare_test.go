package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixtureReport(commit string, idRPS, verifyRPS spread) *report {
	return &report{
		Commit: commit, Rounds: 3, Cores: 2, Clients: []int{16, 64},
		Summary: []caseSummary{
			{Target: "gateway", Case: "GET /blog/id/:id (cached)", Clients: 16, RPS: idRPS, P99ms: spread{Median: 8, Min: 7, Max: 9, N: 3}},
			{Target: "direct", Case: "GET /blog/id/:id (cached)", Clients: 16, RPS: spread{Median: 20000, Min: 19000, Max: 21000, N: 3}, P99ms: spread{Median: 4, Min: 3, Max: 5, N: 3}},
			{Target: "gateway", Case: "GET /auth/verify/apikey", Clients: 16, RPS: verifyRPS, P99ms: spread{Median: 9, Min: 8, Max: 10, N: 3}},
			{Target: "floor", Case: "floor: gin.New() 49-byte JSON", Clients: 64, RPS: spread{Median: 30000, Min: 29000, Max: 31000, N: 3}},
		},
	}
}

func writeReport(t *testing.T, r *report) string {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), r.Commit+".json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDelta(t *testing.T) {
	tests := []struct {
		name     string
		old, cur spread
		want     string
	}{
		{"clear gain", spread{100, 90, 110, 3}, spread{150, 140, 160, 3}, "+50.0%"},
		{"clear loss", spread{100, 95, 105, 3}, spread{80, 75, 85, 3}, "-20.0%"},
		{"ranges overlap", spread{100, 90, 110, 3}, spread{105, 100, 120, 3}, "~"},
		{"nothing to compare with", spread{}, spread{10, 9, 11, 3}, "n/a"},
		{"nothing measured now", spread{100, 90, 110, 3}, spread{}, "n/a"},
		{"one round has no spread", spread{100, 100, 100, 1}, spread{150, 150, 150, 1}, "~"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := delta(tc.old, tc.cur); got != tc.want {
				t.Errorf("delta = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompareCommand(t *testing.T) {
	old := writeReport(t, fixtureReport("aaa111", spread{6000, 5800, 6200, 3}, spread{8000, 7000, 9000, 3}))
	cur := writeReport(t, fixtureReport("bbb222", spread{9000, 8800, 9300, 3}, spread{8500, 8200, 8700, 3}))
	var out, errOut bytes.Buffer
	if code := compareMain([]string{old, cur}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	text := out.String()
	for _, want := range []string{
		"commit aaa111", "commit bbb222",
		"GET /blog/id/:id (cached)", "6000 (5800–6200)", "9000 (8800–9300)", "+50.0%",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The verify case's ranges overlap: no change is claimed for it.
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "verify/apikey") && !strings.Contains(line, " ~ ") {
			t.Errorf("verify row claims a change: %q", line)
		}
	}

	t.Run("usage errors", func(t *testing.T) {
		if code := compareMain([]string{old}, io.Discard, io.Discard); code != 2 {
			t.Errorf("one file: exit %d, want 2", code)
		}
		notReport := filepath.Join(t.TempDir(), "x.json")
		_ = os.WriteFile(notReport, []byte(`{"runs":[]}`), 0o644)
		var e bytes.Buffer
		if code := compareMain([]string{old, notReport}, io.Discard, &e); code != 1 || !strings.Contains(e.String(), "no summary") {
			t.Errorf("not a report: exit %d, %q", code, e.String())
		}
	})
}

func TestChartCommandDrawsEveryCase(t *testing.T) {
	path := writeReport(t, fixtureReport("ccc333", spread{6000, 5800, 6200, 3}, spread{8000, 7000, 9000, 3}))
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := chartMain([]string{"-o", dir, path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, file := range []string{"rps.svg", "p99.svg"} {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		texts := svgTexts(t, raw)
		for _, want := range []string{
			"GET /blog/id/:id (cached) · gateway", "GET /blog/id/:id (cached) · direct",
			"GET /auth/verify/apikey · gateway", "gateway", "direct", "16 clients (commit ccc333, 2 cores)",
		} {
			if !containsText(texts, want) {
				t.Errorf("%s: no text %q among %q", file, want, texts)
			}
		}
		// The floor was measured with 64 clients only: not in the 16-client chart.
		if containsText(texts, "floor") {
			t.Errorf("%s draws a case of another client count", file)
		}
	}
	if code := chartMain([]string{"-clients", "32", "-o", dir, path}, io.Discard, io.Discard); code != 1 {
		t.Errorf("a client count the run lacks: exit %d, want 1", code)
	}
}

// svgTexts returns the text nodes of an SVG document, failing the test when
// it is not well-formed XML.
func svgTexts(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var texts []string
	sawSVG := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed SVG: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "svg" {
				sawSVG = true
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if !sawSVG {
		t.Fatal("no <svg> element")
	}
	return texts
}

func containsText(texts []string, want string) bool {
	for _, s := range texts {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}
