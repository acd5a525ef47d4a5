package storetest

import (
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/store"
)

// Zones that are neither UTC nor Local, with a minute offset, so that a
// store dropping the zone or the nanoseconds is caught by time.Equal.
var (
	zoneEast = time.FixedZone("UTC+05:30", 5*3600+30*60)
	zoneWest = time.FixedZone("UTC-07:00", -7*3600)
)

// base is an instant with full nanosecond precision.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, zoneEast)

// fullSecret returns a secret with every field set.
func fullSecret(name string) *store.Secret {
	return &store.Secret{
		Name: name,
		Current: &store.Key{
			Value:     "sk_test_storetest_current_" + name,
			ID:        "0123456789abcdef",
			CreatedAt: base,
			Source:    store.SourceStaged,
			Meta:      map[string]string{"env": "prod", "note": "ünïcode, a=b; \"quoted\""},
		},
		Previous: &store.Key{
			Value:     "sk_test_storetest_previous_" + name,
			ID:        "1123456789abcdef",
			CreatedAt: base.Add(-30 * 24 * time.Hour).In(zoneWest),
			ExpiresAt: base.Add(24*time.Hour + 1),
			Source:    store.SourceMinted,
		},
		Next: &store.Key{
			// Multi-line, quotes, backslash and non-ASCII catch lossy
			// value encodings.
			Value:     "-----BEGIN KEY-----\nzé\"\\\t/\n-----END KEY-----\n",
			ID:        "2123456789abcdef",
			CreatedAt: base.Add(time.Hour + 7),
			Source:    store.SourceStaged,
			Meta:      map[string]string{"staged_by": "alice@example.com"},
		},
		Pending: &store.Key{
			Value: "sk_test_storetest_pending_" + name,
			ID:    "3123456789abcdef",
			// time.Now carries a monotonic reading and the Local zone.
			CreatedAt: time.Now(),
			Source:    store.SourceMinted,
			Meta:      map[string]string{"provider": "clerk"},
		},
		Retired: []store.Key{
			{
				Value:     "sk_test_storetest_retired0_" + name,
				ID:        "4123456789abcdef",
				CreatedAt: base.Add(-60 * 24 * time.Hour),
				ExpiresAt: base.Add(-29 * 24 * time.Hour).In(zoneWest),
				Source:    store.SourceMinted,
				Meta:      map[string]string{"reason": "rolled back"},
				State:     store.KeyRevoking,
			},
			{
				Value:     "sk_test_storetest_retired1_" + name,
				ID:        "5123456789abcdef",
				CreatedAt: base.Add(-90 * 24 * time.Hour).UTC(),
			},
		},
		Rotation: &store.Rotation{
			ID:             "rot-01JQ7W3Z5K",
			Kind:           store.OpRollback,
			Step:           store.StepTest,
			StartedAt:      base.Add(-time.Minute + 3),
			Initiator:      "ci:github-actions:rotor-dev/app",
			Holder:         "host-1/4242/9f8e7d",
			LeaseExpiresAt: base.Add(15 * time.Minute).In(zoneWest),
			KeyID:          "0123456789abcdef",
			Reason:         "automatic after failed verify",
			Intent:         &store.Intent{ID: "req-01JQ7W3Z5K", Action: store.IntentMint, At: base.Add(-time.Minute + 5).In(zoneWest)},
		},
		LastRotatedAt: base.Add(-30*24*time.Hour + 999).In(zoneWest),
		ReloadedKeyID: "1123456789abcdef",
		Revoked: []store.RevokedKey{
			{ID: "8123456789abcdef", RevokedAt: base.Add(-40 * 24 * time.Hour).In(zoneWest)},
			{ID: "9123456789abcdef", RevokedAt: base.Add(-20*24*time.Hour + 7)},
		},
		Orphans: []store.Orphan{{
			RequestID: "req-01JQ7W3Z00",
			Operation: "rot-01JQ7W3Z00",
			Action:    store.IntentMint,
			At:        base.Add(-2 * time.Hour).In(zoneWest),
			Check:     "look for a key created at the issuer around this time",
		}},
		Seal: &store.Seal{
			Version:   41,
			ChainSeq:  1234,
			ChainHash: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
			MAC:       "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5",
		},
	}
}

