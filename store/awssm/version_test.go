package awssm

import (
	"errors"
	"maps"
	"testing"

	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/storesource"
)

// rotor serve and storesource.New find the version reads by type
// assertion.
var (
	_ storesource.Versioner = (*Store)(nil)
	_ storesource.Versioner = LabelReader{}
)

// calls returns srv's answered requests by operation and secret name.
func calls(srv *awsfake.Server) map[string]int {
	m := map[string]int{}
	for _, c := range srv.Calls() {
		m[c.Operation+" "+c.Secret]++
	}
	return m
}

// TestVersionFollowsSaves walks the engine's sequence of saves and checks
// after each one that Version reports the version Save returned and Load
// reads, for the writer and for another store on the same secrets (another
// rotor process: rotor serve while the CLI rotates); that it changes with
// every save and not otherwise; and what it costs. DescribeSecret "does not
// include the encrypted secret value"
// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html),
// so an unchanged secret costs two DescribeSecret calls and no
// GetSecretValue; a reader that did not make the save reads the new state
// document once.
func TestVersionFollowsSaves(t *testing.T) {
	ctx := t.Context()
	writer, srv := newTestStore(t)
	reader := NewFromClient(srv.Client(), Options{})
	const name = "clerk-secret-key"
	mName, sName := writer.SecretName(name), writer.StateName(name)
	if _, err := reader.Version(ctx, name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Version before the first save: err = %v, want ErrNotFound", err)
	}
	describes := map[string]int{"DescribeSecret " + mName: 1, "DescribeSecret " + sName: 1}
	withStateRead := maps.Clone(describes)
	withStateRead["GetSecretValue "+sName] = 1

	seen := map[store.Version]string{}
	s, v := &store.Secret{Name: name}, store.NoVersion
	for _, tr := range engineSequence {
		tr.change(s)
		v = mustSave(t, writer, s, v)
		if before, ok := seen[v]; ok {
			t.Fatalf("%s: Save returned %s, the version after %q", tr.name, v, before)
		}
		seen[v] = tr.name

		for _, c := range []struct {
			who  string
			st   *Store
			cost map[string]int
		}{
			{"writer", writer, describes},
			{"reader, first", reader, withStateRead},
			{"reader, unchanged", reader, describes},
		} {
			srv.ResetCalls()
			got, err := c.st.Version(ctx, name)
			if err != nil {
				t.Fatalf("%s: %s: Version: %v", tr.name, c.who, err)
			}
			if got != v {
				t.Fatalf("%s: %s: Version = %s, Save returned %s", tr.name, c.who, got, v)
			}
			if cost := calls(srv); !maps.Equal(cost, c.cost) {
				t.Errorf("%s: %s: Version made %v, want %v", tr.name, c.who, cost, c.cost)
			}
		}
		if _, lv := mustLoad(t, reader, name); lv != v {
			t.Fatalf("%s: Load version %s, Version %s", tr.name, lv, v)
		}
	}
}

// TestVersionOfMissingSecret: Version wraps store.ErrNotFound, as Load
// does, and does not count as a save.
func TestVersionOfMissingSecret(t *testing.T) {
	st, _ := newTestStore(t)
	if _, err := st.Version(t.Context(), "nosuch"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Version = %v, want ErrNotFound", err)
	}
	if _, err := st.Labels().Version(t.Context(), "nosuch"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("label Version = %v, want ErrNotFound", err)
	}
	if _, err := st.Version(t.Context(), "../bad"); err == nil {
		t.Fatal("Version accepted an invalid name")
	}
}

// mustMatchLoad checks that st.Version reports the version v that Load
// returned.
func mustMatchLoad(t *testing.T, st *Store, name string, v store.Version) {
	t.Helper()
	got, err := st.Version(t.Context(), name)
	if err != nil {
		t.Fatalf("Version %s: %v", name, err)
	}
	if got != v {
		t.Fatalf("Version %s = %s, Load returned %s", name, got, v)
	}
}
