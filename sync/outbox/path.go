package outbox

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TempPrefix starts the names connectors give their temporary uploads; no
// item may use it, so that a cleanup of temporary files never touches a
// delivered one.
const TempPrefix = ".preau-"

// MaxRemotePath bounds the length of Item.RemotePath, in bytes.
const MaxRemotePath = 1024

// CheckRemotePath reports whether p is a usable remote path: relative,
// '/'-separated, without empty, "." or ".." segments, backslashes or
// control characters, each segment at most 255 bytes.
func CheckRemotePath(p string) error {
	switch {
	case p == "":
		return errors.New("remote path is empty")
	case len(p) > MaxRemotePath:
		return fmt.Errorf("remote path is longer than %d bytes", MaxRemotePath)
	case !utf8.ValidString(p):
		return errors.New("remote path is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return errors.New("remote path must be relative")
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return errors.New("remote path has an empty segment")
		case seg == "." || seg == "..":
			return fmt.Errorf("remote path has a %q segment", seg)
		case len(seg) > 255:
			return errors.New("remote path has a segment longer than 255 bytes")
		case strings.HasPrefix(seg, TempPrefix):
			return fmt.Errorf("remote path segment %q starts with the reserved %q", seg, TempPrefix)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '\\' {
				return fmt.Errorf("remote path segment %q has a control character or a backslash", seg)
			}
		}
	}
	return nil
}
