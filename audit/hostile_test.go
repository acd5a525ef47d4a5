package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile input to the audit log: what somebody who can write the log's
// or the anchor's directory, but cannot read the salt, can put there, and
// what a holder of the salt or a bent clock can make rotor write. Each
// must be reported as a broken chain (ErrChainBroken: `rotor audit verify`
// exits 5), never as an I/O error, a hang or a pass.

// TestHostileAnchor: whatever replaces the anchor file is a tampered
// anchor, for Verify and for Append. Before, a directory (or anything
// else that is not a file) was an I/O error (exit 1), and a FIFO made
// every command hang.
func TestHostileAnchor(t *testing.T) {
	// Each case gets the anchor's path, now free, and what the anchor held.
	tests := []struct {
		name    string
		replace func(t *testing.T, anchor, old string)
	}{
		{"a directory", func(t *testing.T, anchor, _ string) { mkdir(t, anchor) }},
		{"a FIFO", func(t *testing.T, anchor, _ string) {
			if err := syscall.Mkfifo(anchor, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to a directory", func(t *testing.T, anchor, _ string) {
			dir := filepath.Join(t.TempDir(), "elsewhere")
			mkdir(t, dir)
			symlink(t, dir, anchor)
		}},
		{"a link to a device", func(t *testing.T, anchor, _ string) { symlink(t, os.DevNull, anchor) }},
		{"an empty file", func(t *testing.T, anchor, _ string) { write(t, anchor, "") }},
		{"text", func(t *testing.T, anchor, _ string) { write(t, anchor, "ok\n") }},
		{"an oversized file", func(t *testing.T, anchor, _ string) { write(t, anchor, strings.Repeat(" ", maxAnchorSize+1)) }},
		{"another field", func(t *testing.T, anchor, old string) {
			write(t, anchor, strings.Replace(old, `{"seq"`, `{"x":1,"seq"`, 1))
		}},
		{"a lower seq with the old MAC", func(t *testing.T, anchor, old string) {
			write(t, anchor, strings.Replace(old, `{"seq":3`, `{"seq":2`, 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			appendN(t, l, 3)
			old, err := os.ReadFile(l.anchor)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(l.anchor); err != nil {
				t.Fatal(err)
			}
			tt.replace(t, l.anchor, string(old))
			if _, err := l.Verify(t.Context()); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Verify: %v, want a broken chain", err)
			}
			if _, err := l.Append(t.Context(), event(9)); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Append: %v, want a broken chain", err)
			}
		})
	}
}

// TestHostileClockGoingBack: a record appended by a clock that is behind
// the last record (another machine's, or one set back) is dated like the
// record before, not earlier, so that time never goes backwards along the
// chain. Before, it carried the earlier time.
func TestHostileClockGoingBack(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	l := newTestLog(t, WithClock(func() time.Time { return now }))
	first := appendN(t, l, 1)[0]
	now = now.Add(-time.Hour)
	second, err := l.Append(t.Context(), event(1))
	if err != nil {
		t.Fatal(err)
	}
	if !second.Timestamp.Equal(first.Timestamp) {
		t.Fatalf("a record appended an hour behind the last one is dated %s, want %s", second.Timestamp, first.Timestamp)
	}
	if _, err := l.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestHostileTimestampsGoingBackwards: a chain whose record is dated before
// the one it follows does not verify, even with every hash right (as a
// holder of the salt, or a rotor whose clock was bent by a test knob,
// would write it). Before, it verified.
func TestHostileTimestampsGoingBackwards(t *testing.T) {
	l := newTestLog(t)
	recs := appendN(t, l, 3)
	// Rewrite the chain from record 2 on, with record 2 dated a second
	// before record 1, and anchor the rewritten head.
	var lines []byte
	prev := recs[0]
	line, err := encodeRecord(prev)
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, line...)
	for i, r := range recs[1:] {
		r.PrevHash = prev.Hash
		if i == 0 {
			r.Timestamp = recs[0].Timestamp.Add(-time.Second)
		}
		r.Hash = recordHash(testSalt, &r)
		line, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line...)
		prev = r
	}
	write(t, l.path, string(lines))
	if err := l.writeAnchor(prev.Seq, prev.Hash); err != nil {
		t.Fatal(err)
	}
	_, err = l.Verify(t.Context())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Reason, "backwards") {
		t.Fatalf("Verify: %v, want a broken chain at seq 2, time going backwards", err)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHostileSaveRecords: somebody without the salt edits the record of a
// store save in the log, to make an older store state look like the last
// one saved (a lower store_version, another digest), or turns a version 1
// record into a save by adding the two fields, or a save into a version 1
// record by removing them. Each breaks the record's hash.
func TestHostileSaveRecords(t *testing.T) {
	digest := strings.Repeat("d", 64)
	tests := []struct {
		name string
		edit func(line string) string
	}{
		{"a lower store version", func(l string) string {
			return strings.Replace(l, `"store_version":3`, `"store_version":2`, 1)
		}},
		{"another digest", func(l string) string {
			return strings.Replace(l, digest, strings.Repeat("e", 64), 1)
		}},
		{"a save made a version 1 record", func(l string) string {
			return strings.Replace(l, `"store_version":3,"state_digest":"`+digest+`",`, ``, 1)
		}},
		{"a version 1 record made a save", func(l string) string {
			return strings.Replace(l, `"detail":"plain",`, `"detail":"plain","store_version":9,"state_digest":"`+digest+`",`, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			save := Event{Initiator: "user:ana", Action: "store.save", Secret: "clerk", Status: StatusSucceeded, StoreVersion: 3, StateDigest: digest}
			plain := Event{Initiator: "user:ana", Action: "rotate.promote", Secret: "clerk", Status: StatusSucceeded, Detail: "plain"}
			if _, err := l.AppendAll(t.Context(), []Event{plain, save, plain}); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(l.path)
			if err != nil {
				t.Fatal(err)
			}
			edited := tt.edit(string(data))
			if edited == string(data) {
				t.Fatal("the edit changed nothing")
			}
			write(t, l.path, edited)
			if _, err := l.Verify(t.Context()); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Verify after the edit = %v, want ErrChainBroken", err)
			}
			if _, _, _, err := l.Saves().Latest(t.Context(), "clerk"); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Saves.Latest after the edit = %v, want ErrChainBroken", err)
			}
		})
	}
}
