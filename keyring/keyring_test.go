package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewRefusesBadSets(t *testing.T) {
	sec := newSecrets(t)
	cur, prev := sec.key(), sec.key()
	loadErr := errors.New("backend down")
	tests := []struct {
		name   string
		reason string
		src    Source
		opts   []Option
		want   error  // errors.Is target, if any
		substr string // in the message
	}{
		{name: "nil source", reason: "nothing to load from", src: nil, substr: "nil source"},
		{name: "load fails", reason: "the first load must succeed", src: &fakeSource{err: loadErr}, want: loadErr},
		{name: "empty set", reason: "a set without a current key is no set", src: StaticSource(Set{}), want: ErrNoCurrentKey},
		{name: "empty previous", reason: "a slot with no value is corrupt", src: StaticSource(Set{Current: cur, Previous: &Key{ID: "abc"}}), substr: "previous key abc has an empty value"},
		{name: "id with comma", reason: "the id must fit in a signature", src: StaticSource(Set{Current: Key{Value: cur.Value, ID: "a,b"}}), substr: "invalid id"},
		{name: "duplicate id", reason: "verification looks keys up by id", src: StaticSource(Set{Current: cur, Previous: &Key{Value: prev.Value, ID: cur.ID}}), substr: "share the id"},
		{name: "zero interval", reason: "Run would spin", src: StaticSource(Set{Current: cur}), opts: []Option{WithInterval(0)}, substr: "interval"},
		{name: "zero timeout", reason: "every load would time out", src: StaticSource(Set{Current: cur}), opts: []Option{WithTimeout(0)}, substr: "timeout"},
		{name: "nil clock", reason: "expiry needs a clock", src: StaticSource(Set{Current: cur}), opts: []Option{WithClock(nil)}, substr: "clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := New(t.Context(), tt.src, tt.opts...)
			if err == nil {
				t.Fatalf("New succeeded (%s)", tt.reason)
			}
			if k != nil {
				t.Errorf("New returned a keyring with an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("New error %q does not wrap %q (%s)", err, tt.want, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("New error %q does not mention %q (%s)", err, tt.substr, tt.reason)
			}
			sec.checkErr(err)
		})
	}
}

func TestNewUsesItsContext(t *testing.T) {
	sec := newSecrets(t)
	src := &blockingSource{set: Set{Current: sec.key()}, block: true}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	k, err := New(ctx, src)
	if !errors.Is(err, context.Canceled) || k != nil {
		t.Fatalf("New with a cancelled context = %v, %v; want no keyring and context.Canceled", k, err)
	}
	sec.checkErr(err)
}

func TestNewFillsMissingIDs(t *testing.T) {
	sec := newSecrets(t)
	v := sec.value()
	k := mustNew(t, StaticSource(Set{Current: Key{Value: v}}), newClock())
	if got, want := k.Current().ID, unsaltedID(v); got != want {
		t.Errorf("Current().ID = %s, want the unsalted id %s", got, want)
	}
	if len(k.Current().ID) != 16 {
		t.Errorf("unsalted id %q is not 16 characters", k.Current().ID)
	}
}

func TestRefreshSwapsAndFiresOnChange(t *testing.T) {
	sec := newSecrets(t)
	c := newClock()
	a, b := sec.key(), sec.key()
	src := &fakeSource{set: Set{Current: a, Version: "1"}}
	k := mustNew(t, src, c)

	type change struct{ old, new Set }
	var changes []change
	k.OnChange(func(old, new Set) { changes = append(changes, change{old, new}) })

	// Unchanged: no callback.
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Fatalf("OnChange fired %d times for an unchanged set", len(changes))
	}

	next := Set{Current: b, Previous: expiring(a, epoch.Add(24*time.Hour)), Version: "2"}
	src.put(next, nil)
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := k.Current(); got.Value != b.Value || got.ID != b.ID {
		t.Errorf("Current() = %v, want %v", got, b)
	}
	if len(changes) != 1 {
		t.Fatalf("OnChange fired %d times, want 1", len(changes))
	}
	ch := changes[0]
	if ch.old.Current.ID != a.ID || ch.new.Current.ID != b.ID || ch.new.Previous == nil || ch.new.Previous.ID != a.ID || ch.new.Version != "2" {
		t.Errorf("OnChange got old %v new %v", ch.old.LogValue(), ch.new.LogValue())
	}
	if err := k.Err(); err != nil {
		t.Errorf("Err() = %v after a successful refresh", err)
	}
	// Callbacks get copies.
	ch.new.Previous.Value = "changed by a callback"
	if p := k.Set().Previous; p == nil || p.Value != a.Value {
		t.Errorf("a callback changed the keyring's set")
	}
}

