// Package redact removes secret values from text that rotor quotes in
// errors and audit records: the output of hooks and of provider commands.
//
// An exact match is not enough: a hook that prints a key cut in half, a
// prefix of it, or the key wrapped across two words leaks it all the
// same. [Values] therefore removes every run of at least [MinPartial]
// bytes that also occurs in one of the values.
package redact

import (
	"strings"
	"unicode/utf8"
)

// MinPartial is the shortest piece of a value that is redacted wherever
// it occurs. Shorter values are redacted where they occur whole.
const MinPartial = 8

// Values returns s with every run of MinPartial or more bytes that is a
// substring of one of values replaced by mark, and every value shorter
// than MinPartial replaced where it occurs whole. Runs are widened to
// whole UTF-8 characters. It costs one map lookup per byte of s, after
// indexing every MinPartial-byte piece of the values.
func Values(s string, values []string, mark string) string {
	pieces := map[string]struct{}{}
	var short []string
	for _, v := range values {
		switch {
		case len(v) >= MinPartial:
			for i := 0; i+MinPartial <= len(v); i++ {
				pieces[v[i:i+MinPartial]] = struct{}{}
			}
		case v != "":
			short = append(short, v)
		}
	}
	if len(pieces) == 0 && len(short) == 0 {
		return s
	}
	covered := make([]bool, len(s))
	// A run of n >= MinPartial common bytes is covered by its n-7
	// pieces, and every covered byte belongs to such a run.
	for i := 0; i+MinPartial <= len(s); i++ {
		if _, ok := pieces[s[i:i+MinPartial]]; ok {
			for j := i; j < i+MinPartial; j++ {
				covered[j] = true
			}
		}
	}
	for _, v := range short {
		for off := 0; ; {
			i := strings.Index(s[off:], v)
			if i < 0 {
				break
			}
			for j := off + i; j < off+i+len(v); j++ {
				covered[j] = true
			}
			off += i + 1
		}
	}
	// Widen runs to whole characters: a piece of a value may start or
	// end inside one.
	for i := 0; i < len(s); i++ {
		if !covered[i] {
			continue
		}
		start, end := i, i
		for end < len(s) && covered[end] {
			end++
		}
		for start > 0 && !utf8.RuneStart(s[start]) {
			start--
		}
		for end < len(s) && !utf8.RuneStart(s[end]) {
			end++
		}
		for j := start; j < end; j++ {
			covered[j] = true
		}
		i = end
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		for i < len(s) && covered[i] {
			i++
		}
		b.WriteString(mark)
	}
	return b.String()
}
