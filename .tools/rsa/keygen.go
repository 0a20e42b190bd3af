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
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", filepath.Join("auth_service", "keys"), "folder for private.pem and public.pem")
	force := flag.Bool("force", false, "overwrite existing keys")
	bits := flag.Int("bits", 2048, "RSA key size")
	flag.Parse()
	if err := run(*dir, *bits, *force); err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(1)
	}
	fmt.Printf("keygen: wrote %s and %s\n", filepath.Join(*dir, "private.pem"), filepath.Join(*dir, "public.pem"))
}

func run(dir string, bits int, force bool) error {
	privPath, pubPath := filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	if !force {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s already exists (use -force to replace the key pair)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(privPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pubDER, 0o644)
}

// writePEM writes through a temporary file and a rename, so a failure never
// leaves half a key behind.
func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keygen-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := pem.Encode(tmp, &pem.Block{Type: blockType, Bytes: der}); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
