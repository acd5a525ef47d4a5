package audittest

import (
	"bufio"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
)

// The environment of the writer processes [RunProcesses] starts.
const (
	childEnv  = "ROTOR_AUDITTEST_CHILD"
	prefixEnv = "ROTOR_AUDITTEST_PREFIX"
	countEnv  = "ROTOR_AUDITTEST_N"
	// SeedEnv replays the kill scenario's random moments: its log prints
	// the seed it used.
	SeedEnv = "ROTOR_AUDITTEST_SEED"
)

// InChild reports whether this test binary runs as one of the writer
// processes [RunProcesses] starts. A backend package's TestMain uses it
// to skip starting its server: the writers reach the parent's through
// [Processes.Env].
func InChild() bool { return os.Getenv(childEnv) != "" }

// Processes is what the multi-process scenarios need from a backend's
// test package.
type Processes struct {
	// Open returns the backend under prefix (empty the first time a
	// prefix is used). It is called in the test process and in the
	// writer processes; in a writer, the package's TestMain has not
	// started its server (see [InChild]), so Open finds the service
	// through Env.
	Open func(t testing.TB, prefix string) audit.Backend
	// Env is added to the writers' environment: the service's address
	// and credentials.
	Env []string
}

// Event is event i of writer who, with the detail "who#i" that the
// scenarios use to find each acknowledged event in the chain.
func Event(who string, i int) audit.Event {
	return audit.Event{Initiator: who, Action: "rotate.promote", Secret: "clerk", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("%s#%d", who, i)}
}

// RunProcesses runs the multi-process scenarios as subtests of t, each
// chain under its own prefix (made from prefix):
//
//   - ConcurrentWriters: three processes, each with its own [audit.Shared],
//     released at once: one gap-free chain that verifies, holding every
//     event once and each writer's in order.
//   - WriterKilledMidAppend: writers killed with SIGKILL at seeded random
//     moments (see [SeedEnv]): after each kill the chain verifies; at the
//     end it holds every acknowledged event and the next append continues
//     it.
//
// t must be the top-level test function, and RunProcesses the first thing
// it does: the writers re-run that test, and RunProcesses turns them into
// writers.
func RunProcesses(t *testing.T, prefix string, p Processes) {
	if InChild() {
		childAppend(t, p)
		return
	}
	test := t.Name()
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, test, prefix+"c", p) })
	t.Run("WriterKilledMidAppend", func(t *testing.T) { testWriterKilled(t, test, prefix+"k", p) })
}

func openShared(t testing.TB, p Processes, prefix string) *audit.Shared {
	t.Helper()
	s, err := audit.NewShared(p.Open(t, prefix), Salt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writer returns the command that runs test as writer id, appending n
// events under prefix.
func writer(t *testing.T, test, id, prefix string, n int, p Processes) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), p.Env...), childEnv+"="+id, prefixEnv+"="+prefix, countEnv+"="+strconv.Itoa(n))
	return cmd
}

// childAppend is the writer's side: it waits for its stdin to close, then
// appends its events, printing "ack <detail>" after each Append returns.
func childAppend(t *testing.T, p Processes) {
	id := os.Getenv(childEnv)
	s := openShared(t, p, os.Getenv(prefixEnv))
	n, _ := strconv.Atoi(os.Getenv(countEnv))
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := Event(id, i)
		if _, err := s.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := os.Stdout.WriteString("ack " + e.Detail + "\n"); err != nil {
			return
		}
	}
}

func testConcurrentWriters(t *testing.T, test, prefix string, p Processes) {
	const procs, each = 3, 15
	var (
		wg    sync.WaitGroup
		gates []io.Closer
	)
	for w := range procs {
		cmd := writer(t, test, fmt.Sprintf("p%d", w), prefix, each, p)
		gate, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		gates = append(gates, gate)
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Errorf("writer %d: %v\n%s", w, err, out.String())
			}
		})
	}
	// Every writer waits for its stdin to close: closing them together
	// releases them together, so their appends overlap.
	for _, g := range gates {
		g.Close()
	}
	wg.Wait()
	s := openShared(t, p, prefix)
	rep, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != procs*each || rep.Anchored != rep.Records {
		t.Fatalf("Verify = %+v, want %d records, the head at the last", rep, procs*each)
	}
	checkEvents(t, s, nil)
}

func testWriterKilled(t *testing.T, test, prefix string, p Processes) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(SeedEnv); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (%s=%d replays it)", seed, SeedEnv, seed)
	rng := mrand.New(mrand.NewPCG(seed, 0))
	acked := map[string]bool{}
	for round := range 3 {
		cmd := writer(t, test, fmt.Sprintf("r%d", round), prefix, 200, p)
		cmd.Stdin = strings.NewReader("")
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 1 + rng.IntN(30)
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			a, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			acked[a] = true
			if n++; n == killAt {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if rep, err := openShared(t, p, prefix).Verify(t.Context()); err != nil {
			t.Fatalf("round %d: Verify after the kill: %v (%+v)", round, err, rep)
		}
	}
	s := openShared(t, p, prefix)
	last, err := s.Append(t.Context(), Event("after", 0))
	if err != nil {
		t.Fatalf("Append after the kills: %v", err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || rep.Records != last.Seq || rep.Anchored != last.Seq {
		t.Fatalf("Verify = %+v, %v; want %d records, the head at the last", rep, err, last.Seq)
	}
	checkEvents(t, s, acked)
}

// checkEvents checks that the chain holds every event at most once and
// each writer's in order, and that it holds every event in want.
func checkEvents(t *testing.T, s *audit.Shared, want map[string]bool) {
	t.Helper()
	recs, err := s.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	last := map[string]int{}
	for _, r := range recs {
		who, n, ok := strings.Cut(r.Detail, "#")
		i, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue
		}
		if found[r.Detail] {
			t.Fatalf("%q is in the chain twice", r.Detail)
		}
		found[r.Detail] = true
		if prev, seen := last[who]; seen && i <= prev {
			t.Fatalf("%q follows #%d of the same writer", r.Detail, prev)
		}
		last[who] = i
	}
	for e := range want {
		if !found[e] {
			t.Errorf("acknowledged event %q is not in the chain", e)
		}
	}
}
