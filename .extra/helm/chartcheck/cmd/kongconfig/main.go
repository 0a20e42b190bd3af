// Command kongconfig regenerates the Helm chart's Kong declarative
// configuration (.extra/helm/blog-platform/files/kong.yml) from
// kong/kong-load-balanced.yml. Run it from anywhere inside the repository:
//
//	go run ./.extra/helm/chartcheck/cmd/kongconfig
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"blogplatform/helm/chartcheck"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kongconfig:", err)
		os.Exit(1)
	}
}

func run() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := chartcheck.RepoRoot(wd)
	if err != nil {
		return err
	}
	out, err := chartcheck.GenerateKongFile(root)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, filepath.FromSlash(chartcheck.ChartKongPath))
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", chartcheck.ChartKongPath)
	return nil
}
