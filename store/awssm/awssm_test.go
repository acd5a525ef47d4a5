package awssm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// transition is one save of the rotation engine's sequence.
type transition struct {
	name   string
	change func(s *store.Secret)
	// calls on the secret applications read: CreateSecret, PutSecretValue,
	// UpdateSecretVersionStage.
	create, put, move int
}

func beginRotation(id string) func(*store.Secret) {
	return func(s *store.Secret) {
		s.Rotation = &store.Rotation{ID: id, StartedAt: base, Initiator: "ci:test", Holder: "host:1:abcd", LeaseExpiresAt: base.Add(time.Hour)}
	}
}

func step(st store.Step, f func(*store.Secret)) func(*store.Secret) {
	return func(s *store.Secret) {
		if f != nil {
			f(s)
		}
		s.Rotation.Step = st
	}
}

func promote(s *store.Secret) {
	if s.Previous != nil {
		s.Retired = append(s.Retired, *s.Previous)
	}
	prev := s.Current.Clone()
	prev.ExpiresAt = base.Add(24 * time.Hour)
	s.Previous, s.Current, s.Pending = prev, s.Pending, nil
}

func finish(s *store.Secret) { s.Rotation, s.LastRotatedAt = nil, base }

// engineSequence is the sequence of saves the rotation engine makes, with
// the calls each must cost on the secret applications read.
var engineSequence = []transition{
	{name: "first issue", change: func(s *store.Secret) { s.Current = key("c0") }, create: 1},
	{name: "start rotation", change: beginRotation(engineRotationID)},
	{name: "create: mint pending", change: step(store.StepCreate, func(s *store.Secret) { s.Pending = key("c1") }), put: 1},
	{name: "test", change: step(store.StepTest, nil)},
	{name: "promote", change: step(store.StepPromote, promote), move: 1},
	{name: "reload", change: step(store.StepReload, nil)},
	{name: "verify", change: step(store.StepVerify, nil)},
	{name: "finish", change: finish},
	{name: "stage next", change: func(s *store.Secret) { s.Next = key("c2") }, put: 1},
	{name: "start second rotation", change: beginRotation("20260301T130000Z-0a1b2c3d")},
	{name: "create: take next", change: step(store.StepCreate, func(s *store.Secret) { s.Pending, s.Next = s.Next, nil }), move: 2},
	{name: "promote second", change: step(store.StepPromote, promote), move: 1},
	{name: "rollback", change: func(s *store.Secret) {
		failed := *s.Current
		failed.ExpiresAt = base
		s.Current, s.Previous, s.Rotation = s.Previous, nil, nil
		s.Current.ExpiresAt = time.Time{}
		s.Retired = append(s.Retired, failed)
	}, move: 3},
	{name: "revoke a retired key", change: func(s *store.Secret) { s.Retired = s.Retired[1:] }},
	{name: "rotate once more", change: func(s *store.Secret) {
		beginRotation("20260301T140000Z-0a1b2c3d")(s)
		s.Pending = key("c3")
		promote(s)
		finish(s)
	}, put: 1}, // AWS moves AWSPREVIOUS along with AWSCURRENT
	{name: "revoke previous", change: func(s *store.Secret) { s.Previous = nil }, move: 1},
}

// TestSlotsAreStagingLabels walks the engine's sequence and checks after
// every save that AWS readers see each slot's value under its label, as a
// plain SecretString, and that the save cost the fewest calls: one
// PutSecretValue per new value, one UpdateSecretVersionStage per promote,
// one state write per save.
func TestSlotsAreStagingLabels(t *testing.T) {
	st, srv := newTestStore(t)
	c := srv.Client()
	const name = "clerk-secret-key"
	mName, sName := st.SecretName(name), st.StateName(name)
	s, v := &store.Secret{Name: name}, store.NoVersion
	for _, tr := range engineSequence {
		srv.ResetCalls()
		tr.change(s)
		v = mustSave(t, st, s, v)
		got := map[string]int{
			"create": srv.Count("CreateSecret", mName),
			"put":    srv.Count("PutSecretValue", mName),
			"move":   srv.Count("UpdateSecretVersionStage", mName),
		}
		want := map[string]int{"create": tr.create, "put": tr.put, "move": tr.move}
		if !maps.Equal(got, want) {
			t.Errorf("%s: calls on %s = %v, want %v", tr.name, mName, got, want)
		}
		if n := srv.Count("PutSecretValue", sName) + srv.Count("CreateSecret", sName); n != 1 {
			t.Errorf("%s: %d writes of the state secret, want 1", tr.name, n)
		}
		if got, want := awsView(t, c, mName), slotView(s); !maps.Equal(got, want) {
			t.Fatalf("%s: AWS readers see %v, want %v", tr.name, got, want)
		}
		loaded, lv := mustLoad(t, st, name)
		if lv != v {
			t.Fatalf("%s: Load version %s, Save returned %s", tr.name, lv, v)
		}
		if !maps.Equal(slotView(loaded), slotView(s)) || len(loaded.Retired) != len(s.Retired) || (loaded.Rotation == nil) != (s.Rotation == nil) {
			t.Fatalf("%s: Load returned another secret than was saved", tr.name)
		}
	}
}

