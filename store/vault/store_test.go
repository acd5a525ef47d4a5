package vault

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return rootStore(t) })
}

// TestLayoutReadableByApps checks the documented field layout with a plain
// KV read by a token holding only the app policy, as a consumer that is
// not rotor would read it.
func TestLayoutReadableByApps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t, WithWriter("ci:test"))
	sec := sampleSecret("clerk")
	sec.Previous.ExpiresAt = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	if _, err := st.Save(ctx, sec, store.NoVersion); err != nil {
		t.Fatal(err)
	}

	appToken := createToken(t, &api.TokenCreateRequest{Policies: []string{putPolicy(t, authz.RoleApp, st.prefix)}})
	app, err := srv.NewClient(appToken)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := app.KVv2("secret").Get(ctx, st.prefix+"/clerk")
	if err != nil {
		t.Fatalf("app reads the secret: %v", err)
	}
	want := map[string]string{
		"current":             sec.Current.Value,
		"current_key_id":      sec.Current.ID,
		"previous":            sec.Previous.Value,
		"previous_key_id":     sec.Previous.ID,
		"previous_expires_at": "2030-01-02T03:04:05Z",
		"written_by":          "ci:test",
		"rotor_format":        "1",
	}
	for field, w := range want {
		if got, _ := kv.Data[field].(string); got != w {
			t.Errorf("field %s: got %d bytes, want the %d bytes of %s", field, len(got), len(w), field)
		}
	}
	if _, ok := kv.Data["rotor"].(string); !ok {
		t.Error("field rotor missing")
	}
	if got := len(kv.Data); got != len(want)+1 {
		t.Errorf("version has %d fields, want %d", got, len(want)+1)
	}
}

// TestSparseSecretOmitsEmptySlots: an empty slot has no field, so a
// consumer never reads a stale value from it.
func TestSparseSecretOmitsEmptySlots(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t)
	sec := sampleSecret("sparse")
	v, err := st.Save(ctx, sec, store.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	sec.Previous = nil
	if _, err := st.Save(ctx, sec, v); err != nil {
		t.Fatal(err)
	}
	kv, err := srv.Client.KVv2("secret").Get(ctx, st.prefix+"/sparse")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"previous", "previous_key_id", "previous_expires_at"} {
		if _, ok := kv.Data[f]; ok {
			t.Errorf("field %s present after previous was emptied", f)
		}
	}
}

// TestVersionIsKVVersion: the store's versions are the KV version numbers,
// and a stale one is refused by Vault's cas check (not by a read before the
// write, which would race).
func TestVersionIsKVVersion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t)
	sec := sampleSecret("versions")
	v1, err := st.Save(ctx, sec, store.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := st.Save(ctx, sec, v1)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != "1" || v2 != "2" {
		t.Fatalf("versions = %q, %q; want \"1\", \"2\"", v1, v2)
	}
	// Somebody else writes version 3 behind the store's back.
	if _, err := srv.Client.KVv2("secret").Put(ctx, st.prefix+"/versions", map[string]any{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Save(ctx, sec, v2)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save with version 2 after an outside write: err = %v, want ErrConflict", err)
	}
	if StatusCode(err) != 0 {
		t.Errorf("conflict error should not expose the raw Vault response, got status %d", StatusCode(err))
	}
	md, err := srv.Client.KVv2("secret").GetMetadata(ctx, st.prefix+"/versions")
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != 3 {
		t.Errorf("current version = %d after the refused save, want 3", md.CurrentVersion)
	}
	for _, bad := range []store.Version{"0", "-1", "v2", "1.5"} {
		if _, err := st.Save(ctx, sec, bad); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("Save with version %q: err = %v, want an invalid-version error", bad, err)
		}
	}
}

// TestDeletedLatestVersion: a deleted or destroyed latest version makes
// the secret not found and unlisted; NoVersion then creates it again,
// exactly once, as the next KV version.
func TestDeletedLatestVersion(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"delete", "destroy"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := rootStore(t)
			if _, err := st.Save(ctx, sampleSecret("gone"), store.NoVersion); err != nil {
				t.Fatal(err)
			}
			kv := srv.Client.KVv2("secret")
			var err error
			if how == "delete" {
				err = kv.Delete(ctx, st.prefix+"/gone")
			} else {
				err = kv.Destroy(ctx, st.prefix+"/gone", []int{1})
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.Load(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Load after %s: err = %v, want ErrNotFound", how, err)
			}
			names, err := st.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 0 {
				t.Errorf("List after %s = %q, want none", how, names)
			}

			sec := sampleSecret("gone")
			v, err := st.Save(ctx, sec, store.NoVersion)
			if err != nil {
				t.Fatalf("re-create after %s: %v", how, err)
			}
			if v != "2" {
				t.Errorf("re-created version = %q, want \"2\"", v)
			}
			if _, err := st.Save(ctx, sampleSecret("gone"), store.NoVersion); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("second re-create: err = %v, want ErrConflict", err)
			}
			got, gotV, err := st.Load(ctx, "gone")
			if err != nil {
				t.Fatal(err)
			}
			if gotV != v || got.Current.ID != sec.Current.ID {
				t.Errorf("Load = %s at %q, want %s at %q", got.Current.ID, gotV, sec.Current.ID, v)
			}
		})
	}
}

// TestForeignSecret: a KV secret under the prefix that rotor did not write
// is reported as such, not misread, and List skips names rotor cannot use.
func TestForeignSecret(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t)
	kv := srv.Client.KVv2("secret")
	if _, err := kv.Put(ctx, st.prefix+"/foreign", map[string]any{"password": "hunter2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, st.prefix+"/sub/dir", map[string]any{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := st.Load(ctx, "foreign")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of a foreign KV secret: err = %v, want a not-written-by-rotor error", err)
	}
	names, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"foreign"}) {
		t.Errorf("List = %q, want [foreign] (sub/ is a folder)", names)
	}
}
