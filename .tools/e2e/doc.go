// Package e2e holds the platform's end-to-end tests: they start the local
// platform (package internal/platform) in-process on free ports with an
// in-memory store, build and run the real auth_service and blog_service
// binaries as separate processes, and drive everything only through the
// gateway with net/http, as a client would.
//
//	cd .tools && go test ./e2e/
package e2e
