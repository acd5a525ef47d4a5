package vault

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/store"
)

// TestHistory walks a secret through stage, rotate and promote and checks
// that History lists every version oldest first with the key ids of that
// moment, its writer, and no values.
func TestHistory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t) // no WithWriter: falls back to the initiator, then the token
	started := time.Now().Add(-time.Minute)
	self, err := srv.Client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootIdentity := "vault:" + self.Data["display_name"].(string)

	sec := &store.Secret{Name: "clerk", Current: &store.Key{Value: "sk_test_a_" + uniqueName(""), ID: "kid-a"}}
	v1 := mustSave(t, st, sec, store.NoVersion)

	sec.Next = &store.Key{Value: "sk_test_b_" + uniqueName(""), ID: "kid-b", Source: store.SourceStaged}
	v2 := mustSave(t, st, sec, v1)

	sec.Pending, sec.Next = sec.Next, nil
	sec.Rotation = &store.Rotation{ID: "r1", Step: store.StepCreate, Initiator: "ci:github.com/org/app"}
	v3 := mustSave(t, st, sec, v2)

	sec.Previous, sec.Current, sec.Pending = sec.Current, sec.Pending, nil
	sec.Rotation.Step = store.StepPromote
	v4 := mustSave(t, st, sec, v3)

	// Version 2 is soft-deleted by an admin; History keeps its place.
	if err := srv.Client.KVv2("secret").DeleteVersions(ctx, st.prefix+"/clerk", []int{2}); err != nil {
		t.Fatal(err)
	}

	got, err := st.History(ctx, "clerk")
	if err != nil {
		t.Fatal(err)
	}
	want := []HistoryEntry{
		{Version: v1, WrittenBy: rootIdentity, CurrentKeyID: "kid-a"},
		{Version: v2, Deleted: true},
		{Version: v3, WrittenBy: "ci:github.com/org/app", CurrentKeyID: "kid-a", PendingKeyID: "kid-b", Step: store.StepCreate},
		{Version: v4, WrittenBy: "ci:github.com/org/app", CurrentKeyID: "kid-b", PreviousKeyID: "kid-a", Step: store.StepPromote},
	}
	if len(got) != len(want) {
		t.Fatalf("History has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.CreatedAt.Before(started) || g.CreatedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("entry %d: CreatedAt = %v, want about now", i, g.CreatedAt)
		}
		g.CreatedAt = time.Time{}
		if g != w {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, g, w)
		}
		assertNoValue(t, fmt.Sprintf("history entry %d", i), fmt.Sprintf("%+v", got[i]), sec)
	}
}

func TestHistoryOfMissingSecret(t *testing.T) {
	t.Parallel()
	st := rootStore(t)
	if _, err := st.History(t.Context(), "nothing-here"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("History of a missing secret: err = %v, want ErrNotFound", err)
	}
}

func mustSave(t *testing.T, st *Store, s *store.Secret, expected store.Version) store.Version {
	t.Helper()
	v, err := st.Save(t.Context(), s, expected)
	if err != nil {
		t.Fatalf("Save (expected %q): %v", expected, err)
	}
	return v
}
