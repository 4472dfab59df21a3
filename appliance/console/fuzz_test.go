package console

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// seeds adds each line of a testdata file to the fuzz corpus.
func seeds(f *testing.F, name string) {
	file, err := os.Open("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
}

// FuzzParsePHC: any string either is refused or parses into bounded
// parameters that format back to the same string.
func FuzzParsePHC(f *testing.F) {
	seeds(f, "phc.txt")
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parsePHC(s)
		if !ok {
			return
		}
		if h.m < 8 || h.m > 1<<18 || h.t < 1 || h.t > 16 || h.p < 1 || h.p > 16 || len(h.key) < 16 || len(h.key) > 64 || len(h.salt) < 8 {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds parameters %+v", s, h)
		}
		b64 := base64.RawStdEncoding
		back := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.m, h.t, h.p, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
		if back != s {
			t.Fatalf("parsePHC(%q) accepted a non-canonical form (%q)", s, back)
		}
	})
}

// FuzzAcceptLanguage: the answer is always a language the console has, or
// none.
func FuzzAcceptLanguage(f *testing.F) {
	seeds(f, "accept-language.txt")
	f.Fuzz(func(t *testing.T, h string) {
		switch got := acceptLanguage(h); got {
		case "", "fr", "en":
		default:
			t.Fatalf("acceptLanguage(%q) = %q", h, got)
		}
	})
}

// FuzzNormMAC: an accepted MAC is canonical and stable.
func FuzzNormMAC(f *testing.F) {
	seeds(f, "mac.txt")
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := normMAC(s)
		if !ok {
			return
		}
		if len(m) != 17 || strings.ToLower(m) != m {
			t.Fatalf("normMAC(%q) = %q", s, m)
		}
		if again, ok := normMAC(m); !ok || again != m {
			t.Fatalf("normMAC not stable: %q → %q → %q", s, m, again)
		}
	})
}

// FuzzMatchTOTP: user input never panics the code check and a random
// string practically never matches.
func FuzzMatchTOTP(f *testing.F) {
	for _, s := range []string{"123456", "12 34 56", "", "abcdef", "1234567", "-12345"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 9, 14, 32, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, code string) {
		_, _ = matchTOTP("JBSWY3DPEHPK3PXP", code, now, 0)
	})
}
