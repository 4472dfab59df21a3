package release

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// topRoles are the four top-level TUF roles, each with its own key.
var topRoles = []string{"root", "targets", "snapshot", "timestamp"}

// keyPaths are a role's private and public key files in dir.
func keyPaths(dir, role string) (priv, pub string) {
	return filepath.Join(dir, role+".key"), filepath.Join(dir, role+".pub")
}

// generateKey writes a new ed25519 key pair for role into dir: the private
// key 0600 (PKCS#8 PEM), the public key 0644 (PKIX PEM). It never
// overwrites a key.
func generateKey(dir, role string) error {
	priv, pub := keyPaths(dir, role)
	if _, err := os.Stat(priv); err == nil {
		return fmt.Errorf("keygen %s: %s exists; refusing to overwrite a key", role, priv)
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen %s: %w", role, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		return fmt.Errorf("keygen %s: %w", role, err)
	}
	pder, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return fmt.Errorf("keygen %s: %w", role, err)
	}
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen %s: %w", role, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("keygen %s: %w", role, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)
}

// loadPrivate reads role's private key from dir.
func loadPrivate(dir, role string) (ed25519.PrivateKey, error) {
	priv, _ := keyPaths(dir, role)
	fi, err := os.Stat(priv)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", role, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s: %s is readable by others (mode %v); chmod 600 it", role, priv, fi.Mode().Perm())
	}
	b, err := os.ReadFile(priv)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", role, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key %s: %s is not a PEM private key", role, priv)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", role, err)
	}
	sk, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s: not an ed25519 key", role)
	}
	return sk, nil
}

// loadPublic reads role's public key from dir (or derives it from the
// private key when only that is there).
func loadPublic(dir, role string) (ed25519.PublicKey, error) {
	_, pub := keyPaths(dir, role)
	b, err := os.ReadFile(pub)
	if errors.Is(err, fs.ErrNotExist) {
		sk, err := loadPrivate(dir, role)
		if err != nil {
			return nil, err
		}
		return sk.Public().(ed25519.PublicKey), nil
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", role, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("key %s: %s is not a PEM public key", role, pub)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", role, err)
	}
	pk, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key %s: not an ed25519 key", role)
	}
	return pk, nil
}

func signer(sk ed25519.PrivateKey) (signature.Signer, error) {
	return signature.LoadSigner(sk, crypto.Hash(0))
}

// tufKey is the TUF key of pk and its id.
func tufKey(pk ed25519.PublicKey) (*metadata.Key, string, error) {
	k, err := metadata.KeyFromPublicKey(pk)
	if err != nil {
		return nil, "", err
	}
	id, err := k.ID()
	return k, id, err
}
