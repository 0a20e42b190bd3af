package httpx

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"sync/atomic"

	"github.com/gin-gonic/gin"
)

type requestInfoKey struct{}

// requestInfo is what the engine keeps for one request. It is the request's
// context (the parent with the trace context, plus itself as a value), so
// one allocation carries the ids, the logger and the context.
type requestInfo struct {
	context.Context
	id, traceID string
	base        *slog.Logger
	unavailable func(error) bool
	// log is base with requestId and traceId, built when a handler first
	// asks for it: most requests never log anything of their own.
	log atomic.Pointer[slog.Logger]
	// headerValues back the X-Request-ID and X-Content-Type-Options
	// response headers, so setting them allocates nothing more.
	headerValues [2]string
}

func (ri *requestInfo) Value(key any) any {
	if key == (requestInfoKey{}) {
		return ri
	}
	return ri.Context.Value(key)
}

func (ri *requestInfo) logger() *slog.Logger {
	if l := ri.log.Load(); l != nil {
		return l
	}
	args := []any{"requestId", ri.id}
	if ri.traceID != "" {
		args = append(args, "traceId", ri.traceID)
	}
	ri.log.CompareAndSwap(nil, ri.base.With(args...))
	return ri.log.Load()
}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// RequestID returns the request id carried by ctx, if any.
func RequestID(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// logger is the request logger: every line it writes carries requestId
// (and traceId when the request has a trace).
func logger(c *gin.Context) *slog.Logger {
	if c.Request != nil {
		if ri := infoFrom(c.Request.Context()); ri != nil {
			return ri.logger()
		}
	}
	return slog.Default()
}

// Logger returns the request-scoped logger (with the request id).
func Logger(c *gin.Context) *slog.Logger { return logger(c) }

// unavailable is the engine's Options.Unavailable for c's request.
func unavailable(c *gin.Context) func(error) bool {
	if ri := infoFrom(c.Request.Context()); ri != nil {
		return ri.unavailable
	}
	return nil
}

// requestIDs generates request ids: a random per-engine prefix and a
// counter, 32 hex characters like NewRequestID's. They are unique (the
// prefix tells engines apart, the counter requests) but not secret: nothing
// may rely on a request id being unguessable, since clients choose their
// own. The counter is scrambled by a fixed bijection, so ids do not read as
// a request count.
type requestIDs struct {
	prefix [16]byte // hex
	offset uint64
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var seed [16]byte
	_, _ = crand.Read(seed[:])
	g := &requestIDs{offset: binary.LittleEndian.Uint64(seed[8:])}
	hex.Encode(g.prefix[:], seed[:8])
	return g
}

func (g *requestIDs) next() string {
	x := g.n.Add(1) + g.offset
	// splitmix64's finaliser: a bijection on 64 bits, so distinct counter
	// values stay distinct ids.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	var b [32]byte
	copy(b[:16], g.prefix[:])
	const digits = "0123456789abcdef"
	for i := 31; i >= 16; i-- {
		b[i] = digits[x&15]
		x >>= 4
	}
	return string(b[:])
}
