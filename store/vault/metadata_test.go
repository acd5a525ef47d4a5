package vault

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// TestMetadataDescribesVersions: after saves, the KV metadata holds
// max_versions as configured, the secret without its values (Describe),
// and one history line for each of the last 50 versions; no value is in
// it. History reads the lines, and the data only for older versions.
func TestMetadataDescribesVersions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := tokenConfig(t, srv.Token)
	cfg.MaxVersions = 60
	st := newStore(t, cfg)
	sec := sampleSecret("described")
	sec.Retired = []store.Key{{Value: uniqueName("sk_retired_"), ID: "retired-id"}}
	var v store.Version
	var err error
	const n = historyKept + 5
	for i := range n {
		sec.Current.ID = fmt.Sprintf("kid-%02d", i+1) // each version its own id
		if v, err = st.Save(ctx, sec, v); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := srv.Client.Logical().ReadWithContext(ctx, st.metadataPath(sec.Name))
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(raw.Data)
	assertNoValue(t, "metadata", string(dump), sec)
	if mv, _ := number(raw.Data["max_versions"]); mv != 60 {
		t.Errorf("max_versions = %v, want 60", raw.Data["max_versions"])
	}
	custom, _ := raw.Data["custom_metadata"].(map[string]any)
	if len(custom) > metaKeysLimit {
		t.Errorf("%d custom metadata keys, Vault allows %d", len(custom), metaKeysLimit)
	}
	for i := 1; i <= n; i++ {
		_, has := custom[historyKey(uint64(i))]
		if want := i > n-historyKept; has != want {
			t.Errorf("history line of version %d present: %v, want %v", i, has, want)
		}
	}

	d, dv, err := st.Describe(ctx, sec.Name)
	if err != nil || dv != v {
		t.Fatalf("Describe = version %q, %v; want %q", dv, err, v)
	}
	if d.Current.ID != sec.Current.ID || d.Previous.ID != sec.Previous.ID || d.Next.ID != sec.Next.ID ||
		d.Pending.ID != sec.Pending.ID || len(d.Retired) != 1 || d.Retired[0].ID != "retired-id" {
		t.Errorf("Describe = %+v, want the ids saved", d)
	}
	for _, val := range d.Values() {
		if val != "" {
			t.Error("Describe returned a value")
		}
	}

	hist, err := st.History(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != n {
		t.Fatalf("%d history entries, want %d", len(hist), n)
	}
	for i, e := range hist {
		if want := fmt.Sprintf("kid-%02d", i+1); e.CurrentKeyID != want || e.PreviousKeyID != sec.Previous.ID || e.WrittenBy == "" {
			t.Errorf("version %s: current %q previous %q by %q; want %s, %s and a writer", e.Version, e.CurrentKeyID, e.PreviousKeyID, e.WrittenBy, want, sec.Previous.ID)
		}
	}
	if out, _ := json.Marshal(hist); strings.Contains(string(out), "sk_") {
		t.Error("history holds a value")
	}
}

func TestMaxVersionsValidated(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n  int
		ok bool
	}{{0, true}, {10, true}, {500, true}, {9, false}, {-1, false}} {
		err := Options{MaxVersions: tt.n}.Validate()
		if (err == nil) != tt.ok || err != nil && !strings.Contains(err.Error(), "max_versions") {
			t.Errorf("MaxVersions %d: Validate = %v, want ok %v", tt.n, err, tt.ok)
		}
	}
	if got := (Options{}).WithDefaults().MaxVersions; got != DefaultMaxVersions {
		t.Errorf("default MaxVersions = %d, want %d", got, DefaultMaxVersions)
	}
}