// sparseSecret returns a secret with only the current and next slots set.
func sparseSecret(name string) *store.Secret {
	return &store.Secret{
		Name: name,
		Current: &store.Key{
			Value:     "sk_test_storetest_sparse_current_" + name,
			ID:        "6123456789abcdef",
			CreatedAt: base,
		},
		Next: &store.Key{
			Value:     "sk_test_storetest_sparse_next_" + name,
			ID:        "7123456789abcdef",
			CreatedAt: base.Add(time.Second),
		},
	}
}

// counterSecret returns a secret whose current key carries a counter in its
// Meta, starting at 0.
func counterSecret(name string) *store.Secret {
	s := sparseSecret(name)
	setCounter(s, 0)
	return s
}

func setCounter(s *store.Secret, n int) {
	if s.Current.Meta == nil {
		s.Current.Meta = map[string]string{}
	}
	s.Current.Meta["counter"] = strconv.Itoa(n)
}

func counterOf(s *store.Secret) (int, error) {
	if s.Current == nil {
		return 0, fmt.Errorf("secret %s has no current key", s.Name)
	}
	n, err := strconv.Atoi(s.Current.Meta["counter"])
	if err != nil {
		return 0, fmt.Errorf("secret %s: bad counter: %w", s.Name, err)
	}
	return n, nil
}

func counter(t *testing.T, s *store.Secret) int {
	t.Helper()
	n, err := counterOf(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// diffSecret describes how got differs from want, one entry per field.
// Timestamps are compared with time.Time.Equal; nil and empty Meta maps and
// Retired lists are equal. Entries never contain a key value.
func diffSecret(got, want *store.Secret) []string {
	var d []string
	if got.Name != want.Name {
		d = append(d, fmt.Sprintf("name = %q, want %q", got.Name, want.Name))
	}
	for _, sl := range store.Slots {
		d = append(d, diffKey(string(sl), got.Slot(sl), want.Slot(sl))...)
	}
	if len(got.Retired) != len(want.Retired) {
		d = append(d, fmt.Sprintf("retired: %d keys, want %d", len(got.Retired), len(want.Retired)))
	} else {
		for i := range want.Retired {
			d = append(d, diffKey(fmt.Sprintf("retired[%d]", i), &got.Retired[i], &want.Retired[i])...)
		}
	}
	d = append(d, diffRotation(got.Rotation, want.Rotation)...)
	d = append(d, diffTime("last_rotated_at", got.LastRotatedAt, want.LastRotatedAt)...)
	if got.ReloadedKeyID != want.ReloadedKeyID {
		d = append(d, fmt.Sprintf("reloaded_key_id = %q, want %q", got.ReloadedKeyID, want.ReloadedKeyID))
	}
	if len(got.Revoked) != len(want.Revoked) {
		d = append(d, fmt.Sprintf("revoked: %d entries, want %d", len(got.Revoked), len(want.Revoked)))
	} else {
		for i, w := range want.Revoked {
			g := got.Revoked[i]
			if g.ID != w.ID {
				d = append(d, fmt.Sprintf("revoked[%d]: key_id = %q, want %q", i, g.ID, w.ID))
			}
			d = append(d, diffTime(fmt.Sprintf("revoked[%d]: revoked_at", i), g.RevokedAt, w.RevokedAt)...)
		}
	}
	if len(got.Orphans) != len(want.Orphans) {
		d = append(d, fmt.Sprintf("orphans: %d entries, want %d", len(got.Orphans), len(want.Orphans)))
	} else {
		for i, w := range want.Orphans {
			g := got.Orphans[i]
			for _, f := range []struct{ name, got, want string }{
				{"request_id", g.RequestID, w.RequestID},
				{"operation", g.Operation, w.Operation},
				{"action", g.Action, w.Action},
				{"check", g.Check, w.Check},
			} {
				if f.got != f.want {
					d = append(d, fmt.Sprintf("orphans[%d]: %s = %q, want %q", i, f.name, f.got, f.want))
				}
			}
			d = append(d, diffTime(fmt.Sprintf("orphans[%d]: at", i), g.At, w.At)...)
		}
	}
	switch g, w := got.Seal, want.Seal; {
	case (g == nil) != (w == nil):
		d = append(d, fmt.Sprintf("seal = %+v, want %+v", g, w))
	case g != nil && *g != *w:
		d = append(d, fmt.Sprintf("seal = %+v, want %+v", *g, *w))
	}
	// The binding of a stored secret to the audit chain digests the whole
	// state: a store must give back a state with the digest it was given,
	// whatever it does with the fields (time zones, empty lists).
	if gd, wd := got.StateDigest(digestKey), want.StateDigest(digestKey); gd != wd {
		d = append(d, fmt.Sprintf("state digest = %s, want %s: the state did not survive the store unchanged", gd, wd))
	}
	return d
}

// digestKey keys the state digests diffSecret compares.
var digestKey = []byte("storetest state digest key")

func diffKey(path string, got, want *store.Key) []string {
	switch {
	case got == nil && want == nil:
		return nil
	case got == nil:
		return []string{fmt.Sprintf("%s: got no key, want %v", path, want)}
	case want == nil:
		return []string{fmt.Sprintf("%s: got %v, want no key", path, got)}
	}
	var d []string
	if got.Value != want.Value {
		d = append(d, path+": value differs") // never print values
	}
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("%s: key_id = %q, want %q", path, got.ID, want.ID))
	}
	d = append(d, diffTime(path+": created_at", got.CreatedAt, want.CreatedAt)...)
	d = append(d, diffTime(path+": expires_at", got.ExpiresAt, want.ExpiresAt)...)
	if got.Source != want.Source {
		d = append(d, fmt.Sprintf("%s: source = %q, want %q", path, got.Source, want.Source))
	}
	if !maps.Equal(got.Meta, want.Meta) {
		d = append(d, fmt.Sprintf("%s: meta = %q, want %q", path, got.Meta, want.Meta))
	}
	if got.State != want.State {
		d = append(d, fmt.Sprintf("%s: state = %q, want %q", path, got.State, want.State))
	}
	return d
}

