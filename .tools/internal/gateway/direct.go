package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// The direct path sends a request that has no body (GET, HEAD, DELETE and
// the like: nearly all of the platform's traffic) over a kept-alive
// connection of the target's own pool, written and read on the handler's
// goroutine. http.Transport hands every request to two goroutines per
// connection (one writes, one reads) and wraps it in a cancellable context,
// a trace and a timer; under load those hand-offs and allocations cost more
// than the proxying itself. Here the phases' timeouts are the connection's
// own deadlines, and a client that goes away unblocks the attempt by moving
// them into the past.
//
// Requests with a body, and upgrades (WebSocket), keep http.Transport:
// there the request may still be written while the answer arrives, and an
// upgraded connection leaves the pool.

const (
	// directIdleTimeout closes a pooled connection unused that long (the
	// services keep idle connections longer).
	directIdleTimeout = 60 * time.Second
	// directBufferSize is each pooled connection's read and write buffer.
	directBufferSize = 4 << 10
)

// aLongTimeAgo is a deadline in the past: it fails pending and future I/O.
var aLongTimeAgo = time.Unix(1, 0)

// canGoDirect reports whether req may take the direct path: no body, no
// upgrade, and a method that may be sent again when a kept-alive connection
// turns out to have been closed by the target (http.Transport can tell
// that case apart for the others, as its reader watches idle connections).
func canGoDirect(req *http.Request) bool {
	return (req.Body == nil || req.Body == http.NoBody) && req.ContentLength <= 0 &&
		len(req.TransferEncoding) == 0 && len(req.Header["Upgrade"]) == 0 && !nonIdempotent(req.Method)
}

// upConn is a pooled upstream connection.
type upConn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
}

// connPool is a target's idle connections, most recently used last.
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

func (p *connPool) get(now time.Time) *upConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(c.idleFrom) < directIdleTimeout {
			return c
		}
		c.nc.Close()
	}
	return nil
}

func (p *connPool) put(c *upConn, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleConnsPerHost {
		c.nc.Close()
		return
	}
	c.idleFrom = now
	p.idle = append(p.idle, c)
}

// close closes the idle connections; with final set, later ones are closed
// as they come back.
func (p *connPool) close(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.nc.Close()
	}
	p.idle = nil
	p.closed = p.closed || final
}

// attemptDirect is attempt for a request without a body.
func (bt *balancingTransport) attemptDirect(req *http.Request, t *target, plan *proxyPlan) (*http.Response, *failure) {
	ctx := req.Context()
	c := t.conns.get(time.Now())
	sent := false // the request went out on a connection that then broke
	for {
		reused := c != nil
		if c == nil {
			nc, err := (&net.Dialer{Timeout: plan.connectTimeout, KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", t.addr)
			if err != nil {
				if isTimeout(err) && ctx.Err() == nil {
					return nil, &failure{err: errConnectTimeout, timeout: true, sent: sent}
				}
				return nil, &failure{err: err, sent: sent}
			}
			c = &upConn{nc: nc, br: bufio.NewReaderSize(nc, directBufferSize), bw: bufio.NewWriterSize(nc, directBufferSize)}
		}
		resp, f, stale := bt.exchange(ctx, c, req, t, plan)
		if stale && reused && ctx.Err() == nil {
			// The target had closed this kept-alive connection before the
			// request reached it (nothing was answered): as http.Transport
			// does, send it again on a new connection, which is no retry.
			c.nc.Close()
			c, sent = nil, true
			continue
		}
		return resp, f
	}
}

// exchange writes req on c and reads the answer's header. stale reports a
// connection that failed before any byte of an answer came back.
func (bt *balancingTransport) exchange(ctx context.Context, c *upConn, req *http.Request, t *target, plan *proxyPlan) (*http.Response, *failure, bool) {
	// A client that goes away ends the attempt: its connection's deadlines
	// move into the past, which fails the pending read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error, timeout, stale bool) (*http.Response, *failure, bool) {
		stop()
		c.nc.Close()
		return nil, &failure{err: err, timeout: timeout, sent: true}, stale
	}

	_ = c.nc.SetWriteDeadline(time.Now().Add(plan.writeTimeout))
	out := *req // the transport's own shallow copy, aimed at the target
	u := *req.URL
	u.Host = t.addr
	out.URL = &u
	err := out.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		if isDeadline(err) && ctx.Err() == nil {
			return fail(errWriteTimeout, true, false)
		}
		return fail(err, false, isBrokenConn(err))
	}

	_ = c.nc.SetReadDeadline(time.Now().Add(plan.readTimeout))
	if _, err := c.br.Peek(1); err != nil {
		if isDeadline(err) && ctx.Err() == nil {
			return fail(errReadTimeout, true, false)
		}
		return fail(err, false, isBrokenConn(err))
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			if isDeadline(err) && ctx.Err() == nil {
				return fail(errReadTimeout, true, false)
			}
			return fail(err, false, false)
		}
		// 1xx answers (100 Continue, 103 Early Hints) precede the real
		// one; 101 would be an upgrade, which never comes this way.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("upstream switched protocols on a request that asked for no upgrade"), false, false)
	}
	b := &directBody{c: c, inner: resp.Body, stop: stop, pool: &t.conns, readTimeout: plan.readTimeout, ctx: ctx,
		reuse: !resp.Close && !req.Close}
	if resp.Body == http.NoBody {
		// Nothing follows the header (HEAD, 204, 304, Content-Length: 0).
		b.release(true)
		return resp, nil, false
	}
	resp.Body = b
	return resp, nil, false
}

// isBrokenConn reports the errors of a connection the other end had closed.
func isBrokenConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// directBody is an answer's body read from a pooled connection: read_timeout
// bounds each read, as nginx's proxy_read_timeout does, and the connection
// goes back to the pool once the body was read to its end.
type directBody struct {
	c           *upConn
	inner       io.ReadCloser
	stop        func() bool
	pool        *connPool
	readTimeout time.Duration
	ctx         context.Context
	reuse       bool

	mu   sync.Mutex
	done bool
}

func (b *directBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, io.EOF
	}
	if b.c.br.Buffered() == 0 {
		// This read waits for the target (what is buffered came with the
		// header and needs no deadline of its own).
		_ = b.c.nc.SetReadDeadline(time.Now().Add(b.readTimeout))
	}
	n, err := b.inner.Read(p)
	switch {
	case err == io.EOF:
		b.releaseLocked(b.reuse)
	case err != nil:
		if isDeadline(err) && b.ctx.Err() == nil {
			err = errReadTimeout
		}
		b.releaseLocked(false)
	}
	return n, err
}

// Close before the end drops the connection: what is left of the body is
// not worth reading to keep it.
func (b *directBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releaseLocked(false)
	return nil
}

func (b *directBody) release(reuse bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releaseLocked(reuse)
}

func (b *directBody) releaseLocked(reuse bool) {
	if b.done {
		return
	}
	b.done = true
	// stop is false when the client-gone hook ran (or runs): the
	// connection's deadlines are spoiled, so it is not reused.
	if b.stop() && reuse {
		// The deadlines left on it are set afresh by its next exchange.
		b.pool.put(b.c, time.Now())
		return
	}
	b.c.nc.Close()
}
