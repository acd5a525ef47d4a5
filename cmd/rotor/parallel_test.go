package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestParallelDueRotatesEachOnce: two `rotor rotate --due --parallel 6`
// processes start at once over 24 secrets, 12 of them due. Every due
// secret is rotated exactly once (one rotate.finish, one reload), no
// secret that is not due is touched, and the rotations of one process
// really overlap: each reload hook waits until a second one has started,
// which a sequential run never reaches.
func TestParallelDueRotatesEachOnce(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	const n = 24
	var b strings.Builder
	b.WriteString(strings.Split(defaultConfig, "secrets:\n")[0] + "secrets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%02d\n    provider: random\n", i)
	}
	write := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(b.String())
	// The even secrets get their first key now, so they are not due.
	for i := 0; i < n; i += 2 {
		mustRotor(t, dir, "rotate", fmt.Sprintf("s%02d", i))
	}
	baseline := finishes(t, dir)

	// From now on every reload is recorded, and waits (bounded by the
	// hook's timeout) until two reloads have started.
	hook := `    reload:
      - command: [sh, -c, 'echo "$ROTOR_SECRET" >> reloads.log; mkdir -p started; : > "started/$ROTOR_SECRET"; until [ "$(ls started | wc -l)" -ge 2 ]; do sleep 0.01; done']
        timeout: 2m
`
	write(strings.ReplaceAll(b.String(), "    provider: random\n", "    provider: random\n"+hook))

	var wg sync.WaitGroup
	results := make([]procResult, 2)
	for i := range results {
		wg.Go(func() { results[i] = rotor(t, dir, nil, "rotate", "--due", "--parallel", "6") })
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 && r.code != exitInProgress {
			t.Fatalf("rotate --due exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}

	reloads := map[string]int{}
	for _, l := range lines(filepath.Join(dir, "reloads.log")) {
		reloads[l]++
	}
	after := finishes(t, dir)
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		want := 1
		if i%2 == 0 {
			want = 0
		}
		if got := after[name] - baseline[name]; got != want || reloads[name] != want {
			t.Errorf("%s: %d finished rotations and %d reloads, want %d of each", name, got, reloads[name], want)
		}
	}
	outs := append(results[:], mustRotor(t, dir, "audit", "verify"))
	leakCheck(t, dir, outs)
}

// finishes counts the rotate.finish audit records per secret.
func finishes(t *testing.T, dir string) map[string]int {
	t.Helper()
	tail := mustRotor(t, dir, "audit", "tail", "-n", "0", "-o", "json")
	m := map[string]int{}
	dec := json.NewDecoder(strings.NewReader(tail.stdout))
	for dec.More() {
		var r struct {
			Action string `json:"action"`
			Secret string `json:"secret"`
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("audit tail: %v", err)
		}
		if r.Action == "rotate.finish" {
			m[r.Secret]++
		}
	}
	return m
}
