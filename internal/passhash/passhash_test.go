package passhash

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"testing"
)

func TestHashAndCheck(t *testing.T) {
	ctx := context.Background()
	h := New(2)
	phc, err := h.Hash(ctx, "correct horse battery")
	if err != nil || !Valid(phc) {
		t.Fatalf("Hash = %q, %v", phc, err)
	}
	for _, tc := range []struct {
		phc, pw string
		want    bool
	}{
		{phc, "correct horse battery", true},
		{phc, "correct horse batterie", false},
		{Dummy(), "correct horse battery", false},
		{"!", "correct horse battery", false},
		{"$argon2id$v=19$m=999999999,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$" + base64.RawStdEncoding.EncodeToString(make([]byte, 32)), "x", false},
	} {
		got, err := h.Check(ctx, tc.phc, tc.pw)
		if err != nil || got != tc.want {
			t.Errorf("Check(%.30q, %q) = %v, %v; want %v", tc.phc, tc.pw, got, err, tc.want)
		}
	}
}

// FuzzParse: any string either is refused or parses into bounded
// parameters that format back to the same string.
func FuzzParse(f *testing.F) {
	file, err := os.Open("testdata/phc.txt")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	file.Close()
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parse(s)
		if !ok {
			return
		}
		if h.m < 8 || h.m > 1<<18 || h.t < 1 || h.t > 16 || h.p < 1 || h.p > 16 || len(h.key) < 16 || len(h.key) > 64 || len(h.salt) < 8 {
			t.Fatalf("parse(%q) accepted out-of-bounds parameters %+v", s, h)
		}
		b64 := base64.RawStdEncoding
		back := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.m, h.t, h.p, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
		if back != s {
			t.Fatalf("parse(%q) accepted a non-canonical form (%q)", s, back)
		}
	})
}
