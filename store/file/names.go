package file

import (
	"strings"

	"github.com/rotor-dev/rotor/store"
)

// File name parts. Secret names cannot start with '.' and cannot contain '+'
// or '!', so lock and temporary files never collide with secret files, nor
// with each other's.
const (
	secretExt  = ".age"
	lockExt    = ".lock"
	tempPrefix = "."
	tempSep    = "+"
)

// escapeName maps a secret name to the base of its file names. Upper-case
// letters become '!' and the lower-case letter, so that names differing
// only in case stay distinct on case-insensitive file systems (macOS,
// Windows).
func escapeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unescapeName reverses escapeName. It reports false for anything
// escapeName cannot have produced from a valid secret name.
func unescapeName(base string) (string, bool) {
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
	if bang || store.ValidateName(name) != nil {
		return "", false
	}
	return name, true
}

// secretFile returns the file name holding the secret name.
func secretFile(name string) string { return escapeName(name) + secretExt }

// lockFile returns the file name of the lock serialising saves of name.
func lockFile(name string) string { return "." + escapeName(name) + lockExt }

// tempPattern returns the os.CreateTemp pattern for a new version of name.
func tempPattern(name string) string { return tempPrefix + escapeName(name) + tempSep + "*" }

// isTempOf reports whether file is a temporary file written for name.
func isTempOf(file, name string) bool {
	return strings.HasPrefix(file, tempPrefix+escapeName(name)+tempSep)
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
