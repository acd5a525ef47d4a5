//go:build linux

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/killtest"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

var (
	killIterations = flag.Int("kill.iterations", 300, "most iterations of TestKillAnywhere per store")
	killBudget     = flag.Duration("kill.budget", 30*time.Second, "time after which TestKillAnywhere stops each store's iterations, once it ran kill.min of them (0: no limit; a soak)")
	killMin        = flag.Int("kill.min", 10, "iterations TestKillAnywhere runs per store whatever kill.budget says")
	killSeed       = flag.Uint64("kill.seed", 0, "seed of TestKillAnywhere's choices (0: a fresh one, logged)")
)

// TestKillAnywhere is issue 11's kill-anywhere harness. Each iteration
// picks an operation (rotate, rotate --abort of a rotation killed
// midway, rollback, revoke --force, revoke --expired, stage), runs it as a
// real rotor process against an exec provider backed by an issuer that
// records every key it mints and revokes, and SIGKILLs it at a random
// moment: rotor alone (its hooks and provider commands run on) or rotor
// with everything it started. After the kill, and again after the same
// command has been run once more without a kill, it checks the invariants
// of killtest.Check against the store, the issuer's ledger and the reload
// hook's log; after the rerun the audit chain must verify too, and nothing
// may be left in flight, in the store or in the audit log.
//
// The choices are drawn from -kill.seed (logged); where a kill lands
// depends on the machine's timing as well, so a failure is reported with
// the iteration's operation, delay and target, and the state it found.
// Each store runs up to -kill.iterations iterations (300), stopping early
// once -kill.budget (30s) has passed and at least -kill.min (10) ran, so
// that the normal suite stays bounded on a loaded machine (a rotor process
// is tens of milliseconds idle, several hundred under load). A soak:
//
//	go test ./cmd/rotor -run TestKillAnywhere -kill.budget=0 -kill.iterations=1000 -timeout=2h
func TestKillAnywhere(t *testing.T) {
	if err := killtest.Adopt(); err != nil {
		t.Fatalf("become subreaper: %v", err)
	}
	seed := *killSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -kill.seed=%d)", seed, seed)
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		mustRotor(t, dir, "init")
		h := newHarness(t, dir, nil, harnessFileStore)
		h.storeDir = filepath.Join(dir, ".rotor", "store")
		h.run(seed)
	})
	t.Run("vault", func(t *testing.T) {
		t.Parallel()
		srv := vaulttest.Start(t)
		dir := t.TempDir()
		_, prefix := sharedChainDir(t, srv, dir)
		if err := os.WriteFile(filepath.Join(dir, "vault.token"), []byte(srv.Token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, dir, nil, fmt.Sprintf(`store:
  type: vault
  vault:
    address: %s
    prefix: %s
    auth:
      method: token
      token_file: vault.token
audit:
  salt_file: .rotor/audit.salt
`, srv.Addr, prefix))
		h.run(seed + 1)
	})
}

// harness is one store's kill-anywhere run.
type harness struct {
	t        *testing.T
	dir      string
	env      []string
	ledger   string
	reloads  string
	storeDir string // file store: where no temporary file may stay
	// took is a running estimate of each operation's duration, the
	// window the kill moments are drawn from.
	took   map[string]time.Duration
	stages int
	// killedAt is the store version a killed run left, so that a rerun
	// that saved is told from one that did not.
	killedAt store.Version
	// spent is the time spent running rotor, and checking.
	running, checking time.Duration
}

