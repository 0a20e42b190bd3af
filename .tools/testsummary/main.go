// Command testsummary reads `go test -json` on stdin, prints the usual
// per-package lines (and the output of failing tests) as it goes, and ends
// with one line "N passed, N failed, N skipped". It exits 1 when anything
// failed, including a package that did not build.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	passed, failed, skipped := 0, 0, 0
	failedPkgs := 0
	// Output is kept per test so a failure can be shown in full.
	outputs := map[string][]string{}
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		line := scanner.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors arrive as plain text.
			fmt.Println(string(line))
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				out := strings.TrimRight(e.Output, "\n")
				if strings.HasPrefix(out, "ok ") || strings.HasPrefix(out, "FAIL") || strings.HasPrefix(out, "?") ||
					strings.HasPrefix(out, "---") || strings.Contains(out, "panic:") || strings.HasPrefix(out, "testinfra:") {
					fmt.Println(out)
				}
				outputs[key] = append(outputs[key], e.Output)
				continue
			}
			outputs[key] = append(outputs[key], e.Output)
		case "pass":
			if e.Test != "" {
				passed++
			}
			delete(outputs, key)
		case "skip":
			if e.Test != "" {
				skipped++
				fmt.Printf("SKIP %s %s\n", e.Package, e.Test)
			}
			delete(outputs, key)
		case "fail":
			if e.Test != "" {
				failed++
				fmt.Printf("--- FAIL: %s %s (%.2fs)\n%s", e.Package, e.Test, e.Elapsed, strings.Join(outputs[key], ""))
			} else {
				failedPkgs++
				if strings.Contains(strings.Join(outputs[key], ""), "build failed") || len(outputs[key]) > 0 {
					fmt.Print(strings.Join(outputs[key], ""))
				}
			}
			delete(outputs, key)
		}
	}
	if failedPkgs > 0 && failed == 0 {
		failed = failedPkgs
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || failedPkgs > 0 {
		os.Exit(1)
	}
}