// TestPendingVersionIsTheRotation checks that a minted pending key is
// written with the ClientRequestToken "<rotation id>-pending", so AWS's
// version history names the rotation, and that a rotation id too short for
// a token gets a derived one.
func TestPendingVersionIsTheRotation(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{engineRotationID, engineRotationID + "-pending"},
		{"rot-short", ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			st, srv := newTestStore(t)
			s := &store.Secret{Name: "k", Current: key("c0")}
			v := mustSave(t, st, s, store.NoVersion)
			beginRotation(tc.id)(s)
			s.Pending = key("p1")
			mustSave(t, st, s, v)
			got := labelOf(t, srv.Client(), st.SecretName("k"), LabelPending)
			if tc.want != "" && got != tc.want {
				t.Fatalf("AWSPENDING version = %q, want %q", got, tc.want)
			}
			if tc.want == "" && (len(got) < 32 || strings.Contains(got, tc.id)) {
				t.Fatalf("AWSPENDING version = %q, want a derived 32+ character token", got)
			}
		})
	}
}

// TestResumedCreateIsIdempotent crashes a create between the commit of the
// state and the PutSecretValue of the pending value, then resumes: the
// committed pending key is reported, and the next save writes it once,
// under the same version id.
func TestResumedCreateIsIdempotent(t *testing.T) {
	srv := awsfake.Start(t, awsfake.Options{})
	c := srv.Client()
	fa := &faultAPI{api: c}
	st := newStore(fa, Options{})
	mName := st.SecretName("k")
	s := &store.Secret{Name: "k", Current: key("c0")}
	v := mustSave(t, st, s, store.NoVersion)
	beginRotation(engineRotationID)(s)
	step(store.StepCreate, func(s *store.Secret) { s.Pending = key("p1") })(s)

	fa.failOnce("PutSecretValue", mName)
	_, err := st.Save(t.Context(), s, v)
	if err == nil || errors.Is(err, store.ErrConflict) || !errors.Is(err, errInjected) {
		t.Fatalf("Save with a failing put = %v, want the injected error, not a conflict", err)
	}
	if _, ok := awsView(t, c, mName)[LabelPending]; ok {
		t.Fatal("AWSPENDING is set although the put failed")
	}
	got, v2 := mustLoad(t, st, "k")
	if got.Pending == nil || got.Pending.Value != "p1" || got.Rotation.Step != store.StepCreate {
		t.Fatalf("Load after the interrupted save: pending %v step %v, want the committed pending key", got.Pending, got.Rotation)
	}

	got.Rotation.Step = store.StepTest
	mustSave(t, st, got, v2)
	if pv := labelOf(t, c, mName, LabelPending); pv != engineRotationID+"-pending" {
		t.Fatalf("AWSPENDING version = %q, want the rotation's", pv)
	}
	if got := awsView(t, c, mName)[LabelPending]; got != "p1" {
		t.Fatal("AWSPENDING does not hold the pending value")
	}
	out, err := c.ListSecretVersionIds(t.Context(), &sm.ListSecretVersionIdsInput{SecretId: aws.String(mName), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Versions) != 2 {
		t.Fatalf("%d versions, want current and one pending", len(out.Versions))
	}
}

// TestInterruptedPromoteIsCompleted fails the label move of a promote after
// its commit: Load reports the committed promote, AWS readers still get the
// old key (valid as previous), and the next save moves AWSCURRENT.
func TestInterruptedPromoteIsCompleted(t *testing.T) {
	srv := awsfake.Start(t, awsfake.Options{})
	c := srv.Client()
	fa := &faultAPI{api: c}
	st := newStore(fa, Options{})
	mName := st.SecretName("k")
	s := &store.Secret{Name: "k", Current: key("c0")}
	v := mustSave(t, st, s, store.NoVersion)
	beginRotation(engineRotationID)(s)
	step(store.StepCreate, func(s *store.Secret) { s.Pending = key("c1") })(s)
	v = mustSave(t, st, s, v)

	step(store.StepPromote, promote)(s)
	fa.failOnce("UpdateSecretVersionStage", mName)
	if _, err := st.Save(t.Context(), s, v); !errors.Is(err, errInjected) {
		t.Fatalf("Save = %v, want the injected error", err)
	}
	got, v2 := mustLoad(t, st, "k")
	if got.Current.Value != "c1" || got.Previous.Value != "c0" || got.Rotation.Step != store.StepPromote {
		t.Fatal("Load does not report the committed promote")
	}
	if cur := awsView(t, c, mName)[LabelCurrent]; cur != "c0" {
		t.Fatalf("AWSCURRENT = %s before the next save, want c0 (nothing applied)", cur)
	}
	// Loading again gives the same version: the interruption is not
	// mistaken for a change made outside rotor.
	if _, again := mustLoad(t, st, "k"); again != v2 {
		t.Fatalf("second Load version %s, first %s", again, v2)
	}
	mustMatchLoad(t, st, "k", v2)
	mustMatchLoad(t, NewFromClient(c, Options{}), "k", v2)

	got.Rotation.Step = store.StepReload
	v3 := mustSave(t, st, got, v2)
	if view := awsView(t, c, mName); view[LabelCurrent] != "c1" || view[LabelPrevious] != "c0" {
		t.Fatalf("after the next save AWS readers see %v, want c1 current and c0 previous", view)
	}
	if _, lv := mustLoad(t, st, "k"); lv != v3 {
		t.Fatalf("Load version %s, Save returned %s", lv, v3)
	}
}

// TestLosingWriterWritesNothing interleaves two writers that loaded the
// same version so that both pass the version check: the second one's
// commit fails and it touches neither secret.
func TestLosingWriterWritesNothing(t *testing.T) {
	srv := awsfake.Start(t, awsfake.Options{})
	c := srv.Client()
	st1 := NewFromClient(c, Options{})
	fa := &faultAPI{api: c}
	st2 := newStore(fa, Options{})
	mName, sName := st1.SecretName("k"), st1.StateName("k")
	v := mustSave(t, st1, &store.Secret{Name: "k", Current: key("c0")}, store.NoVersion)

	s1, _ := mustLoad(t, st1, "k")
	s2, _ := mustLoad(t, st2, "k")
	s1.Next = key("n1")
	s2.Next = key("n2")
	won := false
	fa.setHook(func(op, id string) error {
		if op == "PutSecretValue" && id == sName && !won {
			won = true
			mustSave(t, st1, s1, v) // commits and applies first
			srv.ResetCalls()
		}
		return nil
	})
	_, err := st2.Save(t.Context(), s2, v)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second writer: err = %v, want ErrConflict", err)
	}
	for _, op := range []string{"CreateSecret", "PutSecretValue", "UpdateSecretVersionStage"} {
		if n := srv.Count(op, mName); n != 0 {
			t.Errorf("the losing writer made %d %s calls on %s", n, op, mName)
		}
	}
	if got, _ := mustLoad(t, st1, "k"); got.Next.Value != "n1" {
		t.Fatal("the winner's save was lost")
	}
	if got := awsView(t, c, mName)[LabelNext]; got != "n1" {
		t.Fatalf("ROTOR_NEXT = %s, want the winner's", got)
	}
}

