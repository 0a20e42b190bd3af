package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServerOptions are the http.Server timeouts; zero values get safe defaults.
type ServerOptions struct {
	Addr              string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// NewServer wraps handler in an http.Server with explicit timeouts (a slow
// client can hold neither a goroutine nor a connection forever).
func NewServer(handler http.Handler, o ServerOptions, logger *slog.Logger) *http.Server {
	def := func(d, fallback time.Duration) time.Duration {
		if d <= 0 {
			return fallback
		}
		return d
	}
	return &http.Server{
		Addr:              o.Addr,
		Handler:           handler,
		ReadHeaderTimeout: def(o.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       def(o.ReadTimeout, 15*time.Second),
		WriteTimeout:      def(o.WriteTimeout, 30*time.Second),
		IdleTimeout:       def(o.IdleTimeout, 120*time.Second),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Serve runs srv on ln until ctx is cancelled, then shuts down gracefully:
// new connections are refused and in-flight requests get up to grace to finish.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return err
	}
	return nil
}
