// Command blog_service serves the blog API. Configuration comes from the
// environment and the dotenv file named by ENV_FILE (default ".env"); an
// invalid value stops it with one line naming the variable.
package main

import (
	"context"
	"os"

	"blogplatform/blog_service/config"
	"blogplatform/blog_service/startup"
	"blogplatform/chassis/runtime"
)

func main() {
	os.Exit(runtime.Main("blog_service", config.Load, func(ctx context.Context, cfg config.Config) (runtime.Service, string, error) {
		app, err := startup.New(ctx, cfg, runtime.Options{})
		if err != nil {
			return nil, "", err
		}
		return app, app.Runtime.Addr(), nil
	}))
}
