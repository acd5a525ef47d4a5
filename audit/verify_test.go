package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestVerifyUntouchedLog(t *testing.T) {
	l := newTestLog(t)
	recs := appendN(t, l, 150)
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Report{Records: 150, Head: recs[149].Hash, Anchored: 150}
	if rep != want {
		t.Errorf("Verify = %+v, want %+v", rep, want)
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	l := newTestLog(t)
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := (Report{Head: GenesisHash}); rep != want {
		t.Errorf("Verify = %+v, want %+v", rep, want)
	}
}

// plainHash is what somebody without the salt would compute as a record's
// hash: the same input, unkeyed SHA-256.
func plainHash(r *Record) string {
	h := sha256.New()
	h.Write([]byte(r.PrevHash))
	writeCanonical(h, canonicalFields(r)...)
	return hex.EncodeToString(h.Sum(nil))
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 10
	editLine := func(i int, edit func(*Record) []byte) func(*testing.T, testLog) {
		return func(t *testing.T, l testLog) {
			lines := readLines(t, l.path)
			r := mustParse(t, lines[i-1])
			lines[i-1] = edit(&r)
			writeLines(t, l.path, lines)
		}
	}
	editAnchor := func(edit func(map[string]any)) func(*testing.T, testLog) {
		return func(t *testing.T, l testLog) {
			var m map[string]any
			if err := json.Unmarshal(readFile(t, l.anchor), &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			data, _ := json.Marshal(m)
			if err := os.WriteFile(l.anchor, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	dropLast := func(k int) func(*testing.T, testLog) {
		return func(t *testing.T, l testLog) {
			lines := readLines(t, l.path)
			writeLines(t, l.path, lines[:len(lines)-k])
		}
	}
	tests := []struct {
		name   string
		tamper func(*testing.T, testLog)
		// where the break must be reported and a phrase of the reason
		wantLine int
		wantSeq  uint64
		wantIn   string
	}{
		{
			name: "modify a field of a middle record",
			tamper: editLine(5, func(r *Record) []byte {
				r.Status = StatusSucceeded
				r.Detail = "nothing to see here"
				return mustEncode(t, *r)
			}),
			wantLine: 5, wantSeq: 5, wantIn: "modified or forged",
		},
		{
			name: "modify a field and recompute the plain SHA-256 hash",
			tamper: editLine(5, func(r *Record) []byte {
				r.Initiator = "user:somebody-else"
				r.Hash = plainHash(r)
				return mustEncode(t, *r)
			}),
			wantLine: 5, wantSeq: 5, wantIn: "modified or forged",
		},
		{
			name: "modify a record and re-key the rest of the chain with a guessed salt",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				guess := bytes.Repeat([]byte{1}, SaltSize)
				prev := mustParse(t, lines[3]).Hash
				for i := 4; i < len(lines); i++ {
					r := mustParse(t, lines[i])
					if i == 4 {
						r.Detail = "edited"
					}
					r.PrevHash = prev
					r.Hash = recordHash(guess, &r)
					prev = r.Hash
					lines[i] = mustEncode(t, r)
				}
				writeLines(t, l.path, lines)
			},
			wantLine: 5, wantSeq: 5, wantIn: "modified or forged",
		},
		{
			name: "change a record's seq",
			tamper: editLine(5, func(r *Record) []byte {
				r.Seq = 50
				return mustEncode(t, *r)
			}),
			wantLine: 5, wantSeq: 5, wantIn: "modified or forged",
		},
		{
			name: "delete a middle line",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				writeLines(t, l.path, slices.Delete(lines, 4, 5))
			},
			wantLine: 5, wantSeq: 5, wantIn: "deleted, inserted or reordered",
		},
		{
			name: "swap two lines",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				lines[3], lines[4] = lines[4], lines[3]
				writeLines(t, l.path, lines)
			},
			wantLine: 4, wantSeq: 4, wantIn: "deleted, inserted or reordered",
		},
		{
			name: "insert a forged line",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				prev := mustParse(t, lines[2])
				forged := prev
				forged.Seq = 4
				forged.Detail = "approved by the CISO"
				forged.PrevHash = prev.Hash
				forged.Hash = plainHash(&forged)
				writeLines(t, l.path, slices.Insert(lines, 3, mustEncode(t, forged)))
			},
			wantLine: 4, wantSeq: 4, wantIn: "modified or forged",
		},
		{
			name: "duplicate a line",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				writeLines(t, l.path, slices.Insert(lines, 3, lines[2]))
			},
			wantLine: 4, wantSeq: 4, wantIn: "deleted, inserted or reordered",
		},
		{
			name: "delete the first line",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				writeLines(t, l.path, lines[1:])
			},
			wantLine: 1, wantSeq: 1, wantIn: "deleted, inserted or reordered",
		},
		{
			name: "replace a middle line with garbage",
			tamper: editLine(6, func(*Record) []byte {
				return []byte(`{"seq":6,"oops"`)
			}),
			wantLine: 6, wantSeq: 6, wantIn: "not a valid record",
		},
		{
			name:     "blank a middle line",
			tamper:   editLine(6, func(*Record) []byte { return nil }),
			wantLine: 6, wantSeq: 6, wantIn: "not a valid record",
		},
		{
			name:     "truncate the last record",
			tamper:   dropLast(1),
			wantLine: 0, wantSeq: n, wantIn: "holds 9 records but the anchor records 10: the tail of the log was truncated",
		},
		{
			name:     "truncate the last three records",
			tamper:   dropLast(3),
			wantLine: 0, wantSeq: n, wantIn: "holds 7 records but the anchor records 10",
		},
		{
			name: "cut the log in the middle of the last record",
			tamper: func(t *testing.T, l testLog) {
				data := readFile(t, l.path)
				if err := os.WriteFile(l.path, data[:len(data)-20], 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantLine: 0, wantSeq: n, wantIn: "holds 9 records but the anchor records 10",
		},
		{
			name:     "empty the log file",
			tamper:   dropLast(n),
			wantLine: 0, wantSeq: n, wantIn: "holds 0 records but the anchor records 10",
		},
		{
			name: "delete the whole log file",
			tamper: func(t *testing.T, l testLog) {
				if err := os.Remove(l.path); err != nil {
					t.Fatal(err)
				}
			},
			wantLine: 0, wantSeq: n, wantIn: "is missing but the anchor records 10 records: the log was deleted",
		},
		{
			name: "modify the last record and recompute its hash with the salt",
			tamper: editLine(n, func(r *Record) []byte {
				r.Detail = "rewritten by an insider who can read the salt but not write the anchor"
				r.Hash = recordHash(testSalt, r)
				return mustEncode(t, *r)
			}),
			wantLine: 0, wantSeq: n, wantIn: "does not match the anchor",
		},
		{
			name:   "edit the anchor's seq",
			tamper: editAnchor(func(m map[string]any) { m["seq"] = 9 }),
			wantIn: "has a wrong MAC",
		},
		{
			name: "truncate the log and rewrite the anchor without the salt",
			tamper: func(t *testing.T, l testLog) {
				lines := readLines(t, l.path)
				writeLines(t, l.path, lines[:n-1])
				last := mustParse(t, lines[n-2])
				h := sha256.New()
				writeCanonical(h, anchorDomain, "9", last.Hash)
				editAnchor(func(m map[string]any) {
					m["seq"], m["hash"], m["mac"] = 9, last.Hash, hex.EncodeToString(h.Sum(nil))
				})(t, l)
			},
			wantIn: "has a wrong MAC",
		},
		{
			name:   "add a field to the anchor",
			tamper: editAnchor(func(m map[string]any) { m["note"] = "x" }),
			wantIn: "does not parse",
		},
		{
			name: "replace the anchor with garbage",
			tamper: func(t *testing.T, l testLog) {
				if err := os.WriteFile(l.anchor, []byte("not json"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantIn: "does not parse",
		},
		{
			name: "delete the anchor",
			tamper: func(t *testing.T, l testLog) {
				if err := os.Remove(l.anchor); err != nil {
					t.Fatal(err)
				}
			},
			wantIn: "is missing: it was deleted, or the anchor path changed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			appendN(t, l, n)
			if _, err := l.Verify(t.Context()); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			tt.tamper(t, l)

			_, err := l.Verify(t.Context())
			if !errors.Is(err, ErrChainBroken) {
				t.Fatalf("Verify = %v, want an error wrapping ErrChainBroken", err)
			}
			if errors.Is(err, ErrIncompleteLine) {
				t.Errorf("Verify = %v, must not be reported as an interrupted write", err)
			}
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want a *ChainError", err)
			}
			if ce.Line != tt.wantLine || ce.Seq != tt.wantSeq {
				t.Errorf("broken at line %d seq %d, want line %d seq %d (%v)", ce.Line, ce.Seq, tt.wantLine, tt.wantSeq, err)
			}
			if !strings.Contains(ce.Reason, tt.wantIn) {
				t.Errorf("reason %q does not contain %q", ce.Reason, tt.wantIn)
			}
		})
	}
}

func TestVerifyNamesMissingAnchor(t *testing.T) {
	l := newTestLog(t)
	appendN(t, l, 3)
	if err := os.Remove(l.anchor); err != nil {
		t.Fatal(err)
	}
	_, err := l.Verify(t.Context())
	if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), l.anchor) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Verify = %v, want ErrChainBroken naming the missing anchor %s", err, l.anchor)
	}
}

