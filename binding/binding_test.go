package binding_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/file"
)

// chain is an audit chain under test and how to put back an older copy of
// it, as a restored backup would.
type chain struct {
	app   func() binding.Appender // a writer as a new process opens it
	saves func() *audit.Saves
	// process opens the chain as a new process does: one writer, and the
	// Saves following it (rotor's *audit.Shared and its Saves).
	process  func() (binding.Appender, *audit.Saves)
	snapshot func(t testing.TB) (restore func())
	// checkpointed reports whether the chain holds a saves checkpoint.
	checkpointed func(t testing.TB) bool
}

func logChain(t testing.TB) chain {
	dir := t.TempDir()
	logPath, anchorPath := filepath.Join(dir, "audit.log"), filepath.Join(dir, "anchor", "audit.head")
	l, err := audit.Open(logPath, anchorPath, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	return chain{
		app:     func() binding.Appender { return l },
		saves:   l.Saves,
		process: func() (binding.Appender, *audit.Saves) { return l, l.Saves() },
		checkpointed: func(t testing.TB) bool {
			_, err := os.Stat(anchorPath + ".checkpoint")
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return err == nil
		},
		snapshot: func(t testing.TB) func() {
			files := map[string][]byte{}
			for _, p := range []string{logPath, anchorPath} {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				files[p] = data
			}
			return func() {
				for p, data := range files {
					if err := os.WriteFile(p, data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
	}
}

func sharedChain(t testing.TB) chain {
	m := &audittest.Memory{}
	open := func() *audit.Shared {
		sh, err := audit.NewShared(m, audittest.Salt)
		if err != nil {
			t.Fatal(err)
		}
		return sh
	}
	return chain{
		app:   func() binding.Appender { return open() },
		saves: func() *audit.Saves { return open().Saves() },
		process: func() (binding.Appender, *audit.Saves) {
			sh := open()
			return sh, sh.Saves()
		},
		snapshot: func(testing.TB) func() {
			snap := m.Snapshot()
			return func() { m.Restore(snap) }
		},
		checkpointed: func(t testing.TB) bool {
			_, _, err := m.Get(t.Context(), "checkpoint/head")
			if err != nil && !errors.Is(err, audit.ErrNotExist) {
				t.Fatal(err)
			}
			return err == nil
		},
	}
}

// fixture is a file store bound to a chain, with the raw store for
// playing an attacker who can write the store but has no salt.
type fixture struct {
	chain
	raw  *file.Store
	dir  string
	bind func(t testing.TB) *binding.Store // a new binding, as a new process makes
}

func newFixture(t testing.TB, c chain) *fixture {
	root := t.TempDir()
	identity := filepath.Join(root, "identity.txt")
	if err := file.GenerateIdentity(identity); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "store")
	raw, err := file.New(dir, identity)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{chain: c, raw: raw, dir: dir}
	f.bind = func(t testing.TB) *binding.Store {
		app, saves := c.process()
		b, err := binding.New(binding.Options{Store: raw, Saves: saves, Appender: app, Salt: audittest.Salt, Initiator: "user:ana"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return f
}

func chains(t *testing.T) map[string]func(testing.TB) chain {
	return map[string]func(testing.TB) chain{"log": logChain, "shared": sharedChain}
}

const secretName = "demo"

func keyN(i int) *store.Key {
	return &store.Key{Value: "sk_test_binding_value_" + strings.Repeat("x", i), ID: "0123456789abcde" + string("0123456789abcdef"[i%16]),
		CreatedAt: time.Date(2026, 11, 30, 0, 0, i, 0, time.UTC)}
}

// saveKeys saves n states of the secret through b, each with another
// current key, and returns the last version.
func saveKeys(t testing.TB, b *binding.Store, from, n int) store.Version {
	t.Helper()
	s, v, err := b.Load(t.Context(), secretName)
	if errors.Is(err, store.ErrNotFound) {
		s, v, err = &store.Secret{Name: secretName}, store.NoVersion, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		s.Current = keyN(i)
		if v, err = b.Save(t.Context(), s, v); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
	}
	return v
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantTampered(t *testing.T, b *binding.Store, why string) {
	t.Helper()
	s, _, err := b.Load(t.Context(), secretName)
	if !errors.Is(err, binding.ErrTampered) {
		t.Fatalf("Load after %s = %v, %v; want an error wrapping ErrTampered", why, s, err)
	}
	for i := range 8 {
		if strings.Contains(err.Error(), keyN(i).Value) {
			t.Fatalf("the refusal %q holds a key value", err)
		}
	}
}

func TestSavesAreSealedAndRecorded(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			b := f.bind(t)
			saveKeys(t, b, 0, 3)
			s, _, err := f.bind(t).Load(t.Context(), secretName)
			if err != nil {
				t.Fatalf("Load by a new process: %v", err)
			}
			if s.Seal == nil || s.Seal.Version != 3 {
				t.Fatalf("seal = %+v, want save 3", s.Seal)
			}
			_, last, ok, err := f.saves().Latest(t.Context(), secretName)
			if err != nil || !ok || last.Version != 3 || last.Digest != s.Seal.MAC {
				t.Fatalf("the chain's last save = %+v, %v, %v; want save 3 with the seal's MAC", last, ok, err)
			}
		})
	}
}

// TestReplayedFileIsRefused is the scenario on the store: a copy
// of the file put back after more saves is refused, by the process that
// made the saves and by a new one.
func TestReplayedFileIsRefused(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			b := f.bind(t)
			saveKeys(t, b, 0, 1)
			path := filepath.Join(f.dir, secretName+".age")
			copyFile(t, path, path+".bak")
			saveKeys(t, b, 1, 2)
			copyFile(t, path+".bak", path)
			wantTampered(t, b, "the old file was put back")
			wantTampered(t, f.bind(t), "the old file was put back (new process)")
		})
	}
}

// TestReplayedFileIsRefusedOverACheckpoint: a new process starts from
// the chain's saves checkpoint instead of its first record, and still
// refuses a copy of the file put back after more saves, whether the
// checkpoint was written after those saves or before them.
func TestReplayedFileIsRefusedOverACheckpoint(t *testing.T) {
	for _, when := range []string{"after", "before"} {
		for name, newChain := range chains(t) {
			t.Run(when+"/"+name, func(t *testing.T) {
				f := newFixture(t, newChain(t))
				b := f.bind(t)
				saveKeys(t, b, 0, 1)
				path := filepath.Join(f.dir, secretName+".age")
				copyFile(t, path, path+".bak")
				if when == "after" {
					saveKeys(t, b, 1, 2)
				}
				// A history long enough for a new process's first load
				// to write a checkpoint.
				var es []audit.Event
				for i := range 1000 {
					es = append(es, audit.Event{Initiator: "user:ana", Action: binding.ActionSave, Secret: "other", Status: audit.StatusSucceeded,
						StoreVersion: uint64(i + 1), StateDigest: strings.Repeat("d", 64)})
				}
				app := f.app().(interface {
					AppendAll(context.Context, []audit.Event) ([]audit.Record, error)
				})
				if _, err := app.AppendAll(t.Context(), es); err != nil {
					t.Fatal(err)
				}
				if _, _, err := f.bind(t).Load(t.Context(), secretName); err != nil {
					t.Fatal(err)
				}
				if !f.checkpointed(t) {
					t.Fatal("the first load of a new process wrote no checkpoint")
				}
				if when == "before" {
					saveKeys(t, f.bind(t), 1, 2)
				}
				copyFile(t, path+".bak", path)
				wantTampered(t, f.bind(t), "the old file was put back (new process, checkpoint "+when+" the saves)")
			})
		}
	}
}

// TestUnsealedStateIsRefusedOnceSealed puts back a state written before
// rotor sealed its saves over a sealed one.
func TestUnsealedStateIsRefusedOnceSealed(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			if _, err := f.raw.Save(t.Context(), &store.Secret{Name: secretName, Current: keyN(0)}, store.NoVersion); err != nil {
				t.Fatal(err)
			}
			b := f.bind(t)
			if _, _, err := b.Load(t.Context(), secretName); err != nil {
				t.Fatalf("Load of a state saved before sealing, with no save recorded: %v", err)
			}
			path := filepath.Join(f.dir, secretName+".age")
			copyFile(t, path, path+".bak")
			saveKeys(t, b, 1, 1)
			copyFile(t, path+".bak", path)
			wantTampered(t, f.bind(t), "an unsealed state was put back")
		})
	}
}