// TestStaleReadLoses serves a writer an outdated state (Secrets Manager is
// eventually consistent): its commit reuses the token of the save it missed
// and fails with ErrConflict instead of overwriting it.
func TestStaleReadLoses(t *testing.T) {
	srv := awsfake.Start(t, awsfake.Options{})
	c := srv.Client()
	st := NewFromClient(c, Options{})
	sName := st.StateName("k")
	s := &store.Secret{Name: "k", Current: key("c0")}
	v1 := mustSave(t, st, s, store.NoVersion)
	old, err := c.GetSecretValue(t.Context(), &sm.GetSecretValueInput{SecretId: aws.String(sName)})
	if err != nil {
		t.Fatal(err)
	}
	s.Current.Meta = map[string]string{"saved": "second"}
	mustSave(t, st, s, v1)

	stale := newStore(&faultAPI{api: c, getState: func(in *sm.GetSecretValueInput) (*sm.GetSecretValueOutput, bool) {
		return old, aws.ToString(in.SecretId) == sName
	}}, Options{})
	got, v, err := stale.Load(t.Context(), "k")
	if err != nil || v != v1 || got.Current.Meta["saved"] != "" {
		t.Fatalf("stale Load = %v, %v; the test needs the first version", v, err)
	}
	got.Current.Meta = map[string]string{"saved": "stale"}
	if _, err := stale.Save(t.Context(), got, v); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save on a stale read: err = %v, want ErrConflict", err)
	}
	if now, _ := mustLoad(t, st, "k"); now.Current.Meta["saved"] != "second" {
		t.Fatalf("stored meta = %v, want the second save's", now.Current.Meta)
	}
}

