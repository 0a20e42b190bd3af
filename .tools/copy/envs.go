// Command envs creates every .env and .test.env from its .env.example /
// .test.env.example (the root one included), never overwriting an existing
// file. Run it from the repo root: go run .tools/copy/envs.go
//
// The root .env it creates holds the public example secrets and
// ALLOW_EXAMPLE_SECRETS=true, so the compose stacks start at once on the
// operator's own machine; it warns that they must be replaced before the
// stack is exposed.
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"blogplatform/chassis/config"
	"blogplatform/tools/internal/envfiles"
)

// rootEnv is the file docker compose reads for interpolation.
const rootEnv = ".env"

// exampleSecretsWarning follows the first line of a warning.
const exampleSecretsWarning = `envs: The example secrets are public. Before exposing the stack (GATEWAY_BIND other
envs: than 127.0.0.1, or a host others can reach), replace every password and
envs: SEED_API_KEY in .env and set ALLOW_EXAMPLE_SECRETS=false.
`

func main() {
	failed := false
	for _, r := range envfiles.CopyMissing(".", envfiles.Pairs) {
		switch r.Outcome {
		case envfiles.Created:
			fmt.Printf("envs: created %s\n", r.Target)
			if r.Target == rootEnv {
				fmt.Fprint(os.Stderr, "envs: WARNING: .env holds the example secrets of .env.example and ALLOW_EXAMPLE_SECRETS=true.\n"+exampleSecretsWarning)
			}
		case envfiles.KeptExisting:
			fmt.Printf("envs: kept existing %s\n", r.Target)
			if r.Target == rootEnv && allowsExampleSecrets(rootEnv) {
				fmt.Fprint(os.Stderr, "envs: WARNING: .env sets ALLOW_EXAMPLE_SECRETS=true.\n"+exampleSecretsWarning)
			}
			// A file kept from an older checkout may lack variables added
			// since (e.g. the per-service Redis passwords), which compose
			// then refuses to start without.
			if missing := missingKeys(r.Example, r.Target); r.Target == rootEnv && len(missing) > 0 {
				fmt.Fprintf(os.Stderr, "envs: WARNING: %s lacks %s; copy them from %s and set real values.\n",
					r.Target, strings.Join(missing, ", "), r.Example)
			}
		default:
			fmt.Fprintf(os.Stderr, "envs: %s -> %s: %v\n", r.Example, r.Target, r.Err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// allowsExampleSecrets reports whether the dotenv file at path sets
// ALLOW_EXAMPLE_SECRETS=true (an unreadable file says nothing).
func allowsExampleSecrets(path string) bool {
	values, err := config.ParseDotenvFile(path)
	if err != nil {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(values["ALLOW_EXAMPLE_SECRETS"]), "true")
}

// missingKeys lists the variables set in example but not in target (either
// file unreadable: none).
func missingKeys(example, target string) []string {
	want, err := config.ParseDotenvFile(example)
	if err != nil {
		return nil
	}
	have, err := config.ParseDotenvFile(target)
	if err != nil {
		return nil
	}
	var missing []string
	for k := range want {
		if _, ok := have[k]; !ok {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	return missing
}
