package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Mark is what the tests redact with.
const Mark = "[REDACTED]"

func TestValues(t *testing.T) {
	const key = "sk_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	tests := []struct {
		name, in, want string
	}{
		{"whole", "key=" + key + " ok", "key=" + Mark + " ok"},
		{"prefix of 8", "starts " + key[:8] + "!", "starts " + Mark + "!"},
		{"middle piece", "x" + key[10:30] + "y", "x" + Mark + "y"},
		{"split in two", key[:20] + " " + key[20:], Mark + " " + Mark},
		{"7 bytes are not a piece", "a " + key[:7] + " b", "a " + key[:7] + " b"},
		{"unrelated text", "deployment web restarted", "deployment web restarted"},
		{"short value whole", "pin 1234 ok", "pin " + Mark + " ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Values(tt.in, []string{key, "1234"}, Mark); got != tt.want {
				t.Fatalf("Values(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestValuesNoPieceLeft: whatever the output, no MinPartial-byte piece of a
// value survives, and the result stays valid UTF-8.
func TestValuesNoPieceLeft(t *testing.T) {
	v := "ключ-секрет-é-" + strings.Repeat("ab", 3) + "zé"
	in := "before " + v[3:] + " and " + v[:11] + " after é"
	out := Values(in, []string{v}, Mark)
	for i := 0; i+MinPartial <= len(v); i++ {
		if strings.Contains(out, v[i:i+MinPartial]) {
			t.Fatalf("piece %d left in %q", i, out)
		}
	}
	if !utf8.ValidString(out) {
		t.Fatalf("invalid UTF-8: %q", out)
	}
}

func FuzzValues(f *testing.F) {
	f.Add("prefix sk_live_1234567890abcdef suffix", "sk_live_1234567890abcdef")
	f.Fuzz(func(t *testing.T, s, v string) {
		out := Values(s, []string{v}, Mark)
		for i := 0; i+MinPartial <= len(v); i++ {
			if strings.Contains(out, v[i:i+MinPartial]) && !strings.Contains(Mark, v[i:i+MinPartial]) {
				// A piece may reappear across a Mark boundary only if
				// the mark itself supplies its bytes.
				if strings.Contains(strings.ReplaceAll(out, Mark, "\x00"), v[i:i+MinPartial]) {
					t.Fatalf("piece of the value left: %q", out)
				}
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("valid input became invalid UTF-8: %q", out)
		}
	})
}