// TestEditWithoutSaltIsRefused plays a store writer without the salt:
// whatever it changes, keeping the seal or raising its save count, the
// seal no longer matches.
func TestEditWithoutSaltIsRefused(t *testing.T) {
	edits := map[string]func(s *store.Secret){
		"another current key": func(s *store.Secret) { s.Current = keyN(7) },
		"a higher save count": func(s *store.Secret) { s.Seal.Version += 10 },
		"no revoked list":     func(s *store.Secret) { s.Revoked = nil },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, logChain(t))
			b := f.bind(t)
			saveKeys(t, b, 0, 1)
			s, v, err := f.raw.Load(t.Context(), secretName)
			if err != nil {
				t.Fatal(err)
			}
			s.AddRevoked("fedcba9876543210", time.Now())
			s.Seal.MAC = s.StateDigest(binding.Key(audittest.Salt)) // as rotor would
			if _, err := f.raw.Save(t.Context(), s, v); err != nil {
				t.Fatal(err)
			}
			s, v, err = f.raw.Load(t.Context(), secretName)
			if err != nil {
				t.Fatal(err)
			}
			edit(s)
			if _, err := f.raw.Save(t.Context(), s, v); err != nil {
				t.Fatal(err)
			}
			wantTampered(t, f.bind(t), "an edit by a store writer without the salt")
		})
	}
}

