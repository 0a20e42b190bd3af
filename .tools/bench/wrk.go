package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wrkResult is what one wrk --latency run reports.
type wrkResult struct {
	Requests     int64
	RPS          float64
	P50, P99     time.Duration
	Non2xx3xx    int64
	SocketErrors int64 // connect + read + write + timeout
}

func (w wrkResult) Errors() int64 { return w.Non2xx3xx + w.SocketErrors }

// parseWrk reads wrk's --latency report. Requests/sec, the request count and
// the 50 % and 99 % lines are required; the error lines appear only when
// there were errors.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveReqs, have50, have99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: bad %q: %w", line, err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: bad %q: %w", line, err)
			}
			r.Requests, haveReqs = v, true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			if f[0] == "50%" {
				r.P50, have50 = d, true
			} else {
				r.P99, have99 = d, true
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: bad %q: %w", line, err)
			}
			r.Non2xx3xx = v
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			rest := strings.TrimPrefix(line, "Socket errors:")
			for part := range strings.SplitSeq(rest, ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("wrk: bad %q", line)
				}
				v, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: bad %q: %w", line, err)
				}
				r.SocketErrors += v
			}
		}
	}
	if !haveRPS || !haveReqs || !have50 || !have99 {
		return r, fmt.Errorf("wrk: report lacks Requests/sec, the request count or the 50%%/99%% latency lines (was --latency given?):\n%s", out)
	}
	return r, nil
}

// parseWrkDuration reads wrk's time format: a number with us, ms, s, m or h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				break
			}
			return time.Duration(math.Round(v * float64(u.unit))), nil
		}
	}
	return 0, fmt.Errorf("wrk: bad duration %q", s)
}

// luaQuote writes s as a Lua string literal.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			// Decimal escape, three digits so a following digit cannot join it.
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// luaScript is a wrk script that sends reqs in turn. The requests are
// formatted once in init (after wrk has set the Host header), so the per-
// request Lua work is an index and a table lookup. Each request carries all
// its headers: wrk.format ignores -H headers when given its own.
func luaScript(reqs []httpRequest) string {
	var b strings.Builder
	b.WriteString("local reqs = {\n")
	for _, r := range reqs {
		fmt.Fprintf(&b, "  {method = %s, path = %s, headers = {", luaQuote(r.method), luaQuote(r.path))
		names := make([]string, 0, len(r.header))
		for k := range r.header {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			fmt.Fprintf(&b, "[%s] = %s, ", luaQuote(k), luaQuote(strings.Join(r.header[k], ", ")))
		}
		b.WriteString("}")
		if r.body != nil {
			fmt.Fprintf(&b, ", body = %s", luaQuote(string(r.body)))
		}
		b.WriteString("},\n")
	}
	b.WriteString(`}
local formatted = {}
local n = 0
local threads = 0
function setup(thread)
  thread:set("slot", threads)
  threads = threads + 1
end
function init(args)
  for k, r in ipairs(reqs) do
    formatted[k] = wrk.format(r.method, r.path, r.headers, r.body)
  end
  -- Each thread of each wrk process starts at its own place in the
  -- rotation (args: process index, processes, threads per process), so
  -- concurrent writers do not all begin on the same blog.
  local part, parts, per = tonumber(args[1]) or 0, tonumber(args[2]) or 1, tonumber(args[3]) or 1
  n = math.floor((part * per + (slot or 0)) * #formatted / (parts * per))
end
function request()
  n = n + 1
  return formatted[(n - 1) % #formatted + 1]
end
`)
	return b.String()
}

// wrkArgs builds wrk's command line for clients connections to base for d.
// A single plain GET passes its headers with -H; anything else (a rotation
// of paths, another method, a body) goes through script, told it is process
// part of parts (see luaScript's init).
func wrkArgs(base string, reqs []httpRequest, clients int, d time.Duration, script string, part, parts int) []string {
	threads := min(clients, 2)
	secs := max(1, int(math.Ceil(d.Seconds())))
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(clients), "-d", strconv.Itoa(secs) + "s",
		"--timeout", "30s", "--latency"}
	if script != "" {
		return append(args, "-s", script, base+reqs[0].path, "--", strconv.Itoa(part), strconv.Itoa(parts), strconv.Itoa(threads))
	}
	for k, vs := range reqs[0].header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	return append(args, base+reqs[0].path)
}

func needsScript(reqs []httpRequest) bool {
	return len(reqs) != 1 || reqs[0].method != http.MethodGet || reqs[0].body != nil
}

// runWrk drives reqs against every base at once (one wrk per base, the
// clients split between them) and merges the reports: requests and req/s
// add up, p50 is the request-weighted mean of the processes' p50s and p99
// their maximum (exact with one base, the -replicas 1 default).
func runWrk(ctx context.Context, bases []string, reqs []httpRequest, clients int, d time.Duration) (wrkResult, error) {
	script := ""
	if needsScript(reqs) {
		f, err := os.CreateTemp("", "bench-wrk-*.lua")
		if err != nil {
			return wrkResult{}, err
		}
		defer os.Remove(f.Name())
		if _, err := f.WriteString(luaScript(reqs)); err != nil {
			f.Close()
			return wrkResult{}, err
		}
		if err := f.Close(); err != nil {
			return wrkResult{}, err
		}
		script = f.Name()
	}
	results := make([]wrkResult, len(bases))
	errs := make([]error, len(bases))
	var wg sync.WaitGroup
	for i, base := range bases {
		n := clients / len(bases)
		if i < clients%len(bases) {
			n++
		}
		if n == 0 {
			continue
		}
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "wrk", wrkArgs(base, reqs, n, d, script, i, len(bases))...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("wrk %s: %w: %s", base, err, out)
				return
			}
			results[i], errs[i] = parseWrk(string(out))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return wrkResult{}, err
		}
	}
	return mergeWrk(results), nil
}

// mergeWrk combines concurrent wrk runs against several bases.
func mergeWrk(rs []wrkResult) wrkResult {
	var m wrkResult
	var weighted float64
	for _, r := range rs {
		m.Requests += r.Requests
		m.RPS += r.RPS
		m.Non2xx3xx += r.Non2xx3xx
		m.SocketErrors += r.SocketErrors
		m.P99 = max(m.P99, r.P99)
		weighted += float64(r.Requests) * float64(r.P50)
	}
	if m.Requests > 0 {
		m.P50 = time.Duration(weighted / float64(m.Requests))
	}
	return m
}

// wrkVersion is wrk's first -v line, "" when wrk is not on PATH.
func wrkVersion() string {
	path, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	out, _ := exec.Command(path, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return path
	}
	return line
}
