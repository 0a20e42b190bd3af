package embedded

import (
	"context"
	"log/slog"
)

// discardLogger is used when the caller gives no logger: embedded servers must
// not write to the test output or the developer's terminal uninvited.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// minLevelHandler drops records below min before they reach the wrapped
// handler. FerretDB logs every connection start/stop at Info, which drowns the
// services' own logs, so the store defaults its logger to Warn this way
// without asking the caller to build a special handler.
type minLevelHandler struct {
	min slog.Leveler
	h   slog.Handler
}

func (m minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min.Level() && m.h.Enabled(ctx, l)
}

func (m minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return m.h.Handle(ctx, r)
}

func (m minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{min: m.min, h: m.h.WithAttrs(attrs)}
}

func (m minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: m.min, h: m.h.WithGroup(name)}
}
