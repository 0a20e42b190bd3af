package gateway

import (
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"time"
)

// Client-side limits of the gateway's listener. Kong (nginx) has the same
// kind: client_header_timeout and client_body_timeout (60 s each by default,
// shorter here: the platform's requests are small), and a bounded header
// size. A slow client (slowloris headers, a trickled body) holds a
// connection for at most these.
const (
	// DefaultReadHeaderTimeout bounds reading the request line and headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultBodyReadTimeout bounds reading a request body, from when the
	// gateway starts reading it (see Options.BodyReadTimeout).
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection with no request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers (nginx's
	// large_client_header_buffers is 4 x 8 KiB; a JWT is a few hundred bytes).
	DefaultMaxHeaderBytes = 64 << 10
)

// messageRequestTimeout is Kong's text for a 408 (client_body_timeout).
const messageRequestTimeout = "Request timeout"

// NewServer returns the http.Server the gateway should be served with: the
// header deadline, idle timeout and header size limit above. It sets no
// ReadTimeout on purpose: net/http keeps that deadline on the connection
// while the handler runs, and its background read then cancels the request
// when it passes, so a whole-request deadline would also cut slow upstream
// answers and upgraded connections. The body deadline is the handler's
// (Options.BodyReadTimeout), set only while a body is read. errorLog may be
// nil (the standard logger).
func NewServer(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// bodyDeadline bounds reading one request's body: the connection's read
// deadline is set before the body is read and cleared once it has been read
// to its end, so the server's background read, which watches for the client
// going away while the upstream answers, never hits it. A body that is not
// read to its end keeps the deadline.
type bodyDeadline struct {
	rc    *http.ResponseController
	once  sync.Once
	armed bool
}

// armBodyDeadline sets the deadline for r's body, when it has one.
func armBodyDeadline(w http.ResponseWriter, r *http.Request, timeout time.Duration) *bodyDeadline {
	d := &bodyDeadline{rc: http.NewResponseController(w)}
	if timeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return d
	}
	d.armed = d.rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	return d
}

// clear lifts the deadline (once).
func (d *bodyDeadline) clear() {
	if !d.armed {
		return
	}
	d.once.Do(func() { _ = d.rc.SetReadDeadline(time.Time{}) })
}

// watch wraps a streamed body so the deadline is lifted when it has been
// read to the end.
func (d *bodyDeadline) watch(body io.ReadCloser) io.ReadCloser {
	if !d.armed {
		return body
	}
	return &deadlineBody{ReadCloser: body, d: d}
}

type deadlineBody struct {
	io.ReadCloser
	d *bodyDeadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.d.clear()
	}
	return n, err
}

// isDeadline reports a read that stopped at the body deadline.
func isDeadline(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err)
}
