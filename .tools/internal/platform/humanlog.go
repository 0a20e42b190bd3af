package platform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// LogFormat says how the platform re-prints the replicas' log lines.
type LogFormat int

const (
	// LogJSON passes each line through as the service wrote it (one JSON
	// object per line): what log shippers and `jq` read.
	LogJSON LogFormat = iota
	// LogHuman rewrites each JSON line for a person at a terminal: time,
	// level, then for a request line method, route, status and latency, then
	// the remaining fields as key=value. Lines that are not JSON pass
	// through unchanged.
	LogHuman
	// LogHumanColor is LogHuman with the level and failing statuses coloured
	// (ANSI), for a terminal that shows colours.
	LogHumanColor
)

// ParseLogFormat reads a -log-format value: json, human or color.
func ParseLogFormat(s string) (LogFormat, error) {
	switch s {
	case "json":
		return LogJSON, nil
	case "human", "text":
		return LogHuman, nil
	case "color", "colour":
		return LogHumanColor, nil
	}
	return LogJSON, fmt.Errorf("log format %q: want json, human or color", s)
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
	ansiCyan   = "\x1b[36m"
)

// humanize appends a readable form of one JSON log line to dst. ok is false
// when the line is not a JSON object; dst is then returned unchanged.
func humanize(dst, line []byte, color bool) (out []byte, ok bool) {
	if len(line) == 0 || line[0] != '{' {
		return dst, false
	}
	// Decode in order so the remaining fields keep the order the service
	// wrote them in.
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return dst, false
	}
	type field struct {
		key string
		val any
	}
	var fields []field
	byKey := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dst, false
		}
		key, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return dst, false
		}
		fields = append(fields, field{key, v})
		byKey[key] = v
	}

	// Time: the clock only (the date is today's).
	if s, _ := byKey["time"].(string); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			dst = t.Local().AppendFormat(dst, "15:04:05.000")
		} else {
			dst = append(dst, s...)
		}
		dst = append(dst, ' ')
	}
	level, _ := byKey["level"].(string)
	if level == "" {
		level = "INFO"
	}
	dst = appendColored(dst, fmt.Sprintf("%-5s", level), levelColor(level), color)
	dst = append(dst, ' ')

	method, _ := byKey["method"].(string)
	route, _ := byKey["route"].(string)
	if route == "" {
		route, _ = byKey["path"].(string)
	}
	status, isRequest := byKey["status"].(json.Number)
	// placed are the fields shown in fixed places on this line; every
	// other field follows as key=value.
	placed := map[string]bool{"time": true, "level": true, "msg": true, "service": true}
	if method != "" && route != "" && isRequest {
		placed["method"], placed["route"], placed["path"], placed["status"], placed["latencyMs"] = true, true, true, true, true
		// The remote address is always the gateway on the local platform.
		placed["remote"] = true
		dst = append(dst, method...)
		dst = append(dst, ' ')
		dst = append(dst, route...)
		dst = append(dst, ' ')
		dst = appendColored(dst, status.String(), statusColor(status.String()), color)
		if ms, ok := byKey["latencyMs"].(json.Number); ok {
			dst = append(dst, ' ')
			dst = append(dst, formatLatency(ms)...)
		}
		if msg, _ := byKey["msg"].(string); msg != "" && msg != "request" && msg != "http request" {
			dst = append(dst, ' ')
			dst = append(dst, msg...)
		}
	} else {
		msg, _ := byKey["msg"].(string)
		dst = append(dst, msg...)
	}
	for _, f := range fields {
		if placed[f.key] {
			continue
		}
		dst = append(dst, ' ')
		if color {
			dst = append(dst, ansiDim...)
		}
		dst = append(dst, f.key...)
		dst = append(dst, '=')
		if color {
			dst = append(dst, ansiReset...)
		}
		dst = appendValue(dst, f.val)
	}
	return dst, true
}

func levelColor(level string) string {
	switch level {
	case "ERROR":
		return ansiRed
	case "WARN":
		return ansiYellow
	case "DEBUG":
		return ansiDim
	}
	return ansiCyan
}

func statusColor(status string) string {
	switch {
	case len(status) == 3 && status[0] == '5':
		return ansiRed
	case len(status) == 3 && status[0] == '4':
		return ansiYellow
	}
	return ""
}

func appendColored(dst []byte, s, ansi string, color bool) []byte {
	if !color || ansi == "" {
		return append(dst, s...)
	}
	dst = append(dst, ansi...)
	dst = append(dst, s...)
	return append(dst, ansiReset...)
}

// formatLatency prints milliseconds as a person reads them: 0.42ms,
// 12.3ms, 1.52s.
func formatLatency(ms json.Number) string {
	f, err := ms.Float64()
	if err != nil {
		return ms.String() + "ms"
	}
	switch {
	case f >= 1000:
		return strconv.FormatFloat(f/1000, 'f', 2, 64) + "s"
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + "ms"
}

// appendValue writes a field's value: strings bare unless they hold spaces
// or quotes, everything else as JSON.
func appendValue(dst []byte, v any) []byte {
	if s, ok := v.(string); ok {
		if s != "" && !bytes.ContainsAny([]byte(s), " \t\"=") {
			return append(dst, s...)
		}
		return strconv.AppendQuote(dst, s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, fmt.Sprint(v)...)
	}
	return append(dst, b...)
}
