package bootenv

// CompareVersions orders two version strings the way systemd-boot orders
// boot entries (systemd's strverscmp_improved): numeric and alphabetic
// segments, '.' point releases, '-' before the release part, '^' patches,
// '~' pre-releases (older than anything), other characters ignored. It
// returns -1 when a is older than b, 0 when they are equivalent, 1 when a
// is newer. The update engine uses the same order to refuse downgrades,
// so "newer" means the same thing to the engine and to the boot loader.
func CompareVersions(a, b string) int {
	if a == "" || b == "" {
		return cmp3(boolInt(a != ""), boolInt(b != ""))
	}
	i, j := 0, 0
	at := func(s string, k int) byte {
		if k < len(s) {
			return s[k]
		}
		return 0
	}
	for {
		for i < len(a) && !validVersionChar(a[i]) {
			i++
		}
		for j < len(b) && !validVersionChar(b[j]) {
			j++
		}
		ca, cb := at(a, i), at(b, j)
		if ca == '~' || cb == '~' {
			if r := cmp3(boolInt(ca != '~'), boolInt(cb != '~')); r != 0 {
				return r
			}
			i++
			j++
		}
		ca, cb = at(a, i), at(b, j)
		if ca == 0 || cb == 0 {
			return cmp3(int(ca), int(cb))
		}
		for _, sep := range []byte{'-', '^', '.'} {
			ca, cb = at(a, i), at(b, j)
			if ca == sep || cb == sep {
				if r := cmp3(boolInt(ca != sep), boolInt(cb != sep)); r != 0 {
					return r
				}
				i++
				j++
			}
		}
		ca, cb = at(a, i), at(b, j)
		if isDigit(ca) || isDigit(cb) {
			ea, eb := i, j
			for ea < len(a) && isDigit(a[ea]) {
				ea++
			}
			for eb < len(b) && isDigit(b[eb]) {
				eb++
			}
			if r := cmp3(boolInt(ea != i), boolInt(eb != j)); r != 0 {
				return r
			}
			for i < ea && a[i] == '0' {
				i++
			}
			for j < eb && b[j] == '0' {
				j++
			}
			if r := cmp3(ea-i, eb-j); r != 0 {
				return r
			}
			if r := strcmp3(a[i:ea], b[j:eb]); r != 0 {
				return r
			}
			i, j = ea, eb
		} else {
			ea, eb := i, j
			for ea < len(a) && isAlpha(a[ea]) {
				ea++
			}
			for eb < len(b) && isAlpha(b[eb]) {
				eb++
			}
			n := min(ea-i, eb-j)
			if r := strcmp3(a[i:i+n], b[j:j+n]); r != 0 {
				return r
			}
			if r := cmp3(ea-i, eb-j); r != 0 {
				return r
			}
			i, j = ea, eb
		}
	}
}

func validVersionChar(c byte) bool {
	return isDigit(c) || isAlpha(c) || c == '~' || c == '-' || c == '^' || c == '.'
}
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cmp3(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func strcmp3(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