// TestExternalPendingIsARotationInProgress sets AWSPENDING on a new version
// the way an AWS rotation Lambda does: Load reports a rotation in progress,
// the engine refuses to rotate, and an abort retires the value and removes
// the label.
func TestExternalPendingIsARotationInProgress(t *testing.T) {
	st, srv := newTestStore(t)
	c := srv.Client()
	mName := st.SecretName("db")
	mustSave(t, st, &store.Secret{Name: "db", Current: key("c0")}, store.NoVersion)
	const lambdaToken = "6f0c2b0e-1d4f-4b7e-9a55-1e2f3a4b5c6d"
	if _, err := c.PutSecretValue(t.Context(), &sm.PutSecretValueInput{
		SecretId: aws.String(mName), ClientRequestToken: aws.String(lambdaToken),
		SecretString: aws.String("lambda-pending"), VersionStages: []string{LabelPending},
	}); err != nil {
		t.Fatal(err)
	}

	s, _ := mustLoad(t, st, "db")
	r := s.Rotation
	if r == nil || r.ID != lambdaToken || r.Step != store.StepCreate || r.Initiator != ExternalInitiator || r.Holder != ExternalHolder {
		t.Fatalf("rotation = %+v, want the external rotation %s at step create", r, lambdaToken)
	}
	if r.StartedAt.IsZero() || !r.LeaseExpiresAt.After(time.Now().AddDate(100, 0, 0)) {
		t.Fatalf("rotation started %v, lease until %v: want the version's creation and a lease that never ends", r.StartedAt, r.LeaseExpiresAt)
	}
	if s.Pending == nil || s.Pending.Value != "lambda-pending" || s.Pending.Source != SourceExternal {
		t.Fatalf("pending = %v, want the external value", s.Pending)
	}

	prov := rotationtest.NewProvider()
	eng := &rotation.Engine{Store: st, Salt: []byte("salt"), Holder: rotation.NewHolder(), Now: func() time.Time { return base }}
	sec := rotation.Secret{Name: "db", Provider: prov, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: 10 * time.Minute}
	_, err := eng.Rotate(t.Context(), sec)
	ipe, ok := errors.AsType[*rotation.InProgressError](err)
	if !ok || ipe.ID != lambdaToken {
		t.Fatalf("Rotate = %v, want ErrRotationInProgress for %s", err, lambdaToken)
	}
	if len(prov.Minted()) != 0 {
		t.Fatal("the engine minted a key during an external rotation")
	}

	if _, err := eng.Abort(t.Context(), sec); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	s, _ = mustLoad(t, st, "db")
	if s.Rotation != nil || s.Pending != nil || len(s.Retired) != 1 || s.Retired[0].Value != "lambda-pending" {
		t.Fatalf("after abort: rotation %v pending %v retired %v, want the external key retired", s.Rotation, s.Pending, s.Retired)
	}
	if got := awsView(t, c, mName); !maps.Equal(got, map[string]string{LabelCurrent: "c0"}) {
		t.Fatalf("after abort AWS readers see %v, want c0 alone", got)
	}
}

