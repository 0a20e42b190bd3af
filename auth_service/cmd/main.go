// Command auth_service runs one replica of the auth service. Configuration
// comes from the environment and the dotenv file named by ENV_FILE (default
// .env, optional); an invalid value stops it with one line per variable.
package main

import (
	"context"
	"os"

	"blogplatform/auth_service/config"
	"blogplatform/auth_service/startup"
	"blogplatform/chassis/runtime"
)

func main() {
	os.Exit(runtime.Main("auth_service", config.Load, func(ctx context.Context, cfg config.Config) (runtime.Service, string, error) {
		app, err := startup.New(ctx, cfg, runtime.Options{})
		if err != nil {
			return nil, "", err
		}
		return app, app.Runtime.Addr(), nil
	}))
}
