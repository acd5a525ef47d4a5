package audit

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	crashChildEnv = "ROTOR_AUDIT_CRASH_CHILD"
	crashSeedEnv  = "ROTOR_AUDIT_CRASH_SEED"
	// crashWriters is how many goroutines each child appends from, and
	// crashMaxAppends how many records each writes at most, which bounds
	// the test if no kill lands.
	crashWriters    = 4
	crashMaxAppends = 400
)

// TestGroupCommitLosesNothingOnSIGKILL runs processes that append from
// several goroutines and report each Append that returned, kills them with
// SIGKILL at random moments (seeded; set ROTOR_AUDIT_CRASH_SEED to replay a
// run), and then checks that every reported record is in the log exactly
// once, that the log verifies, and that the next Append continues it.
func TestGroupCommitLosesNothingOnSIGKILL(t *testing.T) {
	if id := os.Getenv(crashChildEnv); id != "" {
		crashChild(t, id)
		return
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", crashSeedEnv, err)
		}
	}
	t.Logf("seed %d (%s=%d replays this run)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	l := newTestLog(t)

	const rounds, children = 3, 3
	acked := map[string]bool{}
	for round := range rounds {
		type child struct {
			cmd  *exec.Cmd
			acks chan string
		}
		var (
			cs []*child
			wg sync.WaitGroup
		)
		for c := range children {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestGroupCommitLosesNothingOnSIGKILL$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+fmt.Sprintf("r%dc%d", round, c), childLogEnv+"="+l.path, childAnchorEnv+"="+l.anchor)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ch := &child{cmd: cmd, acks: make(chan string, 1024)}
			cs = append(cs, ch)
			wg.Go(func() {
				defer close(ch.acks)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					// The test framework prints to stdout too.
					if a, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
						ch.acks <- a
					}
				}
			})
		}
		// Kill each child once it has reported a random number of
		// appends, while the others go on writing.
		for _, ch := range cs {
			want := 1 + rng.IntN(crashWriters*crashMaxAppends/2)
			n := 0
			for a := range ch.acks {
				acked[a] = true
				if n++; n == want {
					if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
		}
		for _, ch := range cs {
			for a := range ch.acks { // acks written before the kill
				acked[a] = true
			}
			err := ch.cmd.Wait()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
		}
		wg.Wait()
		// A kill during a write may leave an incomplete last line; that
		// is the one problem Verify may report here.
		if _, err := l.Verify(t.Context()); err != nil && !errors.Is(err, ErrIncompleteLine) {
			t.Fatalf("round %d: Verify after the kills: %v", round, err)
		}
	}

	last, err := l.Append(t.Context(), event(0))
	if err != nil {
		t.Fatalf("Append after the kills: %v", err)
	}
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != last.Seq || rep.Anchored != last.Seq {
		t.Fatalf("Verify = %+v, want %d records, all anchored", rep, last.Seq)
	}
	recs, err := l.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	order := map[string]int{} // writer -> last index seen
	for _, r := range recs {
		if r.Action == ActionRecover || r.Seq == last.Seq {
			continue
		}
		if found[r.Detail] {
			t.Fatalf("%q is in the log twice", r.Detail)
		}
		found[r.Detail] = true
		writer, i := splitCrashDetail(t, r.Detail)
		if prev, ok := order[writer]; ok && i <= prev {
			t.Fatalf("%q logged after index %d of the same writer", r.Detail, prev)
		}
		order[writer] = i
	}
	for a := range acked {
		if !found[a] {
			t.Errorf("acknowledged append %q is not in the log", a)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no append was acknowledged: the test tested nothing")
	}
	t.Logf("%d acknowledged appends, %d records in the log", len(acked), rep.Records)
}

func splitCrashDetail(t *testing.T, d string) (string, int) {
	t.Helper()
	writer, i, ok := strings.Cut(d, "#")
	n, err := strconv.Atoi(i)
	if !ok || err != nil {
		t.Fatalf("unexpected record detail %q", d)
	}
	return writer, n
}

// crashChild appends from crashWriters goroutines and prints the detail of
// every record whose Append returned, one line each (one write, atomic on
// a pipe), until it is killed or has written crashMaxAppends each.
func crashChild(t *testing.T, id string) {
	l, err := Open(os.Getenv(childLogEnv), os.Getenv(childAnchorEnv), testSalt)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for g := range crashWriters {
		wg.Go(func() {
			for i := range crashMaxAppends {
				e := event(i)
				e.Detail = fmt.Sprintf("%s-g%d#%d", id, g, i)
				if _, err := l.Append(t.Context(), e); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				_, err := os.Stdout.WriteString("ack " + e.Detail + "\n")
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}
