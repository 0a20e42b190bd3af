package platform

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"blogplatform/tools/internal/gateway"
)

// logSink writes every process's lines, prefixed with its name, to one
// writer, and keeps the last lines of each for error reports.
//
// A replica at LOG_LEVEL=info writes a line per request, so this runs at the
// request rate: lines are copied as bytes (no string per line, no
// formatting) into one buffered writer, flushed flushDelay after the first
// line it holds (or when full). Under load one write carries many lines
// instead of one write per line; a lone line waits flushDelay.
type logSink struct {
	mu sync.Mutex
	w  *bufio.Writer // nil: lines are only kept for tails
	// flushing is set while a flush is scheduled.
	flushing bool
	width    int // name column width
	tails    map[string]*tail
	// showProbes keeps the request log lines of successful health probes,
	// which otherwise flood the stream (every replica, every second).
	showProbes bool
	// format rewrites JSON lines for a person (LogHuman*); tails keep the
	// lines as written.
	format  LogFormat
	scratch []byte
}

const (
	// tailBytes is how much of each process's latest output is kept for
	// error reports (a few hundred lines).
	tailBytes = 64 << 10
	// pipeBuffer is the read buffer of each pipe; a longer line is put
	// together in a scratch buffer.
	pipeBuffer = 64 << 10
	// flushDelay is the longest a line waits in the buffer.
	flushDelay = 10 * time.Millisecond
	// readPause follows a read that found little in a pipe, so the next
	// read takes a batch of lines instead of waking for each one. A pipe
	// holds 64 KiB: a process would have to log over 10 MB/s to wait on it.
	readPause = 5 * time.Millisecond
	// smallRead is "little": less than that many bytes.
	smallRead = 16 << 10
)

func newLogSink(w io.Writer, width int, showProbes bool) *logSink {
	s := &logSink{width: width, tails: map[string]*tail{}, showProbes: showProbes}
	if w != nil && w != io.Discard {
		s.w = bufio.NewWriterSize(w, 64<<10)
	}
	return s
}

var (
	probeMarker = []byte(`"requestId":"` + gateway.HealthProbeRequestIDPrefix)
	status200   = []byte(`"status":200`)
)

// isProbeSuccess recognises a service's JSON request log line for a health
// probe of the gateway or the platform that answered 200.
func isProbeSuccess(line []byte) bool {
	return bytes.Contains(line, probeMarker) && bytes.Contains(line, status200)
}

// copyLines re-prints rd's lines until it ends.
func (s *logSink) copyLines(name string, rd io.Reader) {
	prefix := []byte(fmt.Sprintf("%-*s | ", s.width, name))
	br := bufio.NewReaderSize(pacedReader{rd}, pipeBuffer)
	var long []byte // a line longer than the read buffer, put together
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			long = append(long, chunk...)
			line = long
		}
		if len(line) > 0 {
			s.line(name, prefix, trimEOL(line))
		}
		long = long[:0:0]
		if err != nil {
			s.flush()
			return
		}
	}
}

// pacedReader pauses after a small read (see readPause).
type pacedReader struct{ r io.Reader }

func (p pacedReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == nil && n < smallRead {
		time.Sleep(readPause)
	}
	return n, err
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// line writes one line and makes sure a flush follows within flushDelay.
func (s *logSink) line(name string, prefix, text []byte) {
	if !s.showProbes && isProbeSuccess(text) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		_, _ = s.w.Write(prefix)
		if human, ok := s.humanize(text); ok {
			_, _ = s.w.Write(human)
		} else {
			_, _ = s.w.Write(text)
		}
		_ = s.w.WriteByte('\n')
		if !s.flushing {
			s.flushing = true
			time.AfterFunc(flushDelay, s.flush)
		}
	}
	t := s.tails[name]
	if t == nil {
		t = &tail{}
		s.tails[name] = t
	}
	t.add(text)
}

// humanize rewrites a JSON line when the sink prints for a person; the
// result lives in s.scratch until the next call (s.mu held).
func (s *logSink) humanize(text []byte) ([]byte, bool) {
	if s.format == LogJSON {
		return nil, false
	}
	out, ok := humanize(s.scratch[:0], text, s.format == LogHumanColor)
	s.scratch = out[:0]
	return out, ok
}

func (s *logSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushing = false
	if s.w != nil {
		_ = s.w.Flush()
	}
}

// note records a line of the platform's own about a process.
func (s *logSink) note(name, text string) {
	s.line(name, []byte(fmt.Sprintf("%-*s | ", s.width, name)), []byte("[devstack] "+text))
	s.flush()
}

// tail returns up to n of the latest lines of a process.
func (s *logSink) tail(name string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tails[name]
	if t == nil {
		return ""
	}
	return t.last(n)
}

// tail keeps the latest output of a process, newline-terminated lines, at
// most about tailBytes of them: the buffer grows to twice that, then drops
// its older half at a line boundary, so a line costs a copy, not an
// allocation.
type tail struct{ b []byte }

func (t *tail) add(line []byte) {
	if len(line) > tailBytes {
		line = line[len(line)-tailBytes:]
	}
	if len(t.b)+len(line)+1 > 2*tailBytes {
		keep := t.b[len(t.b)-tailBytes:]
		if i := bytes.IndexByte(keep, '\n'); i >= 0 {
			keep = keep[i+1:]
		}
		t.b = append(t.b[:0], keep...)
	}
	t.b = append(t.b, line...)
	t.b = append(t.b, '\n')
}

func (t *tail) last(n int) string {
	b := bytes.TrimSuffix(t.b, []byte("\n"))
	start := len(b)
	for range n {
		start = bytes.LastIndexByte(b[:start], '\n')
		if start < 0 {
			break
		}
	}
	return string(b[start+1:])
}
