package audit

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSectionsAgreeWithWalk checks that a log checked in sections gives
// exactly what the one-pass walk gives, for untouched logs and for logs
// tampered with in every way the verifier names, wherever the cuts fall:
// records, head, the anchored record's hash and the first problem with
// its line and seq.
func TestSectionsAgreeWithWalk(t *testing.T) {
	l := newTestLog(t)
	recs := appendN(t, l, 40)
	clean := readFile(t, l.path)
	lines := bytes.SplitAfter(clean, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty string after the last newline

	resign := func(r Record) []byte {
		r.Hash = recordHash(testSalt, &r)
		line, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	replace := func(i int, line []byte) []byte {
		ls := append([][]byte(nil), lines...)
		ls[i] = line
		return join(ls)
	}
	// Each mutation tampers with the log at record i (1 ≤ i < 39).
	mutations := map[string]func(rng *rand.Rand, i int) []byte{
		"untouched": func(*rand.Rand, int) []byte { return clean },
		"byte flipped": func(rng *rand.Rand, i int) []byte {
			b := bytes.Clone(lines[i])
			b[rng.IntN(len(b)-1)] ^= 1 << rng.IntN(7)
			return replace(i, b)
		},
		"line deleted": func(_ *rand.Rand, i int) []byte {
			return join(append(append([][]byte(nil), lines[:i]...), lines[i+1:]...))
		},
		"lines swapped": func(_ *rand.Rand, i int) []byte {
			ls := append([][]byte(nil), lines...)
			ls[i], ls[i+1] = ls[i+1], ls[i]
			return join(ls)
		},
		"line repeated": func(_ *rand.Rand, i int) []byte {
			ls := append(append([][]byte(nil), lines[:i+1]...), lines[i:]...)
			return join(ls)
		},
		"garbage line": func(_ *rand.Rand, i int) []byte {
			ls := append(append(append([][]byte(nil), lines[:i]...), []byte("not a record\n")), lines[i:]...)
			return join(ls)
		},
		"long line": func(_ *rand.Rand, i int) []byte {
			long := append(bytes.Repeat([]byte("a"), maxLineSize+10), '\n')
			ls := append(append(append([][]byte(nil), lines[:i]...), long), lines[i:]...)
			return join(ls)
		},
		"truncated": func(rng *rand.Rand, i int) []byte {
			return clean[:len(join(lines[:i]))+rng.IntN(len(lines[i]))]
		},
		"seq re-signed": func(_ *rand.Rand, i int) []byte {
			r := recs[i]
			r.Seq += 2
			return replace(i, resign(r))
		},
		"prev_hash re-signed": func(_ *rand.Rand, i int) []byte {
			r := recs[i]
			r.PrevHash = recs[i-1].PrevHash
			return replace(i, resign(r))
		},
		"time back re-signed": func(_ *rand.Rand, i int) []byte {
			r := recs[i]
			r.Timestamp = recs[i-1].Timestamp.Add(-time.Second)
			return replace(i, resign(r))
		},
	}
	type outcome struct {
		n              uint64
		head, anchored string
		err            string
		line           int
		seq            uint64
	}
	describe := func(n uint64, head, anchored string, err error) outcome {
		o := outcome{n: n, head: head, anchored: anchored}
		if err != nil {
			o.err = err.Error()
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ChainError", err)
			}
			o.line, o.seq = ce.Line, ce.Seq
		}
		return o
	}
	rng := rand.New(rand.NewPCG(14, 2))
	for name, mutate := range mutations {
		for range 12 {
			i := 1 + rng.IntN(len(recs)-2)
			log := mutate(rng, i)
			anchorSeq := uint64(rng.IntN(len(recs) + 1))
			var anchored string
			n, head, err := l.walk(t.Context(), bytes.NewReader(log), func(r *rawRecord) {
				if r.seq == anchorSeq {
					anchored = string(r.str[fHash])
				}
			})
			if err != nil && !errors.Is(err, ErrIncompleteLine) {
				anchored = ""
			}
			want := describe(n, head, anchored, err)
			if name != "untouched" && want.err == "" {
				t.Fatalf("%s at record %d: walk found no problem", name, i)
			}
			for k := 2; k <= 9; k++ {
				n, head, anchored, err := walkSections(t.Context(), bytes.NewReader(log), int64(len(log)), k, testSalt, anchorSeq)
				if got := describe(n, head, anchored, err); got != want {
					t.Fatalf("%s at record %d, %d sections:\n got %+v\nwant %+v", name, i, k, got, want)
				}
			}
		}
	}
}

// TestCutLinesCuts keeps TestSectionsAgreeWithWalk honest: the log is
// really cut into the sections asked for, each starting a line.
func TestCutLinesCuts(t *testing.T) {
	l := newTestLog(t)
	appendN(t, l, 40)
	log := readFile(t, l.path)
	for k := 1; k <= 9; k++ {
		starts, err := cutLines(bytes.NewReader(log), int64(len(log)), k)
		if err != nil {
			t.Fatal(err)
		}
		if len(starts) != k {
			t.Fatalf("%d sections asked, %d cut", k, len(starts))
		}
		for _, s := range starts[1:] {
			if log[s-1] != '\n' {
				t.Fatalf("section at %d does not start a line", s)
			}
		}
	}
}