// TestChainPutBackIsRefused puts back an older copy of the chain (the
// log with its anchor; every key of the shared chain) while the store
// moved on: the store carries a chain head the chain no longer reaches.
func TestChainPutBackIsRefused(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			b := f.bind(t)
			saveKeys(t, b, 0, 1)
			restore := f.snapshot(t)
			saveKeys(t, b, 1, 3)
			restore()
			wantTampered(t, f.bind(t), "an older copy of the chain was put back")
		})
	}
}

// failingAppender fails every append, as a saver stopped between its
// save and its record leaves the chain.
type failingAppender struct{}

func (failingAppender) Append(context.Context, audit.Event) (audit.Record, error) {
	return audit.Record{}, errors.New("stopped before the record")
}

// TestSaveAheadOfChainIsAccepted leaves a state whose save was not
// recorded: loads accept it, and the next save's record catches the chain
// up.
func TestSaveAheadOfChainIsAccepted(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			saveKeys(t, f.bind(t), 0, 2)
			stopped, err := binding.New(binding.Options{Store: f.raw, Saves: f.saves(), Appender: failingAppender{}, Salt: audittest.Salt, Initiator: "user:ana"})
			if err != nil {
				t.Fatal(err)
			}
			s, v, err := stopped.Load(t.Context(), secretName)
			if err != nil {
				t.Fatal(err)
			}
			s.Current = keyN(5)
			if v, err = stopped.Save(t.Context(), s, v); err == nil || v == store.NoVersion {
				t.Fatalf("Save with a failing record = %q, %v; want the new version and an error", v, err)
			}
			b := f.bind(t)
			s, _, err = b.Load(t.Context(), secretName)
			if err != nil {
				t.Fatalf("Load of a state one save ahead of the chain: %v", err)
			}
			if s.Seal.Version != 3 {
				t.Fatalf("seal = %+v, want save 3", s.Seal)
			}
			saveKeys(t, b, 6, 1)
			_, last, _, err := f.saves().Latest(t.Context(), secretName)
			if err != nil || last.Version != 4 {
				t.Fatalf("the chain's last save = %+v, %v; want save 4", last, err)
			}
		})
	}
}

// TestVerifyFindsAChainPutBackAndAppendedTo puts back an older copy of
// the chain and appends to it until it is as long as the one the store
// saw: a load cannot tell, Verify finds the record the state names is
// not the one there now.
func TestVerifyFindsAChainPutBackAndAppendedTo(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			b := f.bind(t)
			saveKeys(t, b, 0, 1)
			if n, err := binding.Verify(t.Context(), f.raw, []string{secretName, "other"}, f.saves(), audittest.Salt); err != nil || n != 1 {
				t.Fatalf("Verify of a store that matches = %d, %v; want 1 secret checked", n, err)
			}
			restore := f.snapshot(t)
			saveKeys(t, b, 1, 2)
			restore()
			app := f.app()
			for i := range 5 {
				if _, err := app.Append(t.Context(), audit.Event{Initiator: "user:eve", Action: "noise", Status: audit.StatusSucceeded, Detail: strings.Repeat("n", i)}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := binding.Verify(t.Context(), f.raw, []string{secretName}, f.saves(), audittest.Salt)
			if !errors.Is(err, binding.ErrTampered) {
				t.Fatalf("Verify = %v, want ErrTampered", err)
			}
		})
	}
}

