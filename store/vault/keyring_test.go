package vault

import (
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/storesource"
)

// TestKeyringPollsVault: an application on the keyring SDK follows a
// secret in Vault. With a token that may read metadata, polling reads the
// KV metadata only and loads the data when the version moved; with an
// app-policy token (data only) it loads every time and still works.
func TestKeyringPollsVault(t *testing.T) {
	ctx := t.Context()
	writer := rootStore(t)
	sec := sampleSecret("sdk")
	v1 := mustSave(t, writer, sec, store.NoVersion)
	if got, err := writer.Version(ctx, "sdk"); err != nil || got != v1 {
		t.Fatalf("Version = %q, %v; want %q, the version Load returns", got, err, v1)
	}
	if _, err := writer.Version(ctx, "nosuch"); err == nil {
		t.Fatal("Version of a missing secret succeeded")
	}

	appCfg := tokenConfig(t, createToken(t, &api.TokenCreateRequest{Policies: []string{putPolicy(t, authz.RoleApp, writer.prefix)}}))
	appCfg.Prefix = writer.prefix
	app := newStore(t, appCfg)
	for name, st := range map[string]*Store{"metadata reader": writer, "app policy": app} {
		t.Run(name, func(t *testing.T) {
			kr, err := keyring.New(ctx, storesource.New(st, "sdk"))
			if err != nil {
				t.Fatal(err)
			}
			if kr.Current().ID != sec.Current.ID {
				t.Fatalf("current = %s, want %s", kr.Current(), sec.Current.ID)
			}
			cur, ver, err := writer.Load(ctx, "sdk")
			if err != nil {
				t.Fatal(err)
			}
			next := cur.Clone()
			next.Previous, next.Current = next.Current, next.Next
			next.Next = nil
			mustSave(t, writer, next, ver)
			if err := kr.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if kr.Current().ID != next.Current.ID || kr.Set().Previous == nil || kr.Set().Previous.ID != next.Previous.ID {
				t.Fatalf("after the change: current %s previous %v", kr.Current(), kr.Set().Previous)
			}
			// Put the original back for the next subtest.
			_, ver, _ = writer.Load(ctx, "sdk")
			mustSave(t, writer, sec, ver)
		})
	}
}