func TestVerifyReportsIncompleteLastLine(t *testing.T) {
	l := newTestLog(t)
	recs := appendN(t, l, 5)
	appendPartialLine(t, l)

	rep, err := l.Verify(t.Context())
	if !errors.Is(err, ErrIncompleteLine) || !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Verify = %v, want an error wrapping ErrIncompleteLine and ErrChainBroken", err)
	}
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 6 || ce.Seq != 6 {
		t.Fatalf("Verify = %v, want a *ChainError at line 6, seq 6", err)
	}
	if !strings.Contains(err.Error(), "interrupted write") {
		t.Errorf("Verify = %q, want it to say a write was interrupted", err)
	}
	if want := (Report{Records: 5, Head: recs[4].Hash, Anchored: 5}); rep != want {
		t.Errorf("Report = %+v, want %+v for the complete records", rep, want)
	}
}

// appendPartialLine leaves what a crash in the middle of writing the next
// record would: the first half of its line, and no newline.
func appendPartialLine(t *testing.T, l testLog) int {
	t.Helper()
	lines := readLines(t, l.path)
	last := mustParse(t, lines[len(lines)-1])
	next := last
	next.Seq++
	next.PrevHash = last.Hash
	next.Hash = recordHash(testSalt, &next)
	line := mustEncode(t, next)
	partial := line[:len(line)/2]
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(partial); err != nil {
		t.Fatal(err)
	}
	return len(partial)
}

