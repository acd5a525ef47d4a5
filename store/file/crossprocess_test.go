package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// Environment of the child processes TestCrossProcessIncrements starts.
const (
	helperDirEnv      = "ROTOR_FILE_TEST_DIR"
	helperIdentityEnv = "ROTOR_FILE_TEST_IDENTITY"
)

const (
	processes            = 4
	incrementsPerProcess = 10
	counterSecret        = "counter"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		if err := incrementInChild(dir, os.Getenv(helperIdentityEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrossProcessIncrements has several processes, each with its own
// Store, increment one counter with load-modify-save loops. Only a lock that
// holds across processes keeps every increment.
func TestCrossProcessIncrements(t *testing.T) {
	st, dir, identity := newTestStore(t)
	s := testSecret(counterSecret)
	s.Current.Meta = map[string]string{"counter": "0"}
	if _, err := st.Save(t.Context(), s, store.NoVersion); err != nil {
		t.Fatal(err)
	}

	cmds := make([]*exec.Cmd, processes)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0])
		cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperIdentityEnv+"="+identity)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}

	got, _, err := st.Load(t.Context(), counterSecret)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(processes * incrementsPerProcess); got.Current.Meta["counter"] != want {
		t.Errorf("counter = %s, want %s", got.Current.Meta["counter"], want)
	}
}

// incrementInChild is the body of a child process of
// TestCrossProcessIncrements.
func incrementInChild(dir, identity string) error {
	st, err := New(dir, identity)
	if err != nil {
		return err
	}
	ctx := context.Background()
	for range incrementsPerProcess {
		if err := incrementOnce(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// incrementOnce retries until its save wins. Each conflict means another
// increment succeeded, so the loop ends after at most all of them.
func incrementOnce(ctx context.Context, st *Store) error {
	for range processes*incrementsPerProcess + 1 {
		s, v, err := st.Load(ctx, counterSecret)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(s.Current.Meta["counter"])
		if err != nil {
			return err
		}
		s.Current.Meta["counter"] = strconv.Itoa(n + 1)
		_, err = st.Save(ctx, s, v)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return errors.New("increment: more conflicts than increments")
}

// TestSaveAfterAnotherProcessSaves checks that what a Store remembers of
// the files it wrote does not outlive another process's save: the Store
// that created the counter must see the version the child processes left,
// refuse its own stale version and decrypt the file to learn the new one.
func TestSaveAfterAnotherProcessSaves(t *testing.T) {
	st, dir, identity := newTestStore(t)
	s := testSecret(counterSecret)
	s.Current.Meta = map[string]string{"counter": "0"}
	v1, err := st.Save(t.Context(), s, store.NoVersion)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperIdentityEnv+"="+identity)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child process: %v", err)
	}

	if _, err := st.Save(t.Context(), s, v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save at the version this Store wrote, after another process saved: err = %v, want store.ErrConflict", err)
	}
	want := store.Version(strconv.Itoa(1 + incrementsPerProcess))
	if _, err := st.Save(t.Context(), s, want); err != nil {
		t.Errorf("Save at the version the other process left (%s): %v", want, err)
	}
}