func TestOnChangeOrder(t *testing.T) {
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key()}), newClock())
	var got []string
	for _, name := range []string{"first", "second", "third"} {
		k.OnChange(func(old, new Set) { got = append(got, name) })
	}
	if err := k.Update(Set{Current: sec.key()}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "first,second,third" {
		t.Errorf("callbacks ran in order %v", got)
	}
}

func TestFailedRefreshKeepsLastGoodSet(t *testing.T) {
	sec := newSecrets(t)
	c := newClock()
	good := Set{Current: sec.key(), Previous: ptr(sec.key()), Version: "1"}
	src := &fakeSource{set: good}
	var handled []error
	k := mustNew(t, src, c, WithErrorHandler(func(err error) { handled = append(handled, err) }))
	fired := 0
	k.OnChange(func(Set, Set) { fired++ })
	refreshedAt := c.Now()
	c.Advance(time.Minute)

	tests := []struct {
		name   string
		reason string
		set    Set
		err    error
		want   error
	}{
		{name: "source error", reason: "a backend outage must not take keys away", err: errors.New("vault sealed"), want: nil},
		{name: "empty set", reason: "a set without a current key must never replace a good one", set: Set{Version: "2"}, want: ErrNoCurrentKey},
		{name: "previous without value", reason: "a corrupt set is refused as a whole", set: Set{Current: sec.key(), Previous: &Key{ID: "x"}, Version: "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src.put(tt.set, tt.err)
			err := k.Refresh(t.Context())
			if err == nil {
				t.Fatalf("Refresh succeeded (%s)", tt.reason)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Refresh error %v does not wrap the source's %v", err, tt.err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Refresh error %v does not wrap %v", err, tt.want)
			}
			if !errors.Is(k.Err(), err) {
				t.Errorf("Err() = %v, want %v", k.Err(), err)
			}
			if !k.Set().equal(good) {
				t.Errorf("set changed to %v (%s)", k.Set().LogValue(), tt.reason)
			}
			h := k.Health()
			if h.Status != "degraded" || h.LastError != err.Error() || !h.LastRefresh.Equal(refreshedAt) {
				t.Errorf("Health() = %+v, want degraded with the error and the last good refresh time", h)
			}
			sec.checkErr(err)
		})
	}
	if fired != 0 {
		t.Errorf("OnChange fired %d times for failed refreshes", fired)
	}
	if len(handled) != 0 {
		t.Errorf("the error handler is for Run, but Refresh called it %d times", len(handled))
	}

	src.put(good, nil)
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k.Err() != nil || k.Health().Status != "ok" || !k.Health().LastRefresh.Equal(c.Now()) {
		t.Errorf("after recovery: Err() = %v, Health() = %+v", k.Err(), k.Health())
	}
}