func TestVerifyAcceptsAnchorBehindLog(t *testing.T) {
	// A process that stopped after fsyncing its record but before
	// replacing the anchor leaves the anchor one record behind.
	l := newTestLog(t)
	recs := appendN(t, l, 5)
	if err := l.writeAnchor(4, recs[3].Hash); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := (Report{Records: 5, Head: recs[4].Hash, Anchored: 4}); rep != want {
		t.Errorf("Verify = %+v, want %+v", rep, want)
	}
	r, err := l.Append(t.Context(), event(5))
	if err != nil {
		t.Fatalf("Append after a stale anchor: %v", err)
	}
	rep, err = l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := (Report{Records: 6, Head: r.Hash, Anchored: 6}); rep != want {
		t.Errorf("Verify after Append = %+v, want %+v", rep, want)
	}
}

func TestVerifyDetectsRewriteBehindStaleAnchor(t *testing.T) {
	// The anchor names record 4; record 4 is rewritten with the salt.
	l := newTestLog(t)
	recs := appendN(t, l, 5)
	if err := l.writeAnchor(4, recs[3].Hash); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, l.path)
	prev := recs[2].Hash
	for i := 3; i < 5; i++ {
		r := recs[i]
		r.Detail = "rewritten"
		r.PrevHash = prev
		r.Hash = recordHash(testSalt, &r)
		prev = r.Hash
		lines[i] = mustEncode(t, r)
	}
	writeLines(t, l.path, lines)
	_, err := l.Verify(t.Context())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 4 || !strings.Contains(ce.Reason, "does not match the anchor") {
		t.Fatalf("Verify = %v, want a mismatch with the anchor at seq 4", err)
	}
	if _, err := l.Append(t.Context(), event(9)); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Append = %v, want ErrChainBroken", err)
	}
}
