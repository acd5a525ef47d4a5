package awssm

import (
	"maps"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/storesource"
)

// TestKeyringFollowsLabels: a Go application following the secret through
// the labels only (what the app IAM policy allows) sees AWSCURRENT as its
// current key and AWSPREVIOUS as the fallback after a rotation, and never
// needs the state secret.
func TestKeyringFollowsLabels(t *testing.T) {
	ctx := t.Context()
	st, srv := newTestStore(t)
	eng := &rotation.Engine{Store: st, Salt: []byte("s")}
	sec := rotation.Secret{Name: "clerk", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(ctx, storesource.New(st.Labels(), "clerk"))
	if err != nil {
		t.Fatal(err)
	}
	first := kr.Current().Value
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	if err := kr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	stateReads := srv.Count("GetSecretValue", st.StateName("clerk"))
	s, _, _ := st.Load(ctx, "clerk")
	if kr.Current().Value != s.Current.Value || kr.Set().Previous == nil || kr.Set().Previous.Value != first {
		t.Fatal("the keyring does not follow AWSCURRENT with AWSPREVIOUS as fallback")
	}
	if stateReads != 0 {
		t.Fatalf("the label reader read the state secret %d times", stateReads)
	}
	// A refresh of an unchanged secret reads its labels, not its values.
	srv.ResetCalls()
	if err := kr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := calls(srv), map[string]int{"DescribeSecret " + st.SecretName("clerk"): 1}; !maps.Equal(got, want) {
		t.Fatalf("a refresh of an unchanged secret made %v, want %v", got, want)
	}
}