func newHarness(t *testing.T, dir string, env []string, storeCfg string) *harness {
	h := &harness{t: t, dir: dir, env: env, ledger: filepath.Join(dir, "issuer.ledger"), reloads: filepath.Join(dir, "reloads.log"),
		took: map[string]time.Duration{}}
	cfg := storeCfg + fmt.Sprintf(`secrets:
  - name: demo
    provider: exec
    exec:
      command: [%s, %s]
    reload:
      - command: [sh, -c, 'printf "%%s\n" "$ROTOR_KEY_ID" >> %s']
`, issuerBin, h.ledger, h.reloads)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// ops are the operations an iteration picks from, with their weights.
var killOps = []struct {
	name   string
	weight int
}{
	{"rotate", 4}, {"abort", 2}, {"rollback", 2}, {"revoke-force", 2}, {"revoke-expired", 1}, {"stage", 1},
}

func (h *harness) args(op string) []string {
	switch op {
	case "rotate":
		return []string{"rotate", "demo"}
	case "abort":
		return []string{"rotate", "demo", "--abort"}
	case "rollback":
		return []string{"rollback", "demo"}
	case "revoke-force":
		return []string{"revoke", "demo", "--force"}
	case "revoke-expired":
		return []string{"revoke", "--expired"}
	case "stage":
		return []string{"stage", "demo", "--from-stdin"}
	}
	h.t.Fatalf("unknown op %s", op)
	return nil
}

func (h *harness) run(seed uint64) {
	t := h.t
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// The first rotation, whole: from here on current is never empty.
	if r := h.exec("rotate", h.args("rotate"), "", time.Hour, killtest.Alone); r.Killed || r.Code != 0 {
		t.Fatalf("first rotation: %+v", r)
	}
	h.check("after the first rotation", true)
	total := 0
	for _, o := range killOps {
		total += o.weight
	}
	kills := map[string]int{}
	start := time.Now()
	done := 0
	for i := range *killIterations {
		if *killBudget > 0 && i >= *killMin && time.Since(start) > *killBudget {
			break
		}
		done++
		n := rng.IntN(total)
		op := killOps[0].name
		for _, o := range killOps {
			if n < o.weight {
				op = o.name
				break
			}
			n -= o.weight
		}
		target := killtest.Target(rng.IntN(2))
		stdin := ""
		if op == "stage" {
			h.stages++
			v, err := killtest.Mint(h.ledger, fmt.Sprintf("operator-stage-%d", h.stages))
			if err != nil {
				t.Fatal(err)
			}
			stdin = v
		}
		if op == "abort" {
			// Something to abort: a rotation killed midway (or not).
			d := h.delay(rng, "rotate")
			r := h.exec("rotate", h.args("rotate"), "", d, target)
			h.check(fmt.Sprintf("iteration %d: rotate killed (%s) after %s before abort", i, target, d), !r.Killed)
		}
		d := h.delay(rng, op)
		where := fmt.Sprintf("iteration %d: %s killed (%s) after %s", i, op, target, d)
		r := h.exec(op, h.args(op), stdin, d, target)
		if r.Killed {
			kills[op]++
		}
		h.check(where, false)
		// The same command again, not killed, converges.
		again := h.exec(op, h.args(op), stdin, time.Hour, killtest.Alone)
		h.accept(where, op, again)
		h.check(where+", then run again", true)
	}
	t.Logf("%d iterations, kills per operation %v; %s running rotor, %s checking", done, kills, h.running.Round(time.Millisecond), h.checking.Round(time.Millisecond))
}

// runResult is a finished rotor process and its output.
type runResult struct {
	killtest.Result
	stderr string
}

// exec runs rotor with args, killed after delay (target), and updates the
// duration estimate of op when it was not killed.
func (h *harness) exec(op string, args []string, stdin string, delay time.Duration, target killtest.Target) runResult {
	h.t.Helper()
	cmd := exec.Command(rotorBin, args...)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), append([]string{"ROTOR_INITIATOR=user:killtest"}, h.env...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	start := time.Now()
	r, err := killtest.Run(cmd, delay, target)
	h.running += time.Since(start)
	if err != nil {
		h.t.Fatalf("rotor %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	if !r.Killed {
		// An exponential average of the unkilled runs.
		if old := h.took[op]; old == 0 {
			h.took[op] = r.Took
		} else {
			h.took[op] = (3*old + r.Took) / 4
		}
	}
	return runResult{Result: r, stderr: errb.String()}
}

// delay draws a kill moment for op: uniform over 1.3 times its usual
// duration, so that most runs are hit somewhere and some finish.
func (h *harness) delay(rng *rand.Rand, op string) time.Duration {
	d := h.took[op]
	if d == 0 {
		d = 50 * time.Millisecond
	}
	return time.Duration(rng.Int64N(int64(d) * 13 / 10))
}

// accept fails the test unless the rerun of op ended as a rerun may:
// success, or a refusal by a safety rule (nothing to roll back to, a
// staged key already in use, a key within its grace period), or, for an
// abort, nothing left to abort.
func (h *harness) accept(where, op string, r runResult) {
	h.t.Helper()
	switch {
	case r.Code == exitOK, r.Code == exitRefused:
	case op == "abort" && r.Code == exitError && strings.Contains(r.stderr, "no rotation in progress"):
	default:
		h.t.Fatalf("%s: the rerun exited %d, want 0, or 7 for a refusal:\n%s", where, r.Code, r.stderr)
	}
}

// check reads the store, the ledger, the reload log and the audit chain
// and fails the test with every invariant they break.
func (h *harness) check(where string, settled bool) {
	t := h.t
	t.Helper()
	start := time.Now()
	defer func() { h.checking += time.Since(start) }()
	ctx := context.Background()
	a, closeApp, err := h.open()
	if err != nil {
		t.Fatalf("%s: open: %v", where, err)
	}
	defer closeApp()
	s, ver, err := a.engine.Load(ctx, "demo")
	if err != nil {
		t.Fatalf("%s: load: %v", where, err)
	}
	var open []rotation.OpenOperation
	if settled {
		// The chain is read whole (with a shared chain, one request per
		// batch), so only once per iteration, after the rerun.
		if _, err := a.audit.Verify(ctx); err != nil {
			t.Fatalf("%s: audit verify: %v", where, err)
		}
		if open, err = openOperations(ctx, a.audit); err != nil {
			t.Fatalf("%s: read audit: %v", where, err)
		}
	}
	led, err := killtest.ReadLedger(h.ledger)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(h.reloads)
	if err != nil {
		t.Fatalf("%s: reload log: %v", where, err)
	}
	st := killtest.State{
		Secret: s, Ledger: led, Reloaded: strings.Fields(string(b)), Open: open, Settled: settled,
		Foreign: func(id string) bool { return strings.HasPrefix(id, "operator-") },
	}
	errs := killtest.Check(st)
	if !settled {
		h.killedAt = ver
	}
	// A save removes the temporary files of a killed one: once the rerun
	// saved, none may be left.
	if settled && h.storeDir != "" && ver != h.killedAt {
		ents, err := os.ReadDir(h.storeDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), "tmp") || strings.HasPrefix(e.Name(), ".demo+") {
				errs = append(errs, fmt.Errorf("temporary file %s left in the store directory", e.Name()))
			}
		}
	}
	if len(errs) > 0 {
		var msg strings.Builder
		for _, e := range errs {
			msg.WriteString("\n  " + e.Error())
		}
		rot := "none"
		if r := s.Rotation; r != nil {
			rot = fmt.Sprintf("%s %s step %q intent %v", r.OpKind(), r.ID, r.Step, r.Intent)
		}
		t.Fatalf("%s: invariants broken:%s\nstate: current %s previous %s pending %s next %s retired %d orphans %d revoked %d reloaded %s operation %s",
			where, msg.String(), store.KeyID(s.Current), store.KeyID(s.Previous), store.KeyID(s.Pending), store.KeyID(s.Next), len(s.Retired), len(s.Orphans), len(s.Revoked), s.ReloadedKeyID, rot)
	}
}

