package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
)

// cpChain is a chain under test with the means to play an attacker on
// it: read and replace its saves checkpoint (the header, and the body or
// a part of it), change its first record, put back an older copy of the
// records alone.
type cpChain struct {
	name string
	// appendAll appends es, in batches of at most 10 on a shared chain.
	appendAll func(t *testing.T, es []audit.Event)
	// saves is a Saves as a new process opens it.
	saves func() *audit.Saves
	// gets counts the values read from a shared chain's backend (always
	// 0 for a log).
	gets *atomic.Int64
	// checkpoint returns the checkpoint's header and body; put replaces
	// them.
	checkpoint func(t *testing.T) (header, body []byte)
	put        func(t *testing.T, header, body []byte)
	// forgeFirst changes the first record, as a writer without the salt.
	forgeFirst func(t *testing.T)
	// snapshotRecords copies the records and the anchor or head, not the
	// checkpoint; restore puts them back.
	snapshotRecords func(t *testing.T) (restore func())
}

func cpChains(t *testing.T) []cpChain {
	dir := t.TempDir()
	logPath, anchorPath := filepath.Join(dir, "audit.log"), filepath.Join(dir, "anchor", "audit.head")
	cpPath := anchorPath + ".checkpoint"
	l, err := audit.Open(logPath, anchorPath, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	m := &audittest.Memory{}
	counted := &countingGetsBackend{Backend: m}
	return []cpChain{
		{
			name: "log",
			appendAll: func(t *testing.T, es []audit.Event) {
				if _, err := l.AppendAll(t.Context(), es); err != nil {
					t.Fatal(err)
				}
			},
			saves: func() *audit.Saves {
				l, err := audit.Open(logPath, anchorPath, audittest.Salt)
				if err != nil {
					t.Fatal(err)
				}
				return l.Saves()
			},
			gets: &atomic.Int64{},
			checkpoint: func(t *testing.T) ([]byte, []byte) {
				data, err := os.ReadFile(cpPath)
				if err != nil {
					t.Fatalf("no checkpoint: %v", err)
				}
				header, body, _ := bytes.Cut(data, []byte("\n"))
				return header, body
			},
			put: func(t *testing.T, header, body []byte) {
				if err := os.WriteFile(cpPath, append(append(bytes.Clone(header), '\n'), body...), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			forgeFirst: func(t *testing.T) {
				data, err := os.ReadFile(logPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(logPath, bytes.Replace(data, []byte("user:ana"), []byte("user:bob"), 1), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			snapshotRecords: func(t *testing.T) func() {
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
		},
		{
			name: "shared",
			appendAll: func(t *testing.T, es []audit.Event) {
				// A writer as a new process opens it: one that has not
				// seen the chain put back would continue the chain it saw.
				sh := newShared(t, m)
				for len(es) > 0 {
					n := min(len(es), 10)
					if _, err := sh.AppendAll(t.Context(), es[:n]); err != nil {
						t.Fatal(err)
					}
					es = es[n:]
				}
			},
			saves: func() *audit.Saves { return newShared(t, counted).Saves() },
			gets:  &counted.gets,
			checkpoint: func(t *testing.T) ([]byte, []byte) {
				header, _, err := m.Get(t.Context(), "checkpoint/head")
				if err != nil {
					t.Fatalf("no checkpoint: %v", err)
				}
				body, _, err := m.Get(t.Context(), "checkpoint/0")
				if err != nil {
					t.Fatal(err)
				}
				return header, body
			},
			put: func(t *testing.T, header, body []byte) {
				overwrite(t, m, "checkpoint/0", body)
				overwrite(t, m, "checkpoint/head", header)
			},
			forgeFirst: func(t *testing.T) {
				data, v, err := m.Get(t.Context(), "records/1")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.Put(t.Context(), "records/1", bytes.Replace(data, []byte("user:ana"), []byte("user:bob"), 1), v); err != nil {
					t.Fatal(err)
				}
			},
			snapshotRecords: func(t *testing.T) func() {
				snap := m.Snapshot()
				return func() {
					cp := map[string][]byte{}
					for _, key := range []string{"checkpoint/head", "checkpoint/0"} {
						if data, _, err := m.Get(t.Context(), key); err == nil {
							cp[key] = data
						}
					}
					m.Restore(snap)
					for key, data := range cp {
						overwrite(t, m, key, data)
					}
				}
			},
		},
	}
}

// overwrite stores value under key in m, whatever it held.
func overwrite(t *testing.T, m *audittest.Memory, key string, value []byte) {
	t.Helper()
	_, v, err := m.Get(t.Context(), key)
	if errors.Is(err, audit.ErrNotExist) {
		v = audit.NoVersion
	} else if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(t.Context(), key, value, v); err != nil {
		t.Fatal(err)
	}
}

// countingGetsBackend counts the reads of a backend, safely for
// concurrent use.
type countingGetsBackend struct {
	audit.Backend
	gets atomic.Int64
}

func (c *countingGetsBackend) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}

// history is n saves of 50 secrets, save i of secret i%50 being its
// save round+i/50+1: about 400 bytes a record.
func history(round uint64, n int) []audit.Event {
	es := make([]audit.Event, n)
	for i := range es {
		es[i] = saveEvent(fmt.Sprintf("s%02d", i%50), round+uint64(i/50)+1)
	}
	return es
}

// checkpointed appends a history of 1000 saves, about 400 KB (more than
// a Saves reads before it writes a checkpoint of 50 secrets), and has a
// new Saves read it and write the checkpoint.
func checkpointed(t *testing.T, c cpChain) {
	t.Helper()
	c.appendAll(t, history(0, 1000))
	if _, _, err := c.saves().All(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.checkpoint(t) // fails t when none was written
}

// fullRead returns what a full read of the chain finds.
func fullRead(t *testing.T, c cpChain) audit.ScanResult {
	t.Helper()
	scan, err := c.saves().Scan(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return scan
}

// TestSavesStartFromTheCheckpoint: a new Saves over a chain with a
// checkpoint reads the checkpoint and what follows it, not the records
// before it (a record changed there goes unnoticed by it, and is left to
// Verify), and finds what a full read finds.
func TestSavesStartFromTheCheckpoint(t *testing.T) {
	for _, c := range cpChains(t) {
		t.Run(c.name, func(t *testing.T) {
			checkpointed(t, c)
			c.appendAll(t, history(100, 20))
			want := fullRead(t, c)
			c.forgeFirst(t)
			if _, err := c.saves().Scan(t.Context(), nil); !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("a full read of a chain whose first record was changed = %v, want ErrChainBroken", err)
			}
			before := c.gets.Load()
			head, saves, err := c.saves().All(t.Context())
			if err != nil {
				t.Fatalf("a Saves starting from the checkpoint read the records before it: %v", err)
			}
			if head != want.Head || !maps.Equal(saves, want.Saves) {
				t.Fatalf("from the checkpoint: head %+v and %d saves; a full read: head %+v and %d saves", head, len(saves), want.Head, len(want.Saves))
			}
			// The head, the checkpoint's header and part, the batch of
			// its record, that batch again and the 2 batches after it;
			// a full read would read 103.
			if n := c.gets.Load() - before; c.name == "shared" && n != 7 {
				t.Errorf("a Saves starting from the checkpoint read %d values, want 7", n)
			}
		})
	}
}

// TestSavesWriteCheckpointsAsTheChainGrows: a Saves starting from a
// checkpoint writes the next once it has read as much again, not before.
func TestSavesWriteCheckpointsAsTheChainGrows(t *testing.T) {
	for _, c := range cpChains(t) {
		t.Run(c.name, func(t *testing.T) {
			checkpointed(t, c)
			first, _ := c.checkpoint(t)
			c.appendAll(t, history(100, 20))
			if _, _, err := c.saves().All(t.Context()); err != nil {
				t.Fatal(err)
			}
			if header, _ := c.checkpoint(t); !bytes.Equal(header, first) {
				t.Errorf("a Saves that read 20 records after the checkpoint replaced it")
			}
			c.appendAll(t, history(200, 1000))
			want := fullRead(t, c)
			if _, _, err := c.saves().All(t.Context()); err != nil {
				t.Fatal(err)
			}
			if header, _ := c.checkpoint(t); bytes.Equal(header, first) {
				t.Fatalf("a Saves that read 1020 records after the checkpoint did not replace it")
			}
			before := c.gets.Load()
			head, saves, err := c.saves().All(t.Context())
			if err != nil || head != want.Head || !maps.Equal(saves, want.Saves) {
				t.Fatalf("from the new checkpoint: head %+v and %d saves, %v; a full read: head %+v and %d saves", head, len(saves), err, want.Head, len(want.Saves))
			}
			if n := c.gets.Load() - before; c.name == "shared" && n != 4 {
				t.Errorf("a Saves starting from a checkpoint at the head read %d values, want 4 (the head, the checkpoint's header and part, its batch)", n)
			}
		})
	}
}

// TestSavesRefuseATamperedCheckpoint plays somebody who can write where
// the checkpoint is kept but does not hold the salt, and somebody who
// puts back an older copy of the chain and leaves the checkpoint: a new
// Saves refuses the checkpoint, and the load it serves, rather than
// trust it or quietly read around it; so does the full read.
func TestSavesRefuseATamperedCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, c cpChain)
	}{
		{"header edited", func(t *testing.T, c cpChain) {
			header, body := c.checkpoint(t)
			c.put(t, bytes.Replace(header, []byte(`"seq":`), []byte(`"seq":1`), 1), body)
		}},
		{"header garbled", func(t *testing.T, c cpChain) {
			_, body := c.checkpoint(t)
			c.put(t, []byte("{"), body)
		}},
		{"records put back from before it", func(t *testing.T, c cpChain) {
			restore := c.snapshotRecords(t)
			checkpointed(t, c)
			restore()
		}},
		{"records put back from before it and appended to", func(t *testing.T, c cpChain) {
			restore := c.snapshotRecords(t)
			checkpointed(t, c)
			restore()
			c.appendAll(t, history(300, 1100))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range cpChains(t) {
				t.Run(c.name, func(t *testing.T) {
					c.appendAll(t, history(1000, 10))
					checkpointed(t, c)
					tc.tamper(t, c)
					_, _, _, err := c.saves().Latest(t.Context(), "s00")
					if !errors.Is(err, audit.ErrChainBroken) || !strings.Contains(err.Error(), "checkpoint") {
						t.Fatalf("Latest with a tampered checkpoint = %v, want ErrChainBroken over the checkpoint", err)
					}
					t.Log(err)
					if _, err := c.saves().Scan(t.Context(), nil); !errors.Is(err, audit.ErrChainBroken) {
						t.Fatalf("Scan, the full read, with a tampered checkpoint = %v, want ErrChainBroken", err)
					}
				})
			}
		})
	}
}

// TestSavesCheckpointBody: a log's checkpoint whose body is not the one
// its header names was put there by hand and is refused; on a shared
// chain, a part that does not match is what a reader finds while
// another writer replaces the checkpoint, and the reader reads from the
// first record instead.
func TestSavesCheckpointBody(t *testing.T) {
	for _, c := range cpChains(t) {
		t.Run(c.name, func(t *testing.T) {
			checkpointed(t, c)
			want := fullRead(t, c)
			header, body := c.checkpoint(t)
			c.put(t, header, bytes.Replace(body, []byte(`"version":20`), []byte(`"version":99`), 1))
			before := c.gets.Load()
			head, saves, err := c.saves().All(t.Context())
			if c.name == "log" {
				if !errors.Is(err, audit.ErrChainBroken) {
					t.Fatalf("All with another body in the checkpoint file = %v, want ErrChainBroken", err)
				}
				return
			}
			if err != nil || head != want.Head || !maps.Equal(saves, want.Saves) {
				t.Fatalf("All with a part that does not match = head %+v and %d saves, %v; want the full read's head %+v and %d saves", head, len(saves), err, want.Head, len(want.Saves))
			}
			if n := c.gets.Load() - before; n < 100 {
				t.Errorf("All with a part that does not match read %d values: it did not read from the first record", n)
			}
		})
	}
}

// TestSavesTakeAnOlderCheckpoint: a checkpoint older than the last one,
// put back, is as true as it was: a Saves starts from it and reads on.
func TestSavesTakeAnOlderCheckpoint(t *testing.T) {
	for _, c := range cpChains(t) {
		t.Run(c.name, func(t *testing.T) {
			checkpointed(t, c)
			header, body := c.checkpoint(t)
			c.appendAll(t, history(100, 1000))
			if _, _, err := c.saves().All(t.Context()); err != nil {
				t.Fatal(err)
			}
			c.put(t, header, body)
			want := fullRead(t, c)
			head, saves, err := c.saves().All(t.Context())
			if err != nil || head != want.Head || !maps.Equal(saves, want.Saves) {
				t.Fatalf("from an older checkpoint: head %+v and %d saves, %v; a full read: head %+v and %d saves", head, len(saves), err, want.Head, len(want.Saves))
			}
		})
	}
}

// TestVerifyIgnoresTheCheckpoint: Verify reads every record, so a
// record changed before the checkpoint is found.
func TestVerifyIgnoresTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	logPath, anchorPath := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.head")
	l, err := audit.Open(logPath, anchorPath, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAll(t.Context(), history(0, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Saves().All(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(anchorPath + ".checkpoint"); err != nil {
		t.Fatalf("no checkpoint was written: %v", err)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, bytes.Replace(data, []byte("user:ana"), []byte("user:bob"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(t.Context()); !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("Verify of a log changed before its checkpoint = %v, want ErrChainBroken", err)
	}
}