// TestAdoptsAnExistingSecret loads a secret another tool created, with no
// rotor state: its labels are the slots, and the first save records it
// without writing a new version.
func TestAdoptsAnExistingSecret(t *testing.T) {
	st, srv := newTestStore(t)
	c := srv.Client()
	mName := st.SecretName("legacy")
	if _, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String(mName), ClientRequestToken: aws.String(derive("test", "legacy")), SecretString: aws.String("legacy-v1")}); err != nil {
		t.Fatal(err)
	}
	s, v := mustLoad(t, st, "legacy")
	if v == store.NoVersion || s.Current == nil || s.Current.Value != "legacy-v1" || s.Current.Source != SourceExternal || s.Rotation != nil {
		t.Fatalf("Load = %+v at %q, want the existing value as current", s.Current, v)
	}
	mustMatchLoad(t, st, "legacy", v)
	if _, err := st.Save(t.Context(), s, store.NoVersion); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create over an existing secret: err = %v, want ErrConflict", err)
	}
	srv.ResetCalls()
	s.Current.ID = "id-legacy"
	v2 := mustSave(t, st, s, v)
	if n := srv.Count("PutSecretValue", mName) + srv.Count("UpdateSecretVersionStage", mName); n != 0 {
		t.Fatalf("adoption made %d writes to %s, want none", n, mName)
	}
	got, lv := mustLoad(t, st, "legacy")
	if lv != v2 || got.Current.ID != "id-legacy" || got.Current.Value != "legacy-v1" {
		t.Fatalf("after adoption Load = %v at %s", got.Current, lv)
	}
	mustMatchLoad(t, st, "legacy", v2)
	names, err := st.List(t.Context())
	if err != nil || !slices.Equal(names, []string{"legacy"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
}

// rotated returns a store holding secret k after two rotations: current
// c2, previous c1 (expiring), retired c0.
func rotated(t *testing.T) (*Store, *awsfake.Server, *store.Secret, store.Version) {
	t.Helper()
	st, srv := newTestStore(t)
	s := &store.Secret{Name: "k", Current: key("c0")}
	v := mustSave(t, st, s, store.NoVersion)
	for i, id := range []string{"20260301T120000Z-00000001", "20260301T120000Z-00000002"} {
		beginRotation(id)(s)
		s.Pending = key(fmt.Sprint("c", i+1))
		v = mustSave(t, st, s, v)
		promote(s)
		finish(s)
		v = mustSave(t, st, s, v)
	}
	return st, srv, s, v
}

// TestChangesMadeOutsideRotor moves labels the way an operator would with
// the AWS console or CLI, and checks that Load reports what AWS readers
// see, keeps every key that may still be valid, and that the next save
// records it.
func TestChangesMadeOutsideRotor(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, c *sm.Client, mName string)
		want   map[string]string // label → value after the change
		// retired values Load must report, in any order
		retired []string
	}{
		{
			name: "new value put from the console",
			change: func(t *testing.T, c *sm.Client, mName string) {
				if _, err := c.PutSecretValue(t.Context(), &sm.PutSecretValueInput{SecretId: aws.String(mName), ClientRequestToken: aws.String(derive("console")), SecretString: aws.String("console")}); err != nil {
					t.Fatal(err)
				}
			},
			want:    map[string]string{LabelCurrent: "console", LabelPrevious: "c2"},
			retired: []string{"c0", "c1"},
		},
		{
			name: "rolled back with update-secret-version-stage",
			change: func(t *testing.T, c *sm.Client, mName string) {
				cur, prev := labelOf(t, c, mName, LabelCurrent), labelOf(t, c, mName, LabelPrevious)
				if _, err := c.UpdateSecretVersionStage(t.Context(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(mName), VersionStage: aws.String(LabelCurrent), MoveToVersionId: aws.String(prev), RemoveFromVersionId: aws.String(cur)}); err != nil {
					t.Fatal(err)
				}
			},
			want:    map[string]string{LabelCurrent: "c1", LabelPrevious: "c2"},
			retired: []string{"c0"},
		},
		{
			name: "current moved back to a retired key",
			change: func(t *testing.T, c *sm.Client, mName string) {
				out, err := c.ListSecretVersionIds(t.Context(), &sm.ListSecretVersionIdsInput{SecretId: aws.String(mName), IncludeDeprecated: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				first := aws.ToString(out.Versions[0].VersionId) // c0, retired
				cur := labelOf(t, c, mName, LabelCurrent)
				if _, err := c.UpdateSecretVersionStage(t.Context(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(mName), VersionStage: aws.String(LabelCurrent), MoveToVersionId: aws.String(first), RemoveFromVersionId: aws.String(cur)}); err != nil {
					t.Fatal(err)
				}
			},
			want:    map[string]string{LabelCurrent: "c0", LabelPrevious: "c2"},
			retired: []string{"c1"},
		},
		{
			name: "previous label removed",
			change: func(t *testing.T, c *sm.Client, mName string) {
				prev := labelOf(t, c, mName, LabelPrevious)
				if _, err := c.UpdateSecretVersionStage(t.Context(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(mName), VersionStage: aws.String(LabelPrevious), RemoveFromVersionId: aws.String(prev)}); err != nil {
					t.Fatal(err)
				}
			},
			want:    map[string]string{LabelCurrent: "c2"},
			retired: []string{"c0", "c1"},
		},
		{
			name: "stray AWSPENDING on a retired key",
			change: func(t *testing.T, c *sm.Client, mName string) {
				out, err := c.ListSecretVersionIds(t.Context(), &sm.ListSecretVersionIdsInput{SecretId: aws.String(mName), IncludeDeprecated: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				first := aws.ToString(out.Versions[0].VersionId) // c0, retired
				cur := labelOf(t, c, mName, LabelCurrent)        // holds AWSPENDING since the promote
				if _, err := c.UpdateSecretVersionStage(t.Context(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(mName), VersionStage: aws.String(LabelPending), MoveToVersionId: aws.String(first), RemoveFromVersionId: aws.String(cur)}); err != nil {
					t.Fatal(err)
				}
			},
			want:    map[string]string{LabelCurrent: "c2", LabelPrevious: "c1"},
			retired: []string{"c0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, srv, _, v := rotated(t)
			c := srv.Client()
			mName := st.SecretName("k")
			tc.change(t, c, mName)

			s, v2 := mustLoad(t, st, "k")
			if v2 == v {
				t.Fatal("Load version did not change after the labels moved")
			}
			mustMatchLoad(t, st, "k", v2)
			mustMatchLoad(t, NewFromClient(c, Options{}), "k", v2)
			if got := slotView(s); !maps.Equal(got, tc.want) {
				t.Fatalf("Load slots = %v, want %v", got, tc.want)
			}
			var retired []string
			for _, k := range s.Retired {
				retired = append(retired, k.Value)
			}
			if !slices.Equal(slices.Sorted(slices.Values(retired)), tc.retired) {
				t.Fatalf("retired = %v, want %v", retired, tc.retired)
			}
			for _, k := range []*store.Key{s.Current, s.Previous} {
				if k != nil && k.Value != "console" && k.ID != "id-"+k.Value {
					t.Errorf("key %s lost its metadata", k.Value)
				}
			}
			if _, err := st.Save(t.Context(), s, v); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Save with the version from before the change: err = %v, want ErrConflict", err)
			}
			v3 := mustSave(t, st, s, v2)
			if got := awsView(t, c, mName); !maps.Equal(got, tc.want) {
				t.Fatalf("after the save AWS readers see %v, want %v", got, tc.want)
			}
			if _, lv := mustLoad(t, st, "k"); lv != v3 {
				t.Fatalf("Load version %s after the save, want %s", lv, v3)
			}
			mustMatchLoad(t, st, "k", v3)
		})
	}
}

// TestNoCurrentWritesNothingToAWS saves a first rotation's pending key
// before there is a current one: Secrets Manager would make it AWSCURRENT,
// so it stays in the record until the promote creates the secret.
func TestNoCurrentWritesNothingToAWS(t *testing.T) {
	st, srv := newTestStore(t)
	c := srv.Client()
	mName := st.SecretName("k")
	s := &store.Secret{Name: "k"}
	beginRotation(engineRotationID)(s)
	v := mustSave(t, st, s, store.NoVersion)
	step(store.StepCreate, func(s *store.Secret) { s.Pending = key("p1") })(s)
	v = mustSave(t, st, s, v)
	if _, err := c.DescribeSecret(t.Context(), &sm.DescribeSecretInput{SecretId: aws.String(mName)}); !isNotFound(err) {
		t.Fatalf("DescribeSecret = %v, want the secret not created yet", err)
	}
	if got, _ := mustLoad(t, st, "k"); got.Pending == nil || got.Pending.Value != "p1" {
		t.Fatal("Load lost the pending key")
	}
	step(store.StepPromote, func(s *store.Secret) { s.Current, s.Pending = s.Pending, nil })(s)
	mustSave(t, st, s, v)
	if got := awsView(t, c, mName); !maps.Equal(got, map[string]string{LabelCurrent: "p1"}) {
		t.Fatalf("AWS readers see %v, want p1 current", got)
	}
	if vid := labelOf(t, c, mName, LabelCurrent); vid != engineRotationID+"-pending" {
		t.Fatalf("AWSCURRENT version = %q, want the rotation's pending version", vid)
	}
}

// TestRotationTokenNotReused drops a rotation's pending key and writes
// another value for the same rotation: the rotation's token already names
// a version, so the new value gets a derived one instead of failing.
func TestRotationTokenNotReused(t *testing.T) {
	st, srv := newTestStore(t)
	c := srv.Client()
	mName := st.SecretName("k")
	s := &store.Secret{Name: "k", Current: key("c0")}
	v := mustSave(t, st, s, store.NoVersion)
	beginRotation(engineRotationID)(s)
	s.Pending = key("p1")
	v = mustSave(t, st, s, v)
	s.Pending = nil // dropped, not retired: the record forgets its version
	v = mustSave(t, st, s, v)
	s.Pending = key("p2")
	mustSave(t, st, s, v)
	vid := labelOf(t, c, mName, LabelPending)
	if vid == "" || vid == engineRotationID+"-pending" {
		t.Fatalf("AWSPENDING version = %q, want a new one", vid)
	}
	if got := awsView(t, c, mName)[LabelPending]; got != "p2" {
		t.Fatal("AWSPENDING does not hold the second value")
	}
}

// TestList checks that List strips the prefix, lists a secret once
// whatever number of its secrets exist, and skips names rotor cannot own.
func TestList(t *testing.T) {
	srv := awsfake.Start(t, awsfake.Options{})
	c := srv.Client()
	st := NewFromClient(c, Options{Prefix: "team-a/"})
	for _, n := range []string{"b", "a"} {
		mustSave(t, st, &store.Secret{Name: n, Current: key(n)}, store.NoVersion)
	}
	mustSave(t, st, &store.Secret{Name: "only-state"}, store.NoVersion) // no key: no secret, only its state
	for i, n := range []string{"team-a/legacy", "team-a/x/y", "team-b/c", "team-a/.hidden", "team-a"} {
		if _, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String(n), ClientRequestToken: aws.String(derive(fmt.Sprint(i))), SecretString: aws.String("v")}); err != nil {
			t.Fatal(err)
		}
	}
	names, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "legacy", "only-state"}; !slices.Equal(names, want) {
		t.Fatalf("List = %q, want %q", names, want)
	}
}

