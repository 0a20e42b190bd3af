// Command keygen writes the RSA-2048 key pair auth_service signs tokens with:
// auth_service/keys/private.pem (PKCS#1 "RSA PRIVATE KEY") and
// auth_service/keys/public.pem (PKIX "PUBLIC KEY"). Run it from the repo root:
//
//	go run .tools/rsa/keygen.go [-dir auth_service/keys] [-force]
//
// It creates the folder, refuses to overwrite existing keys unless -force is
// given (an existing private key left readable by others is made 0600), and
// exits non-zero on any failure.
//
// private.pem is readable by its owner only (0600). The compose files run
// the auth container as AUTH_UID:AUTH_GID (default 10001:10001, the image's
// user), so the container must run as the file's owner: run as root, keygen
// hands the key to 10001:10001; otherwise it prints the two ways to match
// them (AUTH_UID/AUTH_GID in .env, or chown).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"blogplatform/tools/internal/keypair"
)

// containerUID and containerGID are the auth image's user (USER in
// auth_service/Dockerfile) and the compose files' default AUTH_UID/AUTH_GID.
const (
	containerUID = 10001
	containerGID = 10001
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Geteuid(), os.Getegid()))
}

func run(args []string, stdout, stderr io.Writer, euid, egid int) int {
	flags := flag.NewFlagSet("keygen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", filepath.Join("auth_service", "keys"), "folder for private.pem and public.pem")
	force := flags.Bool("force", false, "overwrite existing keys")
	bits := flags.Int("bits", keypair.DefaultBits, "RSA key size")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	priv, pub := keypair.Paths(*dir)
	if err := keypair.Write(*dir, *bits, *force); err != nil {
		if errors.Is(err, keypair.ErrExists) {
			if terr := keypair.Tighten(*dir); terr == nil {
				fmt.Fprintf(stderr, "keygen: %s is readable by its owner only (0600)\n", priv)
			}
		}
		fmt.Fprintln(stderr, "keygen:", err)
		return 1
	}
	fmt.Fprintf(stdout, "keygen: wrote %s (0600) and %s\n", priv, pub)
	if euid == 0 {
		// Root can hand the key to the container's user, so the compose
		// default (AUTH_UID unset) works as is.
		if err := os.Chown(priv, containerUID, containerGID); err != nil {
			fmt.Fprintln(stderr, "keygen:", err)
			return 1
		}
		fmt.Fprintf(stdout, "keygen: %s is owned by %d:%d, the auth container's user\n", priv, containerUID, containerGID)
		return 0
	}
	if euid != containerUID {
		fmt.Fprintf(stdout, `keygen: the auth container must run as the key's owner to read it. Either
keygen:   add AUTH_UID=%d and AUTH_GID=%d to .env (the container then runs as you), or
keygen:   sudo chown %d:%d %s (the image's own user)
`, euid, egid, containerUID, containerGID, priv)
	}
	return 0
}
