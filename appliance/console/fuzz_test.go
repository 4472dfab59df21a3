package console

import (
	"bufio"
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
