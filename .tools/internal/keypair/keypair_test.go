package keypair

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteRefusesToOverwriteUnlessForced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Write(dir, 1024, false); err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := Paths(dir)
	first, _ := os.ReadFile(privPath)
	if err := Write(dir, 1024, false); !errors.Is(err, ErrExists) {
		t.Fatalf("second Write: %v, want ErrExists", err)
	}
	if again, _ := os.ReadFile(privPath); string(again) != string(first) {
		t.Fatal("the refused Write changed the key")
	}
	if err := Write(dir, 1024, true); err != nil {
		t.Fatal(err)
	}
	if forced, _ := os.ReadFile(privPath); string(forced) == string(first) {
		t.Fatal("-force did not replace the key")
	}

	// The files are what auth_service reads: PKCS#1 private, PKIX public, a pair.
	privPEM, _ := os.ReadFile(privPath)
	pubPEM, _ := os.ReadFile(pubPath)
	privBlock, _ := pem.Decode(privPEM)
	pubBlock, _ := pem.Decode(pubPEM)
	if privBlock == nil || privBlock.Type != "RSA PRIVATE KEY" || pubBlock == nil || pubBlock.Type != "PUBLIC KEY" {
		t.Fatal("PEM block types")
	}
	key, err := x509.ParsePKCS1PrivateKey(privBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pub.(*rsa.PublicKey)) {
		t.Fatal("public.pem is not private.pem's public key")
	}
	// Whoever reads the private key can sign tokens: its owner only.
	if info, _ := os.Stat(privPath); info.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want -rw-------", info.Mode().Perm())
	}
	if info, _ := os.Stat(pubPath); info.Mode().Perm() != 0o644 {
		t.Errorf("public key mode %v, want -rw-r--r--", info.Mode().Perm())
	}
}

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	created, err := Ensure(dir, 1024)
	if err != nil || !created {
		t.Fatalf("first Ensure: %v %v", created, err)
	}
	created, err = Ensure(dir, 1024)
	if err != nil || created {
		t.Fatalf("second Ensure: %v %v", created, err)
	}
	_, pubPath := Paths(dir)
	os.Remove(pubPath)
	if _, err := Ensure(dir, 1024); err == nil {
		t.Fatal("half a pair must be an error, not silently replaced")
	}
}

// A private key left world-readable by an older version is tightened, never
// replaced.
func TestEnsureTightensAnOpenPrivateKey(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, 1024, false); err != nil {
		t.Fatal(err)
	}
	privPath, _ := Paths(dir)
	before, _ := os.ReadFile(privPath)
	if err := os.Chmod(privPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if created, err := Ensure(dir, 1024); err != nil || created {
		t.Fatalf("Ensure = %v, %v", created, err)
	}
	after, _ := os.ReadFile(privPath)
	if info, _ := os.Stat(privPath); info.Mode().Perm() != PrivateMode || string(before) != string(after) {
		t.Errorf("mode %v, same key %v; want 0600 and the same key", info.Mode().Perm(), string(before) == string(after))
	}
}