// TestErrorsNeverContainValues provokes every kind of error around values
// and checks that no value reaches the message.
func TestErrorsNeverContainValues(t *testing.T) {
	const leak = "sk_live_LEAKED"
	srv := awsfake.Start(t, awsfake.Options{})
	c := srv.Client()
	fa := &faultAPI{api: c}
	st := newStore(fa, Options{})
	var errs []error

	for i, doc := range []string{
		`{"format":1,"secret":"` + leak + `","slots":{"current":{"value":"` + leak + `"}}}`,
		`{"format":1,"secret":"bad-json","slots":` + leak + `}`,
		`{"format":"` + leak + `"}`,
		`{"format":1,"secret":"bad-slot","slots":{"` + leak + `":{"value":"` + leak + `"}}}`,
	} {
		name := []string{"other", "bad-json", "bad-type", "bad-slot"}[i]
		if _, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String(st.StateName(name)), ClientRequestToken: aws.String(derive(name)), SecretString: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
		_, _, err := st.Load(t.Context(), name)
		if err == nil {
			t.Fatalf("Load of malformed state %s succeeded", name)
		}
		errs = append(errs, err)
	}

	s := &store.Secret{Name: "k", Current: key(leak + "-current")}
	v := mustSave(t, st, s, store.NoVersion)
	s.Pending = key(leak + "-pending")
	_, err := st.Save(t.Context(), s, "stale")
	errs = append(errs, err)
	fa.failOnce("PutSecretValue", st.SecretName("k"))
	_, err = st.Save(t.Context(), s, v)
	errs = append(errs, err)
	big := &store.Secret{Name: "big", Current: key(leak + strings.Repeat("x", 70000))}
	_, err = st.Save(t.Context(), big, store.NoVersion)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
		} else if strings.Contains(err.Error(), leak) {
			t.Errorf("case %d: error contains a secret value: %v", i, err)
		}
	}
}

