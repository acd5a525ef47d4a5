package vaultchain_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
	"github.com/rotor-dev/rotor/audit/vaultchain"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	vaultstore "github.com/rotor-dev/rotor/store/vault"
)

// srv is the Vault dev server every test of the package shares; tests keep
// apart by prefix. Child processes started by the tests reach it through
// the environment instead of starting their own.
var srv *vaulttest.Server

const (
	childEnv  = "ROTOR_VAULTCHAIN_CHILD"
	addrEnv   = "ROTOR_VAULTCHAIN_ADDR"
	tokenEnv  = "ROTOR_VAULTCHAIN_TOKEN"
	prefixEnv = "ROTOR_VAULTCHAIN_PREFIX"
	seedEnv   = "ROTOR_VAULTCHAIN_SEED"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run())
	}
	s, stop, err := vaulttest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit/vaultchain tests need a Vault server:", err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func newBackend(t *testing.T, c *api.Client, prefix string) *vaultchain.Backend {
	t.Helper()
	b, err := vaultchain.New(vaultchain.Options{Client: c, Mount: "secret", Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newShared(t *testing.T, b audit.Backend) *audit.Shared {
	t.Helper()
	s, err := audit.NewShared(b, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Backend {
		return newBackend(t, srv.Client, uniqueName("rotortest/"))
	})
}

func event(who string, i int) audit.Event {
	return audit.Event{Initiator: who, Action: "rotate.promote", Secret: "clerk", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("%s#%d", who, i)}
}

// tokenFor returns a token holding rotor's Vault policy for role over
// prefix, as `rotor policy vault` prints it.
func tokenFor(t *testing.T, role authz.Role, prefix string) *api.Client {
	t.Helper()
	hcl, err := vaultstore.Policy(role, "secret", prefix)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("rotor-" + string(role) + "-")
	if err := srv.Client.Sys().PutPolicyWithContext(t.Context(), name, hcl); err != nil {
		t.Fatal(err)
	}
	return tokenWithPolicy(t, name)
}

func tokenWithPolicy(t *testing.T, policy string) *api.Client {
	t.Helper()
	res, err := srv.Client.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{policy}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.NewClient(res.Auth.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statusCode(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// TestRolePolicies runs the chain with each role's token: ci and admin
// append and verify, viewer verifies but cannot append, app cannot read.
func TestRolePolicies(t *testing.T) {
	prefix := uniqueName("rotortest/")
	seed := newShared(t, newBackend(t, srv.Client, prefix))
	if _, err := seed.Append(t.Context(), event("user:root", 0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		role           authz.Role
		append, verify bool
	}{
		{authz.RoleCI, true, true},
		{authz.RoleAdmin, true, true},
		{authz.RoleViewer, false, true},
		{authz.RoleApp, false, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			s := newShared(t, newBackend(t, tokenFor(t, tc.role, prefix), prefix))
			_, err := s.Append(t.Context(), event("user:"+string(tc.role), 1))
			switch {
			case tc.append && err != nil:
				t.Errorf("%s cannot append: %v", tc.role, err)
			case !tc.append && statusCode(err) != http.StatusForbidden:
				t.Errorf("%s append = %v, want a 403 from Vault", tc.role, err)
			}
			_, err = s.Verify(t.Context())
			switch {
			case tc.verify && err != nil:
				t.Errorf("%s cannot verify: %v", tc.role, err)
			case !tc.verify && statusCode(err) != http.StatusForbidden:
				t.Errorf("%s verify = %v, want a 403 from Vault", tc.role, err)
			}
		})
	}
	rep, err := seed.Verify(t.Context())
	if err != nil || rep.Records != 3 {
		t.Fatalf("Verify = %+v, %v; want the seed record and the ci and admin ones", rep, err)
	}
}

// TestTamperWithoutSalt rewrites a record with a token that may write the
// KV mount but does not hold the salt: the chain no longer verifies, and
// Vault kept the original as an older version.
func TestTamperWithoutSalt(t *testing.T) {
	prefix := uniqueName("rotortest/")
	s := newShared(t, newBackend(t, srv.Client, prefix))
	for i := range 3 {
		if _, err := s.Append(t.Context(), event("user:ana", i)); err != nil {
			t.Fatal(err)
		}
	}
	name := uniqueName("kv-writer-")
	if err := srv.Client.Sys().PutPolicyWithContext(t.Context(), name, `path "secret/data/*" { capabilities = ["create", "read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	writer := tokenWithPolicy(t, name)
	kv := writer.KVv2("secret")
	path := prefix + "/" + vaultchain.Dir + "/records/2"
	rec, err := kv.Get(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(rec.Data["v"].(string), "user:ana", "user:eve", 1)
	if _, err := kv.Put(t.Context(), path, map[string]any{"v": forged}); err != nil {
		t.Fatal(err)
	}
	fresh := newShared(t, newBackend(t, srv.Client, prefix))
	_, err = fresh.Verify(t.Context())
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Reason, "modified or forged") {
		t.Fatalf("Verify after the forgery = %v, want a forged record at seq 2", err)
	}
}

// TestProcessesAppendConcurrently runs three processes, each appending
// with its own chain value, released at once: the result is one gap-free
// chain holding every event once, each process's in order.
func TestProcessesAppendConcurrently(t *testing.T) {
	if childAppend(t) {
		return
	}
	const procs, each = 3, 15
	prefix := uniqueName("rotortest/")
	var (
		wg    sync.WaitGroup
		gates []io.Closer
	)
	for p := range procs {
		cmd := child(t, "TestProcessesAppendConcurrently", fmt.Sprintf("p%d", p), prefix, each)
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
				t.Errorf("child %d: %v\n%s", p, err, out.String())
			}
		})
	}
	// Every child waits for its stdin to close: closing them together
	// releases them together, so their appends overlap.
	for _, g := range gates {
		g.Close()
	}
	wg.Wait()
	s := newShared(t, newBackend(t, srv.Client, prefix))
	rep, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != procs*each || rep.Anchored != rep.Records {
		t.Fatalf("Verify = %+v, want %d records, the head at the last", rep, procs*each)
	}
	checkEvents(t, s, nil)
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

func child(t *testing.T, test, id, prefix string, n int) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+id, addrEnv+"="+srv.Addr, tokenEnv+"="+srv.Token, prefixEnv+"="+prefix, "ROTOR_VAULTCHAIN_N="+strconv.Itoa(n))
	return cmd
}

// childAppend is the child side of the process tests: it waits for its
// stdin to close, then appends n events, printing "ack <detail>" after
// each Append returns.
func childAppend(t *testing.T) bool {
	id := os.Getenv(childEnv)
	if id == "" {
		return false
	}
	c, err := api.NewClient(&api.Config{Address: os.Getenv(addrEnv)})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(os.Getenv(tokenEnv))
	s := newShared(t, newBackend(t, c, os.Getenv(prefixEnv)))
	n, _ := strconv.Atoi(os.Getenv("ROTOR_VAULTCHAIN_N"))
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := event(id, i)
		if _, err := s.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := os.Stdout.WriteString("ack " + e.Detail + "\n"); err != nil {
			return true
		}
	}
	return true
}

// TestWriterKilledMidAppend kills appending processes with SIGKILL at
// seeded random moments: the chain still verifies, holds every
// acknowledged event, and the next append continues it.
func TestWriterKilledMidAppend(t *testing.T) {
	if childAppend(t) {
		return
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (%s=%d replays it)", seed, seedEnv, seed)
	rng := mrand.New(mrand.NewPCG(seed, 0))
	prefix := uniqueName("rotortest/")
	acked := map[string]bool{}
	for round := range 3 {
		cmd := child(t, "TestWriterKilledMidAppend", fmt.Sprintf("r%d", round), prefix, 200)
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
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if rep, err := newShared(t, newBackend(t, srv.Client, prefix)).Verify(t.Context()); err != nil {
			t.Fatalf("round %d: Verify after the kill: %v (%+v)", round, err, rep)
		}
	}
	s := newShared(t, newBackend(t, srv.Client, prefix))
	last, err := s.Append(t.Context(), event("after", 0))
	if err != nil {
		t.Fatalf("Append after the kills: %v", err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || rep.Records != last.Seq || rep.Anchored != last.Seq {
		t.Fatalf("Verify = %+v, %v; want %d records, the head at the last", rep, err, last.Seq)
	}
	checkEvents(t, s, acked)
}
