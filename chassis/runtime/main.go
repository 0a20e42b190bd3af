package runtime

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"blogplatform/chassis/config"
)

// Service is what a service's startup package builds: it serves on a
// listener until its context ends, and can be closed when serving never
// started.
type Service interface {
	Run(ctx context.Context, ln net.Listener) error
	Close(ctx context.Context) error
}

// Main is a service's whole main function: configuration from the
// environment and the dotenv file named by ENV_FILE (default .env, optional),
// start-up, listening on the configured address and serving until SIGTERM
// or SIGINT. It returns the process exit code; failures go to stderr, an
// invalid configuration as one line per variable.
func Main[C any](name string, load func(*config.Source) (C, error),
	start func(ctx context.Context, cfg C) (svc Service, addr string, err error)) int {
	return mainWith(os.Stderr, os.Getenv("ENV_FILE"), name, load, start)
}

func mainWith[C any](stderr io.Writer, envFile, name string, load func(*config.Source) (C, error),
	start func(ctx context.Context, cfg C) (Service, string, error)) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, format+"\n", args...)
		return 1
	}
	if envFile == "" {
		envFile = ".env"
	}
	src, err := config.Load(envFile)
	if err != nil {
		return fail("%s: configuration file %s: %v", name, envFile, err)
	}
	cfg, err := load(src)
	if err != nil {
		return fail("%v", err) // one "invalid configuration: VAR=…" line per variable
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, addr, err := start(ctx, cfg)
	if err != nil {
		return fail("%s: start: %v", name, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = svc.Close(context.Background())
		return fail("%s: listen on %s: %v", name, addr, err)
	}
	if err := svc.Run(ctx, ln); err != nil {
		return fail("%s: %v", name, err)
	}
	return 0
}
