// Command auth_service runs one replica of the auth service. Configuration
// comes from the environment and the dotenv file named by ENV_FILE (default
// .env, optional); an invalid value stops it with one line per variable.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"blogplatform/auth_service/config"
	"blogplatform/auth_service/startup"
	chassisconfig "blogplatform/chassis/config"
	"blogplatform/chassis/runtime"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	envFile := os.Getenv("ENV_FILE")
	if envFile == "" {
		envFile = ".env"
	}
	src, err := chassisconfig.Load(envFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", envFile, err)
	}
	cfg, err := config.Load(src)
	if err != nil {
		return err // one "invalid configuration: VAR=…" line per variable
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	app, err := startup.New(ctx, cfg, runtime.Options{})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	ln, err := net.Listen("tcp", app.Runtime.Addr())
	if err != nil {
		_ = app.Close(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	return app.Run(ctx, ln)
}
