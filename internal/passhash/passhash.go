// Package passhash hashes and checks passwords with argon2id in the PHC
// string format ($argon2id$v=19$m=…,t=…,p=…$salt$key). The technician
// console's accounts and the hand-in service's teacher table both use it,
// with the same parameters, so that a hash moves from one to the other
// unchanged. Any package of the module may import it.
package passhash

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters: OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane)
// keeps a sign-in on a 1 GB board near 100 ms.
const (
	Memory  = 19 * 1024 // KiB
	Time    = 2
	Threads = 1
	KeyLen  = 32
	SaltLen = 16
)

// Hasher computes hashes, a few at a time: a burst of sign-ins must not
// take the box's memory (each computation holds Memory KiB).
type Hasher struct{ sem chan struct{} }

// New returns a Hasher running at most concurrent computations at once
// (at least 1).
func New(concurrent int) *Hasher {
	return &Hasher{sem: make(chan struct{}, max(concurrent, 1))}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns the PHC string of a new argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, SaltLen)
	rand.Read(salt)
	if err := h.acquire(ctx); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, Time, Memory, Threads, KeyLen)
	h.release()
	return format(salt, key, Memory, Time, Threads), nil
}

// Check reports whether password matches the PHC string; a malformed or
// out-of-bounds string never matches.
func (h *Hasher) Check(ctx context.Context, phc, password string) (bool, error) {
	p, ok := parse(phc)
	if !ok {
		return false, nil
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), p.salt, p.t, p.m, p.p, uint32(len(p.key)))
	h.release()
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

// Valid reports whether s is a well-formed argon2id PHC string this
// package would check (bounded parameters, canonical encoding).
func Valid(s string) bool {
	_, ok := parse(s)
	return ok
}

// Dummy returns a well-formed hash nobody knows the password of: checked
// when a login is unknown, so that the answer takes as long as for a
// known one.
func Dummy() string {
	salt, key := make([]byte, SaltLen), make([]byte, KeyLen)
	rand.Read(salt)
	rand.Read(key)
	return format(salt, key, Memory, Time, Threads)
}

func format(salt, key []byte, m, t uint32, p uint8) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// phc is a parsed argon2id PHC string.
type phc struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

// parse reads an argon2id PHC string with bounds that keep a forged hash
// from costing the box more than a few times a normal one, and only in its
// canonical form (one string per hash).
func parse(s string) (phc, bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, false
	}
	var h phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.m, &h.t, &h.p); err != nil ||
		h.m < 8 || h.m > 1<<18 || h.t < 1 || h.t > 16 || h.p < 1 || h.p > 16 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", h.m, h.t, h.p) { // nothing after, no leading zeros
		return phc{}, false
	}
	b64 := base64.RawStdEncoding.Strict() // one encoding per value
	var err1, err2 error
	h.salt, err1 = b64.DecodeString(parts[4])
	h.key, err2 = b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(h.salt) < 8 || len(h.salt) > 64 || len(h.key) < 16 || len(h.key) > 64 {
		return phc{}, false
	}
	return h, true
}
