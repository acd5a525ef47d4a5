package audit

import (
	"errors"
	"strings"
	"testing"
)

// TestScanChecksTheCheckpointsSaves: a checkpoint with a valid MAC and
// record, but saves the records up to it do not record (written by a
// holder of the salt, or by a bug), is taken by a first load, and the
// full read, Scan, finds it out.
func TestScanChecksTheCheckpointsSaves(t *testing.T) {
	l := newTestLog(t)
	digest := strings.Repeat("d", 64)
	for v := range uint64(3) {
		if _, err := l.Append(t.Context(), Event{Initiator: "user:ana", Action: "store.save", Secret: "clerk", Status: StatusSucceeded, StoreVersion: v + 1, StateDigest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	x := l.Saves()
	if _, err := x.Scan(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	// What an honest checkpoint at the last record holds, but for one
	// save set back.
	forged := &savesCheckpoint{seq: x.c.n, hash: x.c.headHash(), at: uint64(x.pos),
		saves: map[string]Save{"clerk": {Seq: 1, Version: 1, Digest: digest}}}
	if err := l.storeCheckpoint(t.Context(), forged); err != nil {
		t.Fatal(err)
	}
	if _, last, _, err := l.Saves().Latest(t.Context(), "clerk"); err != nil || last.Version != 1 {
		t.Fatalf("Latest from the forged checkpoint = %+v, %v; want it taken (save 1): the MAC is right", last, err)
	}
	_, err := l.Saves().Scan(t.Context(), nil)
	if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("Scan over a checkpoint whose saves the records do not record = %v, want ErrChainBroken over the checkpoint", err)
	}
}

// FuzzCheckpoint feeds checkpoint headers and bodies, as somebody who
// can write where the checkpoint is kept but has no salt could: nothing
// panics, and no header is taken but one naming what the salt's holder
// wrote.
func FuzzCheckpoint(f *testing.F) {
	cp := &savesCheckpoint{seq: 3, hash: GenesisHash, at: 120, saves: map[string]Save{"clerk": {Seq: 2, Version: 1, Digest: strings.Repeat("d", 64)}}}
	header, parts, err := cp.encode(testSalt, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(header, parts[0])
	f.Add([]byte(`{"seq":3,"hash":"","at":1,"parts":[],"mac":""}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, header, body []byte) {
		h, err := decodeCheckpointHeader(testSalt, header, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrChainBroken) {
				t.Fatalf("a header refused with %v, not as tampering", err)
			}
			return
		}
		if h.Seq != cp.seq || h.Hash != cp.hash || h.At != cp.at {
			t.Fatalf("a header naming record %d at %d was taken without the salt", h.Seq, h.At)
		}
		got, err := checkpointBody(h, [][]byte{body})
		if err == nil && len(got.saves) != len(cp.saves) {
			t.Fatalf("a body the header does not name was taken: %d saves", len(got.saves))
		}
	})
}
