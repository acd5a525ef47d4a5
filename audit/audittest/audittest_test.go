package audittest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
)

// TestRunMemory runs the suite against the in-memory backend: the suite
// must not reject a backend that honours the contract.
func TestRunMemory(t *testing.T) {
	audittest.Run(t, func(*testing.T) audit.Backend { return &audittest.Memory{} })
}

const brokenEnv = "AUDITTEST_BROKEN_BACKEND"

// TestRunDetectsBrokenBackends runs the suite, in a child process, against
// backends with one flaw each and checks that the subtests written for
// that flaw fail.
func TestRunDetectsBrokenBackends(t *testing.T) {
	tests := []struct {
		flaw string
		want []string
	}{
		{"plain-not-found", []string{"GetUnknownKeyIsNotExist"}},
		{"overwrite-on-create", []string{"CreateTwiceConflicts", "ConcurrentCreatesOneWins"}},
		{"no-cas", []string{"StaleVersionConflicts", "PutMissingKeyWithVersionConflicts", "ConcurrentSwapsOneWins", "ChainWritersRaceForOneBatch"}},
		{"check-then-write", []string{"ConcurrentCreatesOneWins"}},
		{"alias", []string{"ValuesAreCopied"}},
		{"trim-value", []string{"ValuesRoundTrip"}},
		{"short-keys", []string{"KeysAreDistinct"}},
		{"hide-writes", []string{"ChainTamperingDetected"}},
	}
	for _, tc := range tests {
		t.Run(tc.flaw, func(t *testing.T) {
			t.Parallel()
			run := "^TestBrokenBackendHelper$/^(" + strings.Join(tc.want, "|") + ")$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite against a backend with flaw %s: err = %v, want a failing run\n%s", tc.flaw, err, out)
			}
			for _, sub := range tc.want {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenBackendHelper/"+sub+" ") {
					t.Errorf("subtest %s did not fail against a backend with flaw %s\n%s", sub, tc.flaw, out)
				}
			}
		})
	}
}

// TestBrokenBackendHelper is run by TestRunDetectsBrokenBackends in a
// child process; on its own it does nothing.
func TestBrokenBackendHelper(t *testing.T) {
	flaw := os.Getenv(brokenEnv)
	if flaw == "" {
		return
	}
	audittest.Run(t, func(*testing.T) audit.Backend { return &flawed{flaw: flaw, vals: map[string]*val{}} })
}

type val struct {
	data    []byte
	version int
}

// flawed is an in-memory backend with one deliberate flaw.
type flawed struct {
	flaw string
	mu   sync.Mutex
	vals map[string]*val
}

func (f *flawed) key(k string) string {
	if f.flaw == "short-keys" && len(k) > 9 {
		return k[:9]
	}
	return k
}

func (f *flawed) Get(_ context.Context, key string) ([]byte, audit.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vals[f.key(key)]
	if !ok {
		if f.flaw == "plain-not-found" {
			return nil, audit.NoVersion, fmt.Errorf("no value for %s", key)
		}
		return nil, audit.NoVersion, audit.ErrNotExist
	}
	if f.flaw == "alias" {
		return v.data, audit.Version(strconv.Itoa(v.version)), nil
	}
	if f.flaw == "hide-writes" && v.version > 1 {
		// Serves the first version it was given, as a cache would.
		return append([]byte(nil), v.data...), "1", nil
	}
	return append([]byte(nil), v.data...), audit.Version(strconv.Itoa(v.version)), nil
}

func (f *flawed) Put(_ context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	f.mu.Lock()
	v, ok := f.vals[f.key(key)]
	current := audit.NoVersion
	if ok {
		current = audit.Version(strconv.Itoa(v.version))
	}
	check := current == expected
	switch f.flaw {
	case "overwrite-on-create":
		check = expected == audit.NoVersion || check
	case "no-cas":
		check = true
	case "check-then-write":
		f.mu.Unlock()
		runtime.Gosched()
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if !check {
		return audit.NoVersion, audit.ErrConflict
	}
	n := 1
	if v, ok := f.vals[f.key(key)]; ok {
		n = v.version + 1
	}
	data := append([]byte(nil), value...)
	switch f.flaw {
	case "alias":
		data = value
	case "trim-value":
		data = []byte(strings.TrimSuffix(string(value), "\n"))
	case "hide-writes":
		if old, ok := f.vals[f.key(key)]; ok {
			data = old.data
		}
	}
	f.vals[f.key(key)] = &val{data: data, version: n}
	return audit.Version(strconv.Itoa(n)), nil
}
