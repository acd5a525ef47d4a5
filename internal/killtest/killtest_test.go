package killtest

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

func serve(t *testing.T, ledger, req string) map[string]any {
	t.Helper()
	var out bytes.Buffer
	if err := Serve(ledger, strings.NewReader(req), &out); err != nil {
		t.Fatal(err)
	}
	var ans map[string]any
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	return ans
}

// TestIssuer checks the stand-in keeps the exec protocol's promises: mint
// is idempotent on request_id, test accepts exactly the minted and not
// revoked keys, and the ledger records it all.
func TestIssuer(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger")
	a := serve(t, ledger, `{"version":2,"action":"mint","request_id":"r1"}`)["value"].(string)
	if again := serve(t, ledger, `{"version":2,"action":"mint","request_id":"r1"}`)["value"]; again != a {
		t.Fatalf("second mint of r1 answered another key")
	}
	b, err := Mint(ledger, "r2")
	if err != nil || b == a {
		t.Fatalf("mint r2: %v (same key: %v)", err, b == a)
	}
	if ans := serve(t, ledger, `{"version":2,"action":"test","value":"`+a+`"}`); ans["rejected"] != nil {
		t.Fatalf("minted key rejected: %v", ans)
	}
	serve(t, ledger, `{"version":2,"action":"revoke","value":"`+a+`","key_id":"ka"}`)
	if ans := serve(t, ledger, `{"version":2,"action":"test","value":"`+a+`"}`); ans["rejected"] != true {
		t.Fatalf("revoked key accepted: %v", ans)
	}
	led, err := ReadLedger(ledger)
	if err != nil {
		t.Fatal(err)
	}
	if len(led.Minted) != 2 || !led.Revoked[a] || !led.RevokedIDs["ka"] || !led.Valid(b) {
		t.Fatalf("ledger: %d minted, revoked %v, ids %v", len(led.Minted), led.Revoked, led.RevokedIDs)
	}
}

// TestCheck is the harness's self-test: each broken invariant is caught,
// and a sound state passes.
func TestCheck(t *testing.T) {
	key := func(id string) *store.Key { return &store.Key{ID: id, Value: "v-" + id} }
	ledger := func(minted []string, revoked ...string) *Ledger {
		l := &Ledger{Revoked: map[string]bool{}, RevokedIDs: map[string]bool{}}
		for _, id := range minted {
			l.Minted = append(l.Minted, Entry{Op: OpMint, RequestID: "req-" + id, Value: "v-" + id})
		}
		for _, id := range revoked {
			l.Revoked["v-"+id] = true
			l.RevokedIDs[id] = true
		}
		return l
	}
	tests := []struct {
		name   string
		st     State
		want   string // "" for no violation
		reason string
	}{
		{"sound", State{Secret: &store.Secret{Current: key("b"), Previous: key("a")}, Ledger: ledger([]string{"a", "b"}), Reloaded: []string{"a", "b"}, Settled: true}, "", ""},
		{"empty current", State{Secret: &store.Secret{}, Ledger: ledger(nil)}, "current is empty", ""},
		{"revoked current", State{Secret: &store.Secret{Current: key("a")}, Ledger: ledger([]string{"a"}, "a")}, "current key a was revoked", "guarantee 2"},
		{"reloaded key revoked", State{Secret: &store.Secret{Current: key("b")}, Ledger: ledger([]string{"a", "b"}, "a"), Reloaded: []string{"b", "a"}}, "last reloaded with, was revoked", "guarantee 3"},
		{"orphan", State{Secret: &store.Secret{Current: key("a")}, Ledger: ledger([]string{"a", "b"}), Settled: true}, "request req-b is in no slot", "guarantee 1"},
		{"orphan reported", State{Secret: &store.Secret{Current: key("a"), Orphans: []store.Orphan{{RequestID: "req-b"}}}, Ledger: ledger([]string{"a", "b"}), Settled: true}, "", "reported to the operator"},
		{"open intent", State{Secret: &store.Secret{Current: key("a"), Rotation: &store.Rotation{ID: "op", Intent: &store.Intent{ID: "req-b"}}}, Ledger: ledger([]string{"a", "b"})}, "", "the next run reconciles it"},
		{"in flight when settled", State{Secret: &store.Secret{Current: key("a"), Rotation: &store.Rotation{ID: "op"}}, Ledger: ledger([]string{"a"}), Settled: true}, "still in flight", ""},
		{"open in the audit log", State{Secret: &store.Secret{Current: key("a")}, Ledger: ledger([]string{"a"}), Settled: true, Open: []rotation.OpenOperation{{ID: "op"}}}, "without a terminal record", ""},
		{"foreign", State{Secret: &store.Secret{Current: key("a")}, Ledger: ledger([]string{"a", "x"}), Settled: true, Foreign: func(id string) bool { return id == "req-x" }}, "", "an operator's key rotor never saved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Check(tt.st)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Fatalf("unexpected violations %v (%s)", errs, tt.reason)
			case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Fatalf("violations %v, want %q (%s)", errs, tt.want, tt.reason)
			}
		})
	}
}