func TestVersionerAvoidsLoad(t *testing.T) {
	sec := newSecrets(t)
	a, b := sec.key(), sec.key()
	src := &versionedSource{fakeSource: fakeSource{set: Set{Current: a, Version: "7"}}}
	k := mustNew(t, src, newClock())
	if src.loadCount() != 1 {
		t.Fatalf("New loaded %d times", src.loadCount())
	}
	for range 3 {
		if err := k.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if src.loadCount() != 1 || src.versions != 3 {
		t.Errorf("3 refreshes of an unchanged source: %d loads, %d version checks; want 1 and 3", src.loadCount(), src.versions)
	}

	src.put(Set{Current: b, Previous: ptr(a), Version: "8"}, nil)
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if src.loadCount() != 2 || k.Current().ID != b.ID {
		t.Errorf("after a version change: %d loads, current %v; want 2 and %v", src.loadCount(), k.Current(), b)
	}

	// A version that cannot be read (an app token may read values but not
	// metadata) costs a load, not a refresh.
	src.verErr = errors.New("metadata read denied")
	err := k.Refresh(t.Context())
	if err != nil || src.loadCount() != 3 {
		t.Errorf("a failing Version: Refresh() = %v after %d loads; want success by loading", err, src.loadCount())
	}
	src.put(Set{}, errors.New("store down"))
	err = k.Refresh(t.Context())
	if err == nil || k.Current().ID != b.ID {
		t.Errorf("failing Version and Load: Refresh() = %v, current %v; want the error and the last good set", err, k.Current())
	}
	sec.checkErr(err)
}

func TestVersionerEmptyVersionLoads(t *testing.T) {
	sec := newSecrets(t)
	src := &versionedSource{fakeSource: fakeSource{set: Set{Current: sec.key()}}}
	k := mustNew(t, src, newClock())
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if src.loadCount() != 2 {
		t.Errorf("an empty version means unknown, so Refresh must load; loads = %d", src.loadCount())
	}
}

func TestUpdate(t *testing.T) {
	sec := newSecrets(t)
	a, b := sec.key(), sec.key()
	c := newClock()
	k := mustNew(t, StaticSource(Set{Current: a}), c)
	var news []Set
	k.OnChange(func(_, n Set) { news = append(news, n) })

	err := k.Update(Set{Previous: ptr(a)})
	if !errors.Is(err, ErrNoCurrentKey) || !errors.Is(k.Err(), ErrNoCurrentKey) || k.Current().ID != a.ID {
		t.Errorf("Update without a current key: err %v, Err() %v, current %v", err, k.Err(), k.Current())
	}
	sec.checkErr(err)

	pushed := Set{Current: b, Previous: expiring(a, epoch.Add(time.Hour)), Version: "pushed-1"}
	if err := k.Update(pushed); err != nil {
		t.Fatal(err)
	}
	pushed.Previous.Value = "caller keeps its own copy"
	if k.Err() != nil || k.Current().ID != b.ID || len(news) != 1 || k.Set().Previous.Value != a.Value {
		t.Errorf("Update: Err() %v, current %v, %d changes, previous %v", k.Err(), k.Current(), len(news), k.Set().Previous)
	}
}

func TestSetReturnsACopy(t *testing.T) {
	sec := newSecrets(t)
	a, b := sec.key(), sec.key()
	k := mustNew(t, StaticSource(Set{Current: a, Previous: ptr(b), Next: ptr(sec.key())}), newClock())
	s := k.Set()
	s.Previous.Value = "x"
	s.Next.ID = "y"
	if again := k.Set(); again.Previous.Value != b.Value || again.Next.ID == "y" {
		t.Errorf("changing a Set() result changed the keyring")
	}
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sec := newSecrets(t)
		a, b := sec.key(), sec.key()
		src := &fakeSource{set: Set{Current: a}}
		var mu sync.Mutex
		var handled []error
		k, err := New(t.Context(), src, WithInterval(time.Minute), WithErrorHandler(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			handled = append(handled, err)
		}))
		if err != nil {
			t.Fatal(err)
		}
		stop := k.Start(t.Context())
		defer stop()

		// Nothing before the first tick.
		src.put(Set{Current: b}, nil)
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if k.Current().ID != a.ID || src.loadCount() != 1 {
			t.Fatalf("before the first tick: current %v after %d loads", k.Current(), src.loadCount())
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if k.Current().ID != b.ID {
			t.Fatalf("after the first tick: current %v, want %v", k.Current(), b)
		}

		// A failing poll keeps the key and goes to the error handler.
		outage := errors.New("store unreachable")
		src.put(Set{}, outage)
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		got := handled
		mu.Unlock()
		if len(got) != 1 || !errors.Is(got[0], outage) || k.Current().ID != b.ID {
			t.Fatalf("failing poll: handler got %v, current %v", got, k.Current())
		}
		sec.checkErr(got[0])

		stop()
		loads := src.loadCount()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if src.loadCount() != loads {
			t.Errorf("Run kept polling after stop")
		}
	})
}

func TestRunTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sec := newSecrets(t)
		src := &blockingSource{set: Set{Current: sec.key()}}
		var errs []error
		k, err := New(t.Context(), src, WithInterval(time.Minute), WithTimeout(5*time.Second), WithErrorHandler(func(err error) { errs = append(errs, err) }))
		if err != nil {
			t.Fatal(err)
		}
		src.block = true
		stop := k.Start(t.Context())
		time.Sleep(time.Minute + 5*time.Second)
		synctest.Wait()
		stop()
		if len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
			t.Fatalf("a hanging load: handler got %v, want a deadline error", errs)
		}
		sec.checkErr(errs[0])
	})
}

// blockingSource blocks in Load until ctx is done once block is set.
type blockingSource struct {
	set   Set
	block bool
}

func (b *blockingSource) Load(ctx context.Context) (Set, error) {
	if b.block {
		<-ctx.Done()
		return Set{}, ctx.Err()
	}
	return b.set, nil
}

func TestCurrentDoesNotAllocate(t *testing.T) {
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key(), Previous: ptr(sec.key())}), newClock())
	var sink Key
	if n := testing.AllocsPerRun(1000, func() { sink = k.Current() }); n != 0 {
		t.Errorf("Current() allocates %v times per call", n)
	}
	_ = sink
}

func TestConcurrentUse(t *testing.T) {
	sec := newSecrets(t)
	c := newClock()
	src := &fakeSource{set: Set{Current: sec.key()}}
	k := mustNew(t, src, c)
	msg := []byte("payload")
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if k.Current().Value == "" {
					t.Error("empty current key")
				}
				if err := k.Verify(msg, k.Sign(msg)); err != nil && !errors.Is(err, ErrUnknownKey) {
					// A swap between Sign and Verify may push the
					// signing key out of the set; nothing else may fail.
					t.Error(err)
				}
				_ = k.Health()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			cur := k.Current()
			src.put(Set{Current: sec.key(), Previous: ptr(cur)}, nil)
			if err := k.Refresh(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func TestKeyNeverPrintsItsValue(t *testing.T) {
	sec := newSecrets(t)
	k := sec.key()
	set := Set{Current: k, Previous: expiring(sec.key(), epoch), Next: ptr(sec.key()), Version: "3"}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("key", "key", k, "ptr", &k, "set", set)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "key", k, "set", set)
	js, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{"slog": logs.String(), "json": string(js)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		outs[verb+" key"] = fmt.Sprintf(verb, k)
		outs[verb+" *key"] = fmt.Sprintf(verb, &k)
		outs[verb+" set"] = fmt.Sprintf(verb, set)
		outs[verb+" *set"] = fmt.Sprintf(verb, &set)
	}
	outs["nil previous"] = fmt.Sprintf("%+v", Set{Current: k})
	for what, out := range outs {
		sec.checkNoValue(what, out)
		if what != "nil previous" && what != "json" && !strings.Contains(out, k.ID) {
			t.Errorf("%s does not show the key id: %s", what, out)
		}
	}
	if got := fmt.Sprint(k); got != k.ID {
		t.Errorf("fmt.Sprint(key) = %q, want the id %q", got, k.ID)
	}
	if got, want := fmt.Sprintf("%#v", k), `keyring.Key{ID:"`+k.ID+`"}`; got != want {
		t.Errorf("%%#v = %s, want %s", got, want)
	}
}

// TestOnChangeSeesOutcome: a callback runs after the outcome of the change
// is recorded, so a consumer woken by it reads Err of this change, not the
// failure before it (a watch test raced on exactly this).
func TestOnChangeSeesOutcome(t *testing.T) {
	k, err := New(t.Context(), StaticSource(Set{Current: Key{Value: "value-0", ID: "k0"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Update(Set{}); err == nil || k.Err() == nil {
		t.Fatalf("Update(empty set) = %v, Err = %v; want both to fail", err, k.Err())
	}
	var seen []error
	k.OnChange(func(_, _ Set) { seen = append(seen, k.Err()) })
	if err := k.Update(Set{Current: Key{Value: "value-1", ID: "k1"}}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != nil {
		t.Fatalf("the callback saw Err = %v, want one call seeing nil", seen)
	}
}
