package file

import (
	"encoding/hex"
	"strings"

	"github.com/rotor-dev/rotor/store"
)

// File name parts. Secret names cannot start with '.' and cannot contain
// '+', '!' or '~', so lock and temporary files never collide with secret
// files, nor with each other's.
const (
	secretExt  = ".age"
	lockExt    = ".lock"
	tempPrefix = "."
	tempSep    = "+"
	caseSep    = "~"
)

// maxEscaped is the longest base escapeName may return and still leave
// every file name of the secret within the 255 bytes file systems allow:
// the temporary file, ".<base>+<up to 10 digits>", is the longest.
const maxEscaped = 255 - len(tempPrefix) - len(tempSep) - 10

// escapeName maps a secret name to the base of its file names, so that
// names differing only in case stay distinct on case-insensitive file
// systems (macOS, Windows) and every valid name fits in a file name.
//
// An upper-case letter becomes '!' and the lower-case letter
// (API-KEY: !a!p!i-!k!e!y). That doubles the length of an upper-case
// name, so when the result would be longer than maxEscaped (a long
// upper-case name: 128 characters of [A-Z] would need 256) the base is the
// name in lower case, '~', and the positions of its upper-case letters as
// a bit mask in hex, most significant bit first (at most 128+1+32
// characters). Names that fitted the first form keep it, so stores
// written before the second form existed read as they were.
func escapeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	if b.Len() <= maxEscaped {
		return b.String()
	}
	mask := make([]byte, (len(name)+7)/8)
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			mask[i/8] |= 0x80 >> (i % 8)
		}
	}
	return strings.ToLower(name) + caseSep + hex.EncodeToString(mask)
}

// unescapeName reverses escapeName. It reports false for anything
// escapeName cannot have produced from a valid secret name, so every
// secret has exactly one file name.
func unescapeName(base string) (string, bool) {
	if lower, mask, ok := strings.Cut(base, caseSep); ok {
		return unmaskName(base, lower, mask)
	}
	var b strings.Builder
	bang := false
	for _, r := range base {
		switch {
		case bang && r >= 'a' && r <= 'z':
			b.WriteRune(r - ('a' - 'A'))
			bang = false
		case bang || r >= 'A' && r <= 'Z':
			return "", false
		case r == '!':
			bang = true
		default:
			b.WriteRune(r)
		}
	}
	name := b.String()
	if bang || store.ValidateName(name) != nil || escapeName(name) != base {
		return "", false
	}
	return name, true
}

// unmaskName decodes the lower-case-and-mask form of base.
func unmaskName(base, lower, maskHex string) (string, bool) {
	mask, err := hex.DecodeString(maskHex)
	if err != nil || len(mask) != (len(lower)+7)/8 || strings.ToLower(lower) != lower {
		return "", false
	}
	b := []byte(lower)
	for i := range b {
		if mask[i/8]&(0x80>>(i%8)) != 0 {
			if b[i] < 'a' || b[i] > 'z' {
				return "", false
			}
			b[i] -= 'a' - 'A'
		}
	}
	name := string(b)
	if store.ValidateName(name) != nil || escapeName(name) != base {
		return "", false
	}
	return name, true
}

// secretFile returns the file name holding the secret name.
func secretFile(name string) string { return escapeName(name) + secretExt }

// lockFile returns the file name of the lock serialising saves of name.
func lockFile(name string) string { return "." + escapeName(name) + lockExt }

// tempFile returns the name of the temporary file a save of name writes
// before renaming it over the secret file. It is fixed, not random: saves
// of name are serialised by its lock, and a file a crashed save left
// behind is simply overwritten by the next one.
func tempFile(name string) string { return tempPrefix + escapeName(name) + tempSep + "tmp" }

// tempOwner returns the secret name whose save wrote the temporary file
// file: the fixed name tempFile returns, or the random names of earlier
// versions of rotor (".name+123456"). It reports false for any other file.
func tempOwner(file string) (string, bool) {
	rest, ok := strings.CutPrefix(file, tempPrefix)
	if !ok {
		return "", false
	}
	base, _, ok := strings.Cut(rest, tempSep)
	if !ok {
		return "", false
	}
	return unescapeName(base)
}

// nameOfSecretFile returns the secret name stored in file, or false if file
// is not a secret file.
func nameOfSecretFile(file string) (string, bool) {
	base, ok := strings.CutSuffix(file, secretExt)
	if !ok || strings.HasPrefix(file, ".") {
		return "", false
	}
	return unescapeName(base)
}