func TestVerifyFindsADeletedSecret(t *testing.T) {
	f := newFixture(t, logChain(t))
	saveKeys(t, f.bind(t), 0, 1)
	if err := os.Remove(filepath.Join(f.dir, secretName+".age")); err != nil {
		t.Fatal(err)
	}
	if _, err := binding.Verify(t.Context(), f.raw, []string{secretName}, f.saves(), audittest.Salt); !errors.Is(err, binding.ErrTampered) {
		t.Fatalf("Verify = %v, want ErrTampered", err)
	}
}

// TestVerifyAfterImport moves the local log into a shared chain as `rotor
// audit import` does (each event appended again, then an audit.import
// record): a state saved before the import names a record of the old log,
// which Verify must not take for a chain put back from an older copy.
func TestVerifyAfterImport(t *testing.T) {
	f := newFixture(t, logChain(t))
	saveKeys(t, f.bind(t), 0, 3)
	recs, err := f.app().(*audit.Log).Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := audit.NewShared(&audittest.Memory{}, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []audit.Event{{Initiator: "user:ana", Action: "before", Status: audit.StatusSucceeded}} {
		if _, err := sh.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	events := make([]audit.Event, 0, len(recs)+1)
	for _, r := range recs {
		events = append(events, r.Event)
	}
	events = append(events, audit.Event{Initiator: "user:ana", Action: audit.ActionImport, Status: audit.StatusSucceeded})
	if _, err := sh.AppendAll(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	if _, err := binding.Verify(t.Context(), f.raw, []string{secretName}, sh.Saves(), audittest.Salt); err != nil {
		t.Fatalf("Verify after an import = %v, want no problem", err)
	}
	b, err := binding.New(binding.Options{Store: f.raw, Saves: sh.Saves(), Appender: sh, Salt: audittest.Salt, Initiator: "user:ana"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Load(t.Context(), secretName); err != nil {
		t.Fatalf("Load after an import = %v", err)
	}
}

// TestConcurrentLoadsDuringSaves loads and verifies the secret from other
// processes' bindings while a saver keeps saving: a load that reads the
// store just before a save and the chain just after it must not take the
// store for an older copy put back.
func TestConcurrentLoadsDuringSaves(t *testing.T) {
	for name, newChain := range chains(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newChain(t))
			saveKeys(t, f.bind(t), 0, 1)
			done := make(chan struct{})
			errs := make(chan error, 3)
			for range 2 {
				go func() {
					b := f.bind(t)
					for {
						select {
						case <-done:
							errs <- nil
							return
						default:
						}
						if _, _, err := b.Load(t.Context(), secretName); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			go func() {
				for {
					select {
					case <-done:
						errs <- nil
						return
					default:
					}
					if _, err := binding.Verify(t.Context(), f.raw, []string{secretName}, f.saves(), audittest.Salt); err != nil {
						errs <- err
						return
					}
				}
			}()
			saveKeys(t, f.bind(t), 1, 30) // in the test's goroutine: it may fail the test
			close(done)
			for range 3 {
				if err := <-errs; err != nil {
					t.Fatalf("a load or verify during saves: %v", err)
				}
			}
		})
	}
}

// countingBackend counts the reads of a shared chain's backend.
type countingBackend struct {
	audit.Backend
	gets atomic.Int32
}

func (c *countingBackend) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}

// heldAppender keeps the records of saves, as rotor's one-shot commands
// hold them until the operation's next write.
type heldAppender struct{ held []audit.Event }

func (h *heldAppender) Append(_ context.Context, e audit.Event) (audit.Record, error) {
	h.held = append(h.held, e)
	return audit.Record{}, nil
}

// TestSaveOverALoadedVersionReadsNoChain: a save over the version the
// same binding loaded or saved takes the chain as it knows it, and asks
// the chain's backend nothing; a load reads the head only, when the
// records since were written by the same process.
func TestSaveOverALoadedVersionReadsNoChain(t *testing.T) {
	c := &countingBackend{Backend: &audittest.Memory{}}
	sh, err := audit.NewShared(c, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	held := &heldAppender{}
	f := newFixture(t, chain{process: func() (binding.Appender, *audit.Saves) { return held, sh.Saves() }})
	b := f.bind(t)
	flush := func() {
		t.Helper()
		if _, err := sh.AppendAll(t.Context(), held.held); err != nil {
			t.Fatal(err)
		}
		held.held = nil
	}
	saveKeys(t, b, 0, 1)
	flush()
	s, v, err := b.Load(t.Context(), secretName)
	if err != nil {
		t.Fatal(err)
	}
	before := c.gets.Load()
	for i := range 3 {
		s.Current = keyN(i + 1)
		if v, err = b.Save(t.Context(), s, v); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.gets.Load() - before; n != 0 {
		t.Errorf("three saves over the versions loaded and saved read the chain's backend %d times, want 0", n)
	}
	flush()
	before = c.gets.Load()
	s, _, err = b.Load(t.Context(), secretName)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.gets.Load() - before; n != 1 {
		t.Errorf("a load read the chain's backend %d times, want 1 (the head)", n)
	}
	if s.Seal.Version != 4 {
		t.Errorf("seal = %+v, want save 4", s.Seal)
	}
}

// headlessBackend refuses every move of the head, as a writer stopped
// between its batch and its head move leaves the chain.
type headlessBackend struct{ audit.Backend }

func (h headlessBackend) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	if key == "head" && expected != audit.NoVersion {
		return audit.NoVersion, errors.New("stopped before the head move")
	}
	return h.Backend.Put(ctx, key, value, expected)
}

// TestTwoProcessesOnOneStoreAndChain is the daemon and a cron run on one
// store and one shared chain, each with its own binding and chain reader:
// what a binding reuses of its earlier reads (the chain as it knew it,
// the batches it wrote, the head's version) never makes it refuse the
// other's states or overwrite them, also when a writer's records are not
// headed yet.
func TestTwoProcessesOnOneStoreAndChain(t *testing.T) {
	ctx := t.Context()
	m := &audittest.Memory{}
	f := newFixture(t, sharedChain(t)) // for its store
	process := func(b audit.Backend) *binding.Store {
		sh, err := audit.NewShared(b, audittest.Salt)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := binding.New(binding.Options{Store: f.raw, Saves: sh.Saves(), Appender: sh, Salt: audittest.Salt, Initiator: "user:ana"})
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	daemon, cron := process(m), process(m)
	saveKeys(t, daemon, 0, 2)

	// The daemon loads; cron saves twice meanwhile; the daemon's save over
	// what it loaded loses to the store's compare-and-swap.
	s, v, err := daemon.Load(ctx, secretName)
	if err != nil {
		t.Fatal(err)
	}
	saveKeys(t, cron, 2, 2)
	s.Current = keyN(9)
	if _, err := daemon.Save(ctx, s, v); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the daemon's save over a version cron replaced = %v, want ErrConflict", err)
	}
	// Each takes the other's states.
	saveKeys(t, daemon, 4, 2)
	if _, _, err := cron.Load(ctx, secretName); err != nil {
		t.Fatalf("cron's load of the daemon's state: %v", err)
	}

	// A writer stopped before each head move: its batches are stored, the
	// head names an earlier record, and its second save is sealed after
	// its first save's record, past the head.
	stopped := process(headlessBackend{m})
	s, v, err = stopped.Load(ctx, secretName)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s.Current = keyN(10 + i)
		if v, err = stopped.Save(ctx, s, v); v == store.NoVersion {
			t.Fatalf("save %d of the stopped writer: %v", i, err)
		}
	}
	for who, b := range map[string]*binding.Store{"daemon": daemon, "cron": cron} {
		s, _, err := b.Load(ctx, secretName)
		if err != nil {
			t.Fatalf("%s's load of a state sealed past the chain's head: %v", who, err)
		}
		if s.Seal.Version != 8 {
			t.Fatalf("%s loaded save %d, want 8", who, s.Seal.Version)
		}
	}
	saveKeys(t, cron, 12, 1)
	saveKeys(t, daemon, 13, 1)
	sh, err := audit.NewShared(m, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := binding.Verify(ctx, f.raw, []string{secretName}, sh.Saves(), audittest.Salt); err != nil {
		t.Fatal(err)
	}
}
