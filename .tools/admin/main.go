// Command admin is the operators' command line: API keys, users' roles and
// status, users' sessions, through the gateway's admin API.
//
//	go run ./.tools/admin apikeys list
//	go run ./.tools/admin apikeys create -comment "mobile app"
//	go run ./.tools/admin users roles grant ada@example.com AUTHOR
//	go run ./.tools/admin users disable ada@example.com
//	go run ./.tools/admin sessions end ada@example.com -all
//
// It signs in with an administrator's email and password (flags or
// ADMIN_EMAIL / ADMIN_PASSWORD; the local platform's seeded admin by
// default). Run it with -h for every command and flag.
package main

import (
	"context"
	"os"
	"os/signal"

	"blogplatform/tools/internal/admincli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := admincli.Run(ctx, os.Args[1:], admincli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
