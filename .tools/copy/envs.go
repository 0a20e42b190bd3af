// Command envs creates every .env and .test.env from its .env.example /
// .test.env.example (the root one included), never overwriting an existing
// file. Run it from the repo root: go run .tools/copy/envs.go
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

var pairs = [][2]string{
	{".env.example", ".env"},
	{"auth_service/.env.example", "auth_service/.env"},
	{"auth_service/.test.env.example", "auth_service/.test.env"},
	{"blog_service/.env.example", "blog_service/.env"},
	{"blog_service/.test.env.example", "blog_service/.test.env"},
}

func main() {
	failed := false
	for _, p := range pairs {
		created, err := copyIfMissing(p[0], p[1])
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "envs: %s -> %s: %v\n", p[0], p[1], err)
			failed = true
		case created:
			fmt.Printf("envs: created %s\n", p[1])
		default:
			fmt.Printf("envs: kept existing %s\n", p[1])
		}
	}
	if failed {
		os.Exit(1)
	}
}

func copyIfMissing(src, dst string) (bool, error) {
	in, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer in.Close()
	// O_EXCL makes "never overwrite" hold even against a concurrent run.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return false, err
	}
	return true, out.Close()
}
