// Command blog_service serves the blog API. Configuration comes from the
// environment and the dotenv file named by ENV_FILE (default ".env"); an
// invalid value stops it with one line naming the variable.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"blogplatform/blog_service/config"
	"blogplatform/blog_service/startup"
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
	path := os.Getenv("ENV_FILE")
	if path == "" {
		path = ".env"
	}
	src, err := chassisconfig.Load(path)
	if err != nil {
		return fmt.Errorf("configuration file %s: %w", path, err)
	}
	cfg, err := config.Load(src)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := startup.New(ctx, cfg, runtime.Options{})
	if err != nil {
		return fmt.Errorf("blog_service: %w", err)
	}
	ln, err := net.Listen("tcp", app.Runtime.Addr())
	if err != nil {
		_ = app.Close(context.Background())
		return fmt.Errorf("blog_service: listen: %w", err)
	}
	return app.Run(ctx, ln)
}
