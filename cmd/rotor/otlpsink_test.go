package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/internal/otlpfake"
)

// TestAuditSinkOTLP ships the records of CLI rotations to an OTLP/HTTP
// receiver (audit.sinks type otlp): every record the chain got after the
// sink was configured arrives, once and in order, with its key id, and no
// key value reaches the receiver or rotor's output.
func TestAuditSinkOTLP(t *testing.T) {
	rcv := otlpfake.Start(t)
	dir := t.TempDir()
	mustRotorEnv(t, dir, nil, "init")
	cfgPath := filepath.Join(dir, "rotor.yaml")
	cfg := string(mustRead(t, cfgPath))
	sinks := "  sinks:\n    - type: otlp\n      endpoint: " + rcv.URL() + "\n"
	cfg = strings.Replace(cfg, "audit:\n", "audit:\n"+sinks, 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for range 2 {
		r := mustRotorEnv(t, dir, nil, "rotate", "demo")
		outputs = append(outputs, r.stdout, r.stderr)
	}
	tail := mustRotorEnv(t, dir, nil, "audit", "tail", "-n", "0", "-o", "json")
	var chain []audit.Record
	dec := json.NewDecoder(strings.NewReader(tail.stdout))
	for dec.More() {
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Action != "init" { // written before the sink was configured
			chain = append(chain, r)
		}
	}
	logs := rcv.Logs()
	if len(logs) != len(chain) || len(chain) == 0 {
		t.Fatalf("the receiver holds %d records, the chain %d since the sink was configured", len(logs), len(chain))
	}
	keyIDs := 0
	for i, l := range logs {
		want := chain[i]
		seq, _ := l.Attr("rotor.audit.seq")
		hash, _ := l.Attr("rotor.audit.hash")
		keyID, _ := l.Attr("rotor.audit.key_id")
		if seq != strconv.FormatUint(want.Seq, 10) || hash != want.Hash || keyID != want.KeyID {
			t.Fatalf("OTLP record %d: seq %s hash %s key_id %s; want the chain's record %d (%s, %s)", i, seq, hash, keyID, want.Seq, want.Hash, want.KeyID)
		}
		if keyID != "" {
			keyIDs++
		}
	}
	if keyIDs == 0 {
		t.Fatal("no OTLP record carries a key id")
	}
	raw := string(rcv.Raw())
	for _, slot := range []string{"current", "previous"} {
		val := strings.TrimSpace(mustRotorEnv(t, dir, nil, "get", "demo", "--slot", slot, "--reveal").stdout)
		if len(val) < 16 {
			t.Fatalf("get --reveal printed %q, not a key", val)
		}
		for _, out := range append(outputs, raw) {
			if strings.Contains(out, val) {
				t.Fatalf("the %s key value appears in what rotor sent or printed", slot)
			}
		}
	}
}
