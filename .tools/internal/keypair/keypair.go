// Package keypair writes the RSA key pair auth_service signs tokens with:
// private.pem (PKCS#1 "RSA PRIVATE KEY") and public.pem (PKIX "PUBLIC KEY").
// Shared by .tools/rsa/keygen.go and the local platform, so both produce the
// same files by the same rules.
package keypair

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside the key folder, as auth_service's RSA_*_KEY_PATH expect.
const (
	PrivateFile = "private.pem"
	PublicFile  = "public.pem"
	// DefaultBits is the reference's key size.
	DefaultBits = 2048
	// PrivateMode is private.pem's permission bits: its owner only.
	PrivateMode os.FileMode = 0o600
)

// ErrExists is returned by Write when a key file exists and force is false.
var ErrExists = errors.New("key pair already exists")

// Paths returns the private and public key paths in dir.
func Paths(dir string) (private, public string) {
	return filepath.Join(dir, PrivateFile), filepath.Join(dir, PublicFile)
}

// Exists reports whether both key files are present in dir.
func Exists(dir string) (bool, error) {
	privPath, pubPath := Paths(dir)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

// Write generates a pair into dir (created if missing). Unless force is set it
// refuses, with ErrExists, when either file is already there, so a working key
// (and every token signed with it) is never replaced by accident.
func Write(dir string, bits int, force bool) error {
	privPath, pubPath := Paths(dir)
	if !force {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%w: %s (use -force to replace the key pair)", ErrExists, p)
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
	// The private key is readable by its owner only (0600): whoever can read
	// it can sign tokens. In compose it reaches auth_service through a
	// read-only bind mount and the container runs as the file's owner
	// (AUTH_UID/AUTH_GID, see keygen). The public key is public.
	if err := writePEM(privPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), PrivateMode); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pubDER, 0o644)
}

// Ensure writes a pair into dir only when none is complete there, and reports
// whether it did. A lone half of a pair is an error: replacing it could break
// whatever uses the other half, and keeping it cannot work.
func Ensure(dir string, bits int) (bool, error) {
	ok, err := Exists(dir)
	if err != nil {
		return false, err
	}
	if ok {
		return false, Tighten(dir)
	}
	privPath, pubPath := Paths(dir)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return false, fmt.Errorf("%s exists without its other half; remove it or run go run .tools/rsa/keygen.go -force", p)
		}
	}
	if err := Write(dir, bits, false); err != nil {
		return false, err
	}
	return true, nil
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

// Tighten makes an existing private.pem readable by its owner only, for keys
// written by older versions with 0644.
func Tighten(dir string) error {
	privPath, _ := Paths(dir)
	info, err := os.Stat(privPath)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&^PrivateMode != 0 {
		return os.Chmod(privPath, PrivateMode)
	}
	return nil
}
