package awssm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-dev/rotor/store"
)

// base is a fixed instant for keys made by tests.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// engineRotationID looks like the rotation ids the engine makes.
const engineRotationID = "20260301T120000Z-0a1b2c3d"

func key(value string) *store.Key {
	return &store.Key{Value: value, ID: "id-" + value, CreatedAt: base, Source: store.SourceMinted}
}

// awsView returns what AWS readers get for each slot label of the secret
// called mName: label → value. AWSPENDING on the AWSCURRENT version is
// left out, as it means no pending key.
func awsView(t *testing.T, c *sm.Client, mName string) map[string]string {
	t.Helper()
	ctx := t.Context()
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(mName)})
	if isNotFound(err) {
		return map[string]string{}
	}
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", mName, err)
	}
	view := map[string]string{}
	cur := holder(d.VersionIdsToStages, LabelCurrent)
	for _, l := range labels {
		vid := holder(d.VersionIdsToStages, l)
		if vid == "" || l == LabelPending && vid == cur {
			continue
		}
		g, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(mName), VersionStage: aws.String(l)})
		if err != nil {
			t.Fatalf("GetSecretValue %s %s: %v", mName, l, err)
		}
		view[l] = aws.ToString(g.SecretString)
	}
	return view
}

// slotView returns s's values by the label of their slot.
func slotView(s *store.Secret) map[string]string {
	view := map[string]string{}
	for _, l := range labels {
		if k := s.Slot(slotOf[l]); k != nil {
			view[l] = k.Value
		}
	}
	return view
}

func labelOf(t *testing.T, c *sm.Client, mName, label string) string {
	t.Helper()
	d, err := c.DescribeSecret(t.Context(), &sm.DescribeSecretInput{SecretId: aws.String(mName)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", mName, err)
	}
	return holder(d.VersionIdsToStages, label)
}

func mustLoad(t *testing.T, st store.Store, name string) (*store.Secret, store.Version) {
	t.Helper()
	s, v, err := st.Load(t.Context(), name)
	if err != nil {
		t.Fatalf("Load %s: %v", name, err)
	}
	return s, v
}

func mustSave(t *testing.T, st store.Store, s *store.Secret, v store.Version) store.Version {
	t.Helper()
	nv, err := st.Save(t.Context(), s, v)
	if err != nil {
		t.Fatalf("Save %s: %v", s.Name, err)
	}
	return nv
}

// faultAPI wraps the client and lets a test fail or answer calls.
type faultAPI struct {
	api
	mu sync.Mutex
	// hook runs before each wrapped call; a non-nil error fails the call
	// without sending it.
	hook func(op, secretID string) error
	// getState, when set, answers GetSecretValue of state secrets.
	getState func(in *sm.GetSecretValueInput) (*sm.GetSecretValueOutput, bool)
}

var errInjected = errors.New("injected failure")

func (f *faultAPI) before(op string, id *string) error {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(op, aws.ToString(id))
}

func (f *faultAPI) setHook(h func(op, secretID string) error) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// failOnce fails the first call of op on secret id.
func (f *faultAPI) failOnce(op, id string) {
	done := false
	f.setHook(func(o, s string) error {
		if o == op && s == id && !done {
			done = true
			return errInjected
		}
		return nil
	})
}

func (f *faultAPI) PutSecretValue(ctx context.Context, in *sm.PutSecretValueInput, o ...func(*sm.Options)) (*sm.PutSecretValueOutput, error) {
	if err := f.before("PutSecretValue", in.SecretId); err != nil {
		return nil, err
	}
	return f.api.PutSecretValue(ctx, in, o...)
}

func (f *faultAPI) UpdateSecretVersionStage(ctx context.Context, in *sm.UpdateSecretVersionStageInput, o ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error) {
	if err := f.before("UpdateSecretVersionStage", in.SecretId); err != nil {
		return nil, err
	}
	return f.api.UpdateSecretVersionStage(ctx, in, o...)
}

func (f *faultAPI) CreateSecret(ctx context.Context, in *sm.CreateSecretInput, o ...func(*sm.Options)) (*sm.CreateSecretOutput, error) {
	if err := f.before("CreateSecret", in.Name); err != nil {
		return nil, err
	}
	return f.api.CreateSecret(ctx, in, o...)
}

func (f *faultAPI) GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, o ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	if err := f.before("GetSecretValue", in.SecretId); err != nil {
		return nil, err
	}
	f.mu.Lock()
	gs := f.getState
	f.mu.Unlock()
	if gs != nil {
		if out, ok := gs(in); ok {
			return out, nil
		}
	}
	return f.api.GetSecretValue(ctx, in, o...)
}
