package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
)

// saveEvent is the record of save number version of secret.
func saveEvent(secret string, version uint64) audit.Event {
	return audit.Event{Initiator: "user:ana", Action: "store.save", Secret: secret, Status: audit.StatusSucceeded,
		StoreVersion: version, StateDigest: strings.Repeat(string("0123456789abcdef"[version%16]), 64)}
}

// savesChain is a chain under test, with a way to put back an older copy
// of it as a backup restore would.
type savesChain struct {
	name     string
	append   func(t *testing.T, es ...audit.Event)
	saves    func() *audit.Saves
	snapshot func(t *testing.T) (restore func())
}

func savesChains(t *testing.T) []savesChain {
	dir := t.TempDir()
	logPath, anchorPath := filepath.Join(dir, "audit.log"), filepath.Join(dir, "anchor", "audit.head")
	l, err := audit.Open(logPath, anchorPath, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	m := &audittest.Memory{}
	sh := newShared(t, m)
	return []savesChain{
		{
			name: "log",
			append: func(t *testing.T, es ...audit.Event) {
				if _, err := l.AppendAll(t.Context(), es); err != nil {
					t.Fatal(err)
				}
			},
			saves: l.Saves,
			snapshot: func(t *testing.T) func() {
				logData, err := os.ReadFile(logPath)
				if err != nil {
					t.Fatal(err)
				}
				anchorData, err := os.ReadFile(anchorPath)
				if err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.WriteFile(logPath, logData, 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(anchorPath, anchorData, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			},
		},
		{
			name: "shared",
			append: func(t *testing.T, es ...audit.Event) {
				if _, err := sh.AppendAll(t.Context(), es); err != nil {
					t.Fatal(err)
				}
			},
			saves: sh.Saves,
			snapshot: func(t *testing.T) func() {
				snap := m.Snapshot()
				return func() { m.Restore(snap) }
			},
		},
	}
}

func TestSavesLatest(t *testing.T) {
	for _, c := range savesChains(t) {
		t.Run(c.name, func(t *testing.T) {
			x := c.saves()
			if _, _, ok, err := x.Latest(t.Context(), "clerk"); err != nil || ok {
				t.Fatalf("Latest of an empty chain = ok %v, %v; want no save", ok, err)
			}
			c.append(t, sharedEvent(0), saveEvent("clerk", 1), saveEvent("webhook", 1), sharedEvent(1))
			head, last, ok, err := x.Latest(t.Context(), "clerk")
			if err != nil || !ok || last.Version != 1 || last.Seq != 2 || last.Digest != saveEvent("clerk", 1).StateDigest {
				t.Fatalf("Latest = %+v, ok %v, %v; want version 1 at seq 2", last, ok, err)
			}
			if head.Seq != 4 {
				t.Errorf("head = %+v, want seq 4", head)
			}
			// Appended after the first read: read incrementally.
			c.append(t, saveEvent("clerk", 2), sharedEvent(2))
			head, last, _, err = x.Latest(t.Context(), "clerk")
			if err != nil || last.Version != 2 || last.Seq != 5 || head.Seq != 6 {
				t.Fatalf("Latest after more appends = %+v head %+v, %v; want version 2 at seq 5, head 6", last, head, err)
			}
			_, all, err := c.saves().All(t.Context())
			if err != nil || len(all) != 2 || all["clerk"].Version != 2 || all["webhook"].Version != 1 {
				t.Fatalf("All from scratch = %+v, %v; want clerk 2 and webhook 1", all, err)
			}
		})
	}
}

// TestSavesDetectsAnOlderChainPutBack puts back a copy of the chain (the
// log and its anchor together, or every key of the shared chain) taken
// before the last appends: a Saves that read the newer chain refuses it.
func TestSavesDetectsAnOlderChainPutBack(t *testing.T) {
	for _, c := range savesChains(t) {
		t.Run(c.name, func(t *testing.T) {
			c.append(t, saveEvent("clerk", 1))
			restore := c.snapshot(t)
			c.append(t, saveEvent("clerk", 2), saveEvent("clerk", 3))
			x := c.saves()
			if _, _, _, err := x.Latest(t.Context(), "clerk"); err != nil {
				t.Fatal(err)
			}
			restore()
			_, last, _, err := x.Latest(t.Context(), "clerk")
			if !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("Latest after an older chain was put back = %+v, %v; want ErrChainBroken", last, err)
			}
		})
	}
}

// TestSavesReadsOnlyWhatWasAppended checks the cost of a load's check on
// the shared chain: after the first read, the reads of a Latest do not
// depend on the length of the chain.
func TestSavesReadsOnlyWhatWasAppended(t *testing.T) {
	b := &countingBackend{Backend: &audittest.Memory{}}
	sh := newShared(t, b)
	for i := range 50 {
		if _, err := sh.Append(t.Context(), saveEvent("clerk", uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	x := sh.Saves()
	if _, _, _, err := x.Latest(t.Context(), "clerk"); err != nil {
		t.Fatal(err)
	}
	before := b.gets
	if _, last, _, err := x.Latest(t.Context(), "clerk"); err != nil || last.Version != 50 {
		t.Fatalf("Latest = %+v, %v", last, err)
	}
	// The head only: it names the last record read.
	if n := b.gets - before; n != 1 {
		t.Errorf("a Latest with nothing appended read %d values, want 1", n)
	}

	// What the same Shared appended is taken from memory: the head only.
	if _, err := sh.Append(t.Context(), saveEvent("clerk", 51)); err != nil {
		t.Fatal(err)
	}
	before = b.gets
	if _, last, _, err := x.Latest(t.Context(), "clerk"); err != nil || last.Version != 51 {
		t.Fatalf("Latest after an append of the same Shared = %+v, %v; want save 51", last, err)
	}
	if n := b.gets - before; n != 1 {
		t.Errorf("a Latest after an append of the same Shared read %d values, want 1 (the head)", n)
	}
	// Recent asks the backend nothing, and sees that Shared's appends.
	if _, err := sh.Append(t.Context(), saveEvent("clerk", 52)); err != nil {
		t.Fatal(err)
	}
	before = b.gets
	if _, last, _, err := x.Recent(t.Context(), "clerk"); err != nil || last.Version != 52 {
		t.Fatalf("Recent after an append of the same Shared = %+v, %v; want save 52", last, err)
	}
	if n := b.gets - before; n != 0 {
		t.Errorf("Recent read %d values, want none", n)
	}

	// Another writer's batch is read: the head, the batch read last
	// (still there?) and the new one.
	if _, err := newShared(t, b.Backend).Append(t.Context(), saveEvent("clerk", 53)); err != nil {
		t.Fatal(err)
	}
	before = b.gets
	if _, last, _, err := x.Latest(t.Context(), "clerk"); err != nil || last.Version != 53 {
		t.Fatalf("Latest after another writer's append = %+v, %v; want save 53", last, err)
	}
	if n := b.gets - before; n != 3 {
		t.Errorf("a Latest after another writer's append read %d values, want 3", n)
	}
}

// TestSavesToleratesAnIncompleteLastLine: an interrupted write (or one in
// flight, seen half done) leaves a last line without a newline; an
// incremental read after it must read the records before it and stop
// there, not take it for tampering, however short the unread part is.
func TestSavesToleratesAnIncompleteLastLine(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	l, err := audit.Open(logPath, filepath.Join(dir, "anchor", "audit.head"), audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAll(t.Context(), []audit.Event{saveEvent("clerk", 1)}); err != nil {
		t.Fatal(err)
	}
	x := l.Saves()
	if _, _, _, err := x.Latest(t.Context(), "clerk"); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(`{"seq":2,"timestamp":"20`)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	head, last, ok, err := x.Latest(t.Context(), "clerk")
	if err != nil || !ok || last.Version != 1 || head.Seq != 1 {
		t.Fatalf("Latest with an incomplete last line = head %+v, last %+v, ok %v, %v; want head 1, version 1", head, last, ok, err)
	}
}

// TestSavesLatestAfterReadsPastTheHead: a batch appended by a writer
// stopped before it moved the head is not read by Latest (which reads up
// to the head), but LatestAfter reads on to the record it is asked for.
func TestSavesLatestAfterReadsPastTheHead(t *testing.T) {
	m := &audittest.Memory{}
	if _, err := newShared(t, m).Append(t.Context(), saveEvent("clerk", 1)); err != nil {
		t.Fatal(err)
	}
	headless := &headlessBackend{Backend: m}
	if _, err := newShared(t, headless).Append(t.Context(), saveEvent("clerk", 2)); err == nil {
		t.Fatal("an append whose head move failed reported no error")
	}
	x := newShared(t, m).Saves()
	head, last, _, err := x.Latest(t.Context(), "clerk")
	if err != nil || head.Seq != 1 || last.Version != 1 {
		t.Fatalf("Latest = head %+v, %+v, %v; want head 1 and save 1 (the head names record 1)", head, last, err)
	}
	head, last, _, err = x.LatestAfter(t.Context(), "clerk", 2)
	if err != nil || head.Seq != 2 || last.Version != 2 {
		t.Fatalf("LatestAfter(2) = head %+v, %+v, %v; want record 2 and save 2", head, last, err)
	}
}

// TestSavesLatestAfterReadsToTheHead: asked for a record before the
// head, LatestAfter still reads up to the head (a chain is checked
// against its head only once read that far).
func TestSavesLatestAfterReadsToTheHead(t *testing.T) {
	m := &audittest.Memory{}
	sh := newShared(t, m)
	for i := range 5 {
		if _, err := sh.Append(t.Context(), saveEvent("clerk", uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	head, last, _, err := newShared(t, m).Saves().LatestAfter(t.Context(), "clerk", 3)
	if err != nil || head.Seq != 5 || last.Version != 5 {
		t.Fatalf("LatestAfter(3) on a chain headed at 5 = head %+v, %+v, %v; want record 5 and save 5", head, last, err)
	}
}

// headlessBackend refuses to move the head, as a writer stopped between
// its batch and its head move leaves the chain.
type headlessBackend struct{ audit.Backend }

func (h *headlessBackend) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	if key == "head" && expected != audit.NoVersion {
		return audit.NoVersion, errors.New("stopped before the head move")
	}
	return h.Backend.Put(ctx, key, value, expected)
}
