// Command keygen writes the RSA-2048 key pair auth_service signs tokens with:
// auth_service/keys/private.pem (PKCS#1 "RSA PRIVATE KEY") and
// auth_service/keys/public.pem (PKIX "PUBLIC KEY"). Run it from the repo root:
//
//	go run .tools/rsa/keygen.go [-dir auth_service/keys] [-force]
//
// It creates the folder, refuses to overwrite existing keys unless -force is
// given, and exits non-zero on any failure.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"blogplatform/tools/internal/keypair"
)

func main() {
	dir := flag.String("dir", filepath.Join("auth_service", "keys"), "folder for private.pem and public.pem")
	force := flag.Bool("force", false, "overwrite existing keys")
	bits := flag.Int("bits", keypair.DefaultBits, "RSA key size")
	flag.Parse()
	if err := keypair.Write(*dir, *bits, *force); err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(1)
	}
	priv, pub := keypair.Paths(*dir)
	fmt.Printf("keygen: wrote %s and %s\n", priv, pub)
}
