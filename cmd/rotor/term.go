package main

import (
	"fmt"
	"io"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// termWriter neutralises what could make a terminal show something other
// than what rotor wrote. rotor prints fields it does not control: audit
// records (an unverified token's claimed identity, a hook's output), lease
// holders, dashboard names, error messages. A U+202E in one of them
// reverses the text after it, an escape sequence can rewrite the screen.
// Every such character is written as a \uXXXX escape instead (two, a
// UTF-16 pair, beyond U+FFFF): format characters (bidi controls,
// zero-width characters; Unicode category Cf), the line and paragraph
// separators, C0 controls other than tab and newline, DEL and C1
// controls; bytes that are not UTF-8 become \xNN. In JSON output those
// characters only occur inside strings, where \uXXXX is the same
// character, so JSON stays valid and means the same.
//
// Everything rotor prints goes through one (see run), except the value
// `rotor get --reveal` prints, which must stay byte for byte.
type termWriter struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte // an incomplete UTF-8 sequence at the end of the last write
}

func newTermWriter(w io.Writer) *termWriter { return &termWriter{w: w} }

// Write writes p neutralised. It reports len(p) on success.
func (t *termWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := append(t.pending, p...)
	t.pending = nil
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(data[i:]) && len(data)-i < utf8.UTFMax {
				t.pending = append([]byte(nil), data[i:]...)
				break
			}
			out = fmt.Appendf(out, `\x%02x`, data[i])
			i++
			continue
		}
		if unsafeRune(r) {
			for _, u := range utf16.Encode([]rune{r}) {
				out = fmt.Appendf(out, `\u%04x`, u)
			}
		} else {
			out = append(out, data[i:i+size]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	}
	return unicode.Is(unicode.Cf, r)
}
