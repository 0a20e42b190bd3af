package main

import (
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartMain is `bench chart [-clients N] [-o dir] results.json`: it draws the
// README's charts from a -json file, one SVG per measure (rps.svg: requests
// per second, p99.svg: 99th percentile latency), a bar per case and target
// with the min–max over the rounds as whiskers. The same file always gives
// the same charts, so the README's figures are one command away.
func chartMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench chart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./.tools/bench chart [-clients N] [-o dir] results.json")
		fs.PrintDefaults()
	}
	clients := fs.Int("clients", 0, "client count to draw (default: the first the run measured)")
	out := fs.String("o", ".", "folder the SVG files are written to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	r, err := readReport(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "bench chart:", err)
		return 1
	}
	files, err := drawCharts(r, *clients, *out)
	if err != nil {
		fmt.Fprintln(stderr, "bench chart:", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "bench chart: wrote", f)
	}
	return 0
}

// chartTargets orders the bars of a case and colours them.
var chartTargets = []struct {
	name  string
	color color.RGBA
}{
	{"gateway", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
	{"direct", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
	{"floor", color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}},
	{"nats", color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}},
}

func targetRank(target string) int {
	for i, t := range chartTargets {
		if t.name == target {
			return i
		}
	}
	return len(chartTargets)
}

// chartRows are the summaries drawn: one client count, grouped by case.
func chartRows(r *report, clients int) ([]caseSummary, int, error) {
	if clients == 0 {
		if len(r.Clients) == 0 {
			return nil, 0, fmt.Errorf("the run names no client count; pass -clients")
		}
		clients = r.Clients[0]
	}
	var rows []caseSummary
	for _, s := range r.Summary {
		if s.Clients == clients && s.RPS.N > 0 {
			rows = append(rows, s)
		}
	}
	if len(rows) == 0 {
		return nil, 0, fmt.Errorf("no case measured with %d clients", clients)
	}
	slices.SortStableFunc(rows, func(a, b caseSummary) int {
		if c := strings.Compare(caseLabel(a.Case), caseLabel(b.Case)); c != 0 {
			return c
		}
		return targetRank(a.Target) - targetRank(b.Target)
	})
	return rows, clients, nil
}

// caseLabel shortens a case name for an axis (query strings go).
func caseLabel(name string) string {
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	return name
}

func drawCharts(r *report, clients int, dir string) ([]string, error) {
	rows, clients, err := chartRows(r, clients)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	measures := []struct {
		file, title, axis string
		value             func(caseSummary) spread
		// logScale draws points on a logarithmic axis instead of bars:
		// one slow round's p99 can be a hundred times the median, which
		// on a linear axis flattens every other case.
		logScale bool
	}{
		{"rps.svg", "Requests per second", "requests per second (median of the rounds, whiskers min–max)",
			func(s caseSummary) spread { return s.RPS }, false},
		{"p99.svg", "p99 latency", "99th percentile latency, ms, log scale (median of the rounds, whiskers min–max)",
			func(s caseSummary) spread { return s.P99ms }, true},
	}
	var written []string
	for _, m := range measures {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s, %d clients (commit %s, %d cores)", m.title, clients, orUnknown(r.Commit), r.Cores)
		p.X.Label.Text = m.axis
		p.X.Min = 0
		labels := make([]string, len(rows))
		for i, s := range rows {
			labels[i] = caseLabel(s.Case) + " · " + s.Target
		}
		for _, t := range chartTargets {
			values := make(plotter.Values, len(rows))
			var whiskers whiskerPoints
			for i, s := range rows {
				if s.Target != t.name {
					continue
				}
				v := m.value(s)
				if m.logScale && (v.N == 0 || v.Median <= 0 || v.Min <= 0) {
					continue // a log axis has no place for zero (a case without latencies)
				}
				values[i] = v.Median
				whiskers = append(whiskers, whisker{y: float64(i), median: v.Median, min: v.Min, max: v.Max})
			}
			if len(whiskers) == 0 {
				continue
			}
			errs, err := plotter.NewXErrorBars(whiskers)
			if err != nil {
				return written, err
			}
			if m.logScale {
				points, err := plotter.NewScatter(whiskers)
				if err != nil {
					return written, err
				}
				points.GlyphStyle.Color = t.color
				points.GlyphStyle.Shape = draw.CircleGlyph{}
				points.GlyphStyle.Radius = vg.Points(4)
				p.Add(errs, points)
				p.Legend.Add(t.name, points)
				continue
			}
			bars, err := plotter.NewBarChart(values, vg.Points(12))
			if err != nil {
				return written, err
			}
			bars.Horizontal = true
			bars.Color = t.color
			bars.LineStyle.Width = 0
			p.Add(bars, errs)
			p.Legend.Add(t.name, bars)
		}
		if m.logScale {
			lo, hi := logRange(rows, m.value)
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
			p.X.Min, p.X.Max = lo, hi
		}
		p.NominalY(labels...)
		// Bottom right: the shortest bars (gateway cases) leave that corner free.
		p.Legend.Top = false
		p.Add(plotter.NewGrid())
		file := filepath.Join(dir, m.file)
		height := vg.Length(len(rows))*0.28*vg.Inch + 1.4*vg.Inch
		if err := p.Save(10*vg.Inch, height, file); err != nil {
			return written, err
		}
		written = append(written, file)
	}
	return written, nil
}

// logRange is a log axis's span: a little beyond the smallest minimum and
// the largest maximum (all positive; a zero is lifted to a microsecond).
func logRange(rows []caseSummary, value func(caseSummary) spread) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, r := range rows {
		v := value(r)
		lo = min(lo, max(v.Min, 1e-3))
		hi = max(hi, v.Max, v.Median)
	}
	return lo / 1.5, hi * 1.5
}

// whisker is one bar's min–max; whiskerPoints is what plotter.XErrorBars
// reads (points and their low/high distances).
type whisker struct{ y, median, min, max float64 }

type whiskerPoints []whisker

func (w whiskerPoints) Len() int                    { return len(w) }
func (w whiskerPoints) XY(i int) (float64, float64) { return w[i].median, w[i].y }
func (w whiskerPoints) XError(i int) (float64, float64) {
	return w[i].median - w[i].min, w[i].max - w[i].median
}