func diffRotation(got, want *store.Rotation) []string {
	switch {
	case got == nil && want == nil:
		return nil
	case got == nil:
		return []string{"rotation: got none, want one"}
	case want == nil:
		return []string{"rotation: got one, want none"}
	}
	var d []string
	for _, f := range []struct{ name, got, want string }{
		{"id", got.ID, want.ID},
		{"kind", string(got.Kind), string(want.Kind)},
		{"step", string(got.Step), string(want.Step)},
		{"initiator", got.Initiator, want.Initiator},
		{"holder", got.Holder, want.Holder},
		{"key_id", got.KeyID, want.KeyID},
		{"reason", got.Reason, want.Reason},
	} {
		if f.got != f.want {
			d = append(d, fmt.Sprintf("rotation: %s = %q, want %q", f.name, f.got, f.want))
		}
	}
	d = append(d, diffTime("rotation: started_at", got.StartedAt, want.StartedAt)...)
	d = append(d, diffTime("rotation: lease_expires_at", got.LeaseExpiresAt, want.LeaseExpiresAt)...)
	switch gi, wi := got.Intent, want.Intent; {
	case gi == nil && wi != nil:
		d = append(d, "rotation: intent: got none, want one")
	case gi != nil && wi == nil:
		d = append(d, "rotation: intent: got one, want none")
	case gi != nil:
		if gi.ID != wi.ID || gi.Action != wi.Action {
			d = append(d, fmt.Sprintf("rotation: intent = %s %s, want %s %s", gi.Action, gi.ID, wi.Action, wi.ID))
		}
		d = append(d, diffTime("rotation: intent: at", gi.At, wi.At)...)
	}
	return d
}

func diffTime(path string, got, want time.Time) []string {
	if got.Equal(want) {
		return nil
	}
	return []string{fmt.Sprintf("%s = %s, want %s", path, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))}
}