func (h *harness) getenv(k string) string {
	for _, kv := range h.env {
		if name, v, ok := strings.Cut(kv, "="); ok && name == k {
			return v
		}
	}
	return os.Getenv(k)
}

// harnessFileStore is the store and audit part of the harness's config
// on the file store, as `rotor init` lays it out.
const harnessFileStore = `store:
  type: file
  file:
    dir: .rotor/store
    identity: .rotor/identity.txt
audit:
  path: .rotor/audit.log
  salt_file: .rotor/audit.salt
  anchor: .rotor/store/audit.head
`

// TestKilledAfterMint is issue 11's first sequence, deterministic: rotor is
// killed after the issuer minted a key and before it was saved. The issuer
// must end up with no key that is in no slot: a rerun recovers the very key
// the killed run minted (the exec protocol's idempotent mint), and an abort
// retires it for revocation.
func TestKilledAfterMint(t *testing.T) {
	for _, then := range []string{"rotate", "abort"} {
		t.Run(then, func(t *testing.T) {
			dir := t.TempDir()
			mustRotor(t, dir, "init")
			h := newHarness(t, dir, nil, harnessFileStore)
			mustRotor(t, dir, "rotate", "demo")
			if r := rotor(t, dir, []string{"ROTOR_FAULT=crash-after:minted"}, "rotate", "demo"); !r.killed {
				t.Fatalf("not killed after mint: exit %d\n%s", r.code, r.stderr)
			}
			led, err := killtest.ReadLedger(h.ledger)
			if err != nil {
				t.Fatal(err)
			}
			if len(led.Minted) != 2 {
				t.Fatalf("issuer minted %d keys, want 2 (the first rotation's and the killed run's)", len(led.Minted))
			}
			lost := led.Minted[1]
			h.check("killed after mint", false)
			if then == "rotate" {
				mustRotor(t, dir, "rotate", "demo")
			} else {
				mustRotor(t, dir, "rotate", "demo", "--abort")
			}
			h.check("after "+then, true)
			s, _, err := h.load()
			if err != nil {
				t.Fatal(err)
			}
			led, err = killtest.ReadLedger(h.ledger)
			if err != nil {
				t.Fatal(err)
			}
			if len(led.Minted) != 2 {
				t.Fatalf("issuer minted %d keys, want 2: the rerun must not mint another", len(led.Minted))
			}
			switch {
			case then == "rotate" && (s.Current == nil || s.Current.Value != lost.Value):
				t.Fatalf("the rerun did not make the key minted by the killed run current")
			case then == "abort" && !slices.ContainsFunc(s.Retired, func(k store.Key) bool { return k.Value == lost.Value }):
				t.Fatalf("the abort did not retire the key minted by the killed run")
			}
		})
	}
}

// open wires rotor in this process, as a command would, to read what the
// processes left; the function returned closes what it opened.
func (h *harness) open() (*app, func(), error) {
	g := &globals{env: &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: h.getenv, now: time.Now},
		config: filepath.Join(h.dir, "rotor.yaml")}
	closeAll := func() {
		for _, c := range g.closers {
			_ = c.Close()
		}
	}
	a, err := g.open(context.Background())
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return a, closeAll, nil
}

// load reads the secret in-process.
func (h *harness) load() (*store.Secret, store.Version, error) {
	a, closeApp, err := h.open()
	if err != nil {
		return nil, "", err
	}
	defer closeApp()
	return a.engine.Load(context.Background(), "demo")
}
