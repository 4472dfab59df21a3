package syncthing

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Syncthing device IDs: the SHA-256 of the device's certificate, in base32
// without padding (52 characters), with a Luhn mod 32 check character after
// each 13 (56), shown in 8 groups of 7 separated by dashes.

const luhnAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// deviceIDFromCert computes the device ID of the certificate in the PEM
// file at path.
func deviceIDFromCert(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	sum := sha256.Sum256(block.Bytes)
	return formatDeviceID(sum[:]), nil
}

func formatDeviceID(sum []byte) string {
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum), "=")
	var b strings.Builder
	for i := range 4 {
		part := s[i*13 : (i+1)*13]
		b.WriteString(part)
		b.WriteByte(luhn32(part))
	}
	full := b.String()
	groups := make([]string, 0, 8)
	for i := 0; i < len(full); i += 7 {
		groups = append(groups, full[i:i+7])
	}
	return strings.Join(groups, "-")
}

// luhn32 is Syncthing's check character of a group of 13 base32 characters.
func luhn32(s string) byte {
	factor, sum := 1, 0
	for i := range len(s) {
		cp := strings.IndexByte(luhnAlphabet, s[i])
		addend := factor * cp
		if factor == 2 {
			factor = 1
		} else {
			factor = 2
		}
		sum += addend/32 + addend%32
	}
	return luhnAlphabet[(32-sum%32)%32]
}

// canonicalDeviceID checks a device ID as a technician types it (dashes or
// spaces between groups, any case) and returns its canonical form.
func canonicalDeviceID(id string) (string, error) {
	s := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(id)))
	if len(s) != 56 {
		return "", errors.New("want 56 characters in 8 groups of 7 (e.g. MFZWI3D-BONSGYC-…)")
	}
	for i := range len(s) {
		if strings.IndexByte(luhnAlphabet, s[i]) < 0 {
			return "", fmt.Errorf("character %q is not base32 (A–Z, 2–7)", s[i])
		}
	}
	for i := range 4 {
		group := s[i*14 : (i+1)*14]
		if luhn32(group[:13]) != group[13] {
			return "", errors.New("check character wrong: a character was mistyped")
		}
	}
	groups := make([]string, 0, 8)
	for i := 0; i < len(s); i += 7 {
		groups = append(groups, s[i:i+7])
	}
	return strings.Join(groups, "-"), nil
}