// TestInterruptedLayouts checks how view tells a save that stopped half
// way from a change made outside rotor.
func TestInterruptedLayouts(t *testing.T) {
	promotePrior := layout{Current: "c", Previous: "o", Pending: "p"}
	promoteTarget := layout{Current: "p", Previous: "c"}
	rollbackPrior := layout{Current: "p", Previous: "c", Pending: "p"}
	rollbackTarget := layout{Current: "c"}
	tests := []struct {
		name                  string
		actual, prior, target layout
		want                  bool
	}{
		{"promote not applied", promotePrior, promotePrior, promoteTarget, true},
		{"promote applied", layout{Current: "p", Previous: "c", Pending: "p"}, promotePrior, promoteTarget, true},
		{"rollback half applied", layout{Current: "c", Previous: "p", Pending: "p"}, rollbackPrior, rollbackTarget, true},
		{"rollback previous removed", layout{Current: "c", Pending: "p"}, rollbackPrior, rollbackTarget, true},
		{"current moved elsewhere", layout{Current: "x", Previous: "c"}, promotePrior, promoteTarget, false},
		{"pending set by someone else", layout{Current: "p", Previous: "c", Pending: "l"}, promotePrior, promoteTarget, false},
	}
	for _, tc := range tests {
		if got := interrupted(tc.actual, tc.prior, tc.target); got != tc.want {
			t.Errorf("%s: interrupted = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLoadLabels reads a secret the way an application with the app
// policy can: AWSCURRENT and AWSPREVIOUS only, never the state secret.
func TestLoadLabels(t *testing.T) {
	st, srv, s, _ := rotated(t)
	srv.ResetCalls()
	got, v, err := st.LoadLabels(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if got.Current.Value != s.Current.Value || got.Previous.Value != s.Previous.Value || got.Next != nil || got.Pending != nil {
		t.Fatalf("LoadLabels = %v, want current and previous values", slotView(got))
	}
	app := parsePolicy(t, authz.RoleApp, PolicyOptions{})
	for _, c := range srv.Calls() {
		if c.Secret != st.SecretName("k") || !slices.Contains(app.Statement[0].Action, "secretsmanager:"+c.Operation) {
			t.Errorf("LoadLabels called %s on %s, which the app policy does not allow", c.Operation, c.Secret)
		}
	}

	if _, v2, err := st.LoadLabels(t.Context(), "k"); err != nil || v2 != v {
		t.Fatalf("LoadLabels again = %s, %v; want the same version %s", v2, err, v)
	}
	// The version alone is one DescribeSecret, which the app policy
	// allows.
	srv.ResetCalls()
	if lv, err := st.Labels().Version(t.Context(), "k"); err != nil || lv != v {
		t.Fatalf("label Version = %s, %v; want LoadLabels' %s", lv, err, v)
	}
	if got, want := calls(srv), map[string]int{"DescribeSecret " + st.SecretName("k"): 1}; !maps.Equal(got, want) {
		t.Fatalf("label Version made %v, want %v", got, want)
	}
	s.Previous = nil
	mustSave(t, st, s, mustVersion(t, st, "k"))
	_, v3, err := st.LoadLabels(t.Context(), "k")
	if err != nil || v3 == v {
		t.Fatalf("LoadLabels after previous was cleared: version %s, %v; want a new one", v3, err)
	}
	if lv, err := st.Labels().Version(t.Context(), "k"); err != nil || lv != v3 {
		t.Fatalf("label Version after previous was cleared = %s, %v; want %s", lv, err, v3)
	}
	if _, _, err := st.LoadLabels(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LoadLabels of a missing secret = %v, want ErrNotFound", err)
	}
}

func mustVersion(t *testing.T, st store.Store, name string) store.Version {
	t.Helper()
	_, v := mustLoad(t, st, name)
	return v
}
