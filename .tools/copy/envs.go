// Command envs creates every .env and .test.env from its .env.example /
// .test.env.example (the root one included), never overwriting an existing
// file. Run it from the repo root: go run .tools/copy/envs.go
package main

import (
	"fmt"
	"os"

	"blogplatform/tools/internal/envfiles"
)

func main() {
	failed := false
	for _, r := range envfiles.CopyMissing(".", envfiles.Pairs) {
		switch r.Outcome {
		case envfiles.Created:
			fmt.Printf("envs: created %s\n", r.Target)
		case envfiles.KeptExisting:
			fmt.Printf("envs: kept existing %s\n", r.Target)
		default:
			fmt.Fprintf(os.Stderr, "envs: %s -> %s: %v\n", r.Example, r.Target, r.Err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
