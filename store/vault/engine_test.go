package vault

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// TestEngineScenarios runs the rotation engine's scenarios (full cycle,
// rollback, crash at every step, twenty concurrent rotators → one) against
// the real Vault server, with every transition a KV v2 cas write.
func TestEngineScenarios(t *testing.T) {
	rotationtest.Run(t, func(t *testing.T) store.Store { return rootStore(t) })
}

// TestRotationSurvivesVaultOutage cuts the connection to Vault in the
// middle of a rotation (during the reload step, after promote was saved).
// The rotation fails with an error naming Vault, the stored secret is a
// consistent promoted state with its lease, and the next run, from another
// process once this one is gone, resumes and completes it.
func TestRotationSurvivesVaultOutage(t *testing.T) {
	ctx := t.Context()
	p := startProxy(t, strings.TrimPrefix(srv.Addr, "http://"))
	cfg := tokenConfig(t, srv.Token)
	cfg.Address = "http://" + p.addr()
	st := newStore(t, cfg, WithAPIConfig(func(c *api.Config) { c.MaxRetries = 0 }))
	directCfg := tokenConfig(t, srv.Token)
	directCfg.Prefix = cfg.Prefix
	direct := newStore(t, directCfg) // straight to Vault, for looking

	prov := rotationtest.NewProvider()
	sec := rotation.Secret{Name: "outage", Provider: prov, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: time.Minute}
	first := &rotation.Engine{Store: st, Salt: []byte("salt"), Holder: "h1"}
	if _, err := first.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	before, _, _ := direct.Load(ctx, "outage")

	cutting := sec
	cutting.Reload = rotationtest.HookFunc(func(context.Context, *store.Secret) error {
		p.cut() // Vault goes away right after promote was saved
		return nil
	})
	crashed := &rotation.Engine{Store: st, Salt: []byte("salt"), Holder: "h2"}
	_, err := crashed.Rotate(ctx, cutting)
	if err == nil || !strings.Contains(err.Error(), cfg.Address) {
		t.Fatalf("rotate with Vault cut = %v, want an error naming %s", err, cfg.Address)
	}
	mid, _, err := direct.Load(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	if mid.Rotation == nil || mid.Rotation.Step != store.StepPromote || mid.Current == nil || mid.Previous == nil || mid.Previous.ID != before.Current.ID {
		t.Fatalf("state after the outage: rotation %+v current %v previous %v; want promoted with the lease kept", mid.Rotation, mid.Current, mid.Previous)
	}

	p.restore()
	next := &rotation.Engine{Store: st, Salt: []byte("salt"), Holder: "h3",
		HolderAlive: func(h string) bool { return h != "h2" }} // h2's process is gone
	res, err := next.Rotate(ctx, sec)
	if err != nil || !res.Resumed {
		t.Fatalf("rerun = %+v, %v; want a resumed rotation", res, err)
	}
	after, _, _ := direct.Load(ctx, "outage")
	if after.Rotation != nil || after.Current.ID != mid.Current.ID || after.Previous.ID != before.Current.ID {
		t.Fatalf("after resume: rotation %+v current %s previous %v", after.Rotation, after.Current.ID, after.Previous)
	}
}
