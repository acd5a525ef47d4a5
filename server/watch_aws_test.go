package server_test

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/awssm"
)

// awsBackend is the test backend as rotor serve runs it over AWS Secrets
// Manager: the engine (the CLI, in another process) writes through one
// store, and the watch reader reads through another, which tells versions
// with DescribeSecret (awssm.Store.Version).
type awsBackend struct {
	*servertest.Backend
	reader   *awssm.Store
	versions atomic.Int64 // Version calls answered
}

var _ server.Versioner = (*awsBackend)(nil)

func (b *awsBackend) Version(ctx context.Context, name string) (store.Version, error) {
	defer b.versions.Add(1)
	return b.reader.Version(ctx, name)
}

func (b *awsBackend) KeySet(ctx context.Context, name string) (server.KeySet, error) {
	s, ver, err := b.reader.Load(ctx, name)
	if err != nil {
		return server.KeySet{}, err
	}
	return server.KeySetOf(s, ver, b.Clock.Now())
}

// TestWatchAWSReadsOncePerPoll: watchers of a secret in AWS Secrets
// Manager share one reader, whose poll of an unchanged secret costs two
// DescribeSecret calls and no GetSecretValue, however many watchers there
// are; a rotation by another process costs one read of the new state
// (two GetSecretValue of the state secret: the new document's head, then
// Load), again not one per watcher. Polls are driven by Notify, so the
// counts are exact and nothing is timed.
func TestWatchAWSReadsOncePerPoll(t *testing.T) {
	sm := awsfake.Start(t, awsfake.Options{})
	var ab *awsBackend
	e := newEnvWith(t, func(b *servertest.Backend) server.Backend {
		b.Store = awssm.NewFromClient(sm.Client(), awssm.Options{})
		for range 2 {
			if _, err := b.Rotate(t.Context(), "clerk", "user:setup"); err != nil {
				t.Fatal(err)
			}
		}
		ab = &awsBackend{Backend: b, reader: awssm.NewFromClient(sm.Client(), awssm.Options{})}
		return ab
	})
	mName, sName := ab.reader.SecretName("clerk"), ab.reader.StateName("clerk")
	const watchers, polls = 8, 5
	var streams []*stream
	var first wireSet
	for range watchers {
		s, _ := e.watch("clerk", tokApp)
		first = s.next(t)
		streams = append(streams, s)
	}

	sm.ResetCalls()
	start := ab.versions.Load()
	for i := range int64(polls) {
		e.api.Notify("clerk")
		waitFor(t, func() bool { return ab.versions.Load() >= start+i+1 }, "a poll after Notify")
	}
	want := map[string]int{"DescribeSecret " + mName: polls, "DescribeSecret " + sName: polls}
	if got := awsCalls(sm); !maps.Equal(got, want) {
		t.Fatalf("%d polls of an unchanged secret with %d watchers made %v, want %v", polls, watchers, got, want)
	}

	if _, err := e.b.Rotate(t.Context(), "clerk", "user:cli"); err != nil {
		t.Fatal(err)
	}
	sm.ResetCalls()
	e.api.Notify("clerk")
	for _, s := range streams {
		if got := s.next(t); got.Seq <= first.Seq || got.Current.ID == first.Current.ID {
			t.Fatalf("after the rotation a watcher got seq %d key %s, first seq %d key %s", got.Seq, got.Current.ID, first.Seq, first.Current.ID)
		}
	}
	want = map[string]int{"DescribeSecret " + mName: 2, "DescribeSecret " + sName: 1, "GetSecretValue " + sName: 2}
	if got := awsCalls(sm); !maps.Equal(got, want) {
		t.Fatalf("pushing a rotation to %d watchers made %v, want %v", watchers, got, want)
	}
	e.checkNoLeaks()
}

// awsCalls returns the emulator's answered requests by operation and
// secret name.
func awsCalls(sm *awsfake.Server) map[string]int {
	m := map[string]int{}
	for _, c := range sm.Calls() {
		m[c.Operation+" "+c.Secret]++
	}
	return m
}

// waitFor waits, boundedly, until cond holds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
