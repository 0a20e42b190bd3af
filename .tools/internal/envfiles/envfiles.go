// Package envfiles creates each .env / .test.env from its .example file,
// never overwriting an existing one. Shared by .tools/copy/envs.go and the
// local platform.
package envfiles

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Pair is one example file and the file made from it, relative to the repo
// root.
type Pair struct{ Example, Target string }

// Pairs are the repository's env files: the root one (docker compose) and
// each service's run and test configuration.
var Pairs = []Pair{
	{".env.example", ".env"},
	{"auth_service/.env.example", "auth_service/.env"},
	{"auth_service/.test.env.example", "auth_service/.test.env"},
	{"blog_service/.env.example", "blog_service/.env"},
	{"blog_service/.test.env.example", "blog_service/.test.env"},
}

// Outcome of one pair.
type Outcome int

const (
	Created Outcome = iota
	KeptExisting
	Failed // see Result.Err (e.g. the example file is missing)
)

// Result reports what happened to one pair.
type Result struct {
	Pair
	Outcome Outcome
	Err     error
}

// CopyMissing copies every pair under root whose target is missing. It goes
// through all pairs even after a failure and reports each.
func CopyMissing(root string, pairs []Pair) []Result {
	results := make([]Result, 0, len(pairs))
	for _, p := range pairs {
		outcome, err := copyIfMissing(filepath.Join(root, p.Example), filepath.Join(root, p.Target))
		results = append(results, Result{Pair: p, Outcome: outcome, Err: err})
	}
	return results
}

func copyIfMissing(src, dst string) (Outcome, error) {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(dst); statErr == nil {
			return KeptExisting, nil
		}
		return Failed, err
	}
	if err != nil {
		return Failed, err
	}
	defer in.Close()
	// O_EXCL makes "never overwrite" hold even against a concurrent run.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return KeptExisting, nil
	}
	if err != nil {
		return Failed, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return Failed, err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return Failed, err
	}
	return Created, nil
}
