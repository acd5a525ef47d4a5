package rotation_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// needsOperator cannot mint: the operator must create a key by hand.
type needsOperator struct{}

func (needsOperator) Mint(context.Context, provider.MintRequest) (provider.Credential, error) {
	return provider.Credential{}, &provider.ActionRequiredError{Action: "create a key", Steps: []string{"create it", "stage it"}}
}
func (needsOperator) Test(context.Context, string) error      { return nil }
func (needsOperator) Revoke(context.Context, store.Key) error { return nil }

type eventLog struct {
	mu     sync.Mutex
	events []rotation.Event
}

func (l *eventLog) Record(_ context.Context, e rotation.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

// TestFailedEventCarriesErr: the failed event of a rotation that needs
// the operator carries the *provider.ActionRequiredError, so a recorder
// can tell it from other failures; its Detail is the message.
func TestFailedEventCarriesErr(t *testing.T) {
	log := &eventLog{}
	e := &rotation.Engine{Store: memstore.New(), Salt: []byte("salt"), Audit: log}
	sec := rotation.Secret{Name: "clerk", Provider: needsOperator{}, Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	if _, err := e.Rotate(t.Context(), sec); !errors.Is(err, provider.ErrCannotMint) {
		t.Fatalf("Rotate = %v, want ErrCannotMint", err)
	}
	var found bool
	for _, ev := range log.events {
		if ev.Status != rotation.StatusFailed {
			if ev.Err != nil {
				t.Errorf("%s %s carries Err %v", ev.Action, ev.Status, ev.Err)
			}
			continue
		}
		var are *provider.ActionRequiredError
		if !errors.As(ev.Err, &are) || len(are.Steps) != 2 || ev.Detail != ev.Err.Error() {
			t.Errorf("failed event %s: Err = %v, Detail %q; want the ActionRequiredError and its message", ev.Action, ev.Err, ev.Detail)
		}
		found = true
	}
	if !found {
		t.Fatalf("no failed event in %+v", log.events)
	}
}
