package awssm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/store"
)

// Staging labels of the slots.
const (
	LabelCurrent  = "AWSCURRENT"
	LabelPrevious = "AWSPREVIOUS"
	LabelPending  = "AWSPENDING"
	LabelNext     = "ROTOR_NEXT"
)

// labels lists the slot labels in the order Save applies them: AWSCURRENT
// first, because moving it moves AWSPREVIOUS.
var labels = []string{LabelCurrent, LabelPrevious, LabelPending, LabelNext}

// slotOf maps a label to its slot.
var slotOf = map[string]store.Slot{
	LabelCurrent:  store.SlotCurrent,
	LabelPrevious: store.SlotPrevious,
	LabelPending:  store.SlotPending,
	LabelNext:     store.SlotNext,
}

// layout says which version holds each slot label ("" for none).
type layout struct {
	Current  string `json:"AWSCURRENT,omitempty"`
	Previous string `json:"AWSPREVIOUS,omitempty"`
	Pending  string `json:"AWSPENDING,omitempty"`
	Next     string `json:"ROTOR_NEXT,omitempty"`
}

func (l *layout) at(label string) *string {
	switch label {
	case LabelCurrent:
		return &l.Current
	case LabelPrevious:
		return &l.Previous
	case LabelPending:
		return &l.Pending
	case LabelNext:
		return &l.Next
	}
	panic("awssm: unknown label " + label)
}

func (l layout) get(label string) string { return *l.at(label) }

// normal drops AWSPENDING from the current version: there it means no
// pending key.
func (l layout) normal() layout {
	if l.Pending == l.Current {
		l.Pending = ""
	}
	return l
}

// hash identifies a layout inside a store.Version.
func (l layout) hash() string {
	h := sha256.New()
	for _, lb := range labels {
		fmt.Fprintf(h, "%s=%s\n", lb, l.get(lb))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// recordFormat is the version of the state document's layout.
const recordFormat = 1

// record is the JSON document in the state secret.
type record struct {
	Format int    `json:"format"`
	Secret string `json:"secret"` // the managed secret's name, as a guard
	// Serial counts the saves of the secret.
	Serial uint64 `json:"serial"`
	// Nonce is random per save, so that two saves of equal secrets from
	// the same version still differ and the second one conflicts.
	Nonce         string                   `json:"nonce"`
	Slots         map[store.Slot]keyRecord `json:"slots,omitempty"`
	Retired       []keyRecord              `json:"retired,omitempty"`
	Rotation      *rotationRecord          `json:"rotation,omitempty"`
	LastRotatedAt time.Time                `json:"last_rotated_at,omitzero"`
	ReloadedKeyID string                   `json:"reloaded_key_id,omitempty"`
	Revoked       []store.RevokedKey       `json:"revoked,omitempty"`
	Orphans       []store.Orphan           `json:"orphans,omitempty"`
	Seal          *store.Seal              `json:"seal,omitempty"`
	// Labels is the layout this save leaves on the secret; Prior the
	// layout it found there (raw, AWSPENDING on current included).
	Labels layout `json:"labels"`
	Prior  layout `json:"prior"`
}

type keyRecord struct {
	// VersionID is the version of the secret holding Value, if any.
	VersionID string            `json:"version_id,omitempty"`
	Value     string            `json:"value"`
	ID        string            `json:"key_id,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	Source    string            `json:"source,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	State     store.KeyState    `json:"state,omitempty"`
}

type rotationRecord struct {
	ID             string        `json:"id"`
	Kind           store.OpKind  `json:"kind,omitempty"`
	Step           store.Step    `json:"step,omitempty"`
	StartedAt      time.Time     `json:"started_at,omitzero"`
	Initiator      string        `json:"initiator,omitempty"`
	Holder         string        `json:"holder,omitempty"`
	LeaseExpiresAt time.Time     `json:"lease_expires_at,omitzero"`
	KeyID          string        `json:"key_id,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	Intent         *store.Intent `json:"intent,omitempty"`
}

// entry is a key with the version that holds its value.
type entry struct {
	key store.Key
	vid string
}

// state is a secret as the store sees it: slots with their versions.
type state struct {
	slots         map[store.Slot]*entry
	retired       []entry
	rotation      *store.Rotation
	lastRotatedAt time.Time
	reloadedKeyID string
	revoked       []store.RevokedKey
	orphans       []store.Orphan
	seal          *store.Seal
}

func newState() *state { return &state{slots: map[store.Slot]*entry{}} }

func keyOf(r keyRecord) entry {
	return entry{vid: r.VersionID, key: store.Key{
		Value: r.Value, ID: r.ID, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		Source: r.Source, Meta: maps.Clone(r.Meta), State: r.State,
	}}
}

func recordOf(e entry) keyRecord {
	k := e.key
	return keyRecord{
		VersionID: e.vid, Value: k.Value, ID: k.ID, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
		Source: k.Source, Meta: maps.Clone(k.Meta), State: k.State,
	}
}

// state returns the secret the record describes.
func (r *record) state() *state {
	st := newState()
	for sl, k := range r.Slots {
		e := keyOf(k)
		st.slots[sl] = &e
	}
	for _, k := range r.Retired {
		st.retired = append(st.retired, keyOf(k))
	}
	if rr := r.Rotation; rr != nil {
		st.rotation = &store.Rotation{
			ID: rr.ID, Kind: rr.Kind, Step: rr.Step, StartedAt: rr.StartedAt, Initiator: rr.Initiator,
			Holder: rr.Holder, LeaseExpiresAt: rr.LeaseExpiresAt,
			KeyID: rr.KeyID, Reason: rr.Reason, Intent: rr.Intent.Clone(),
		}
	}
	st.lastRotatedAt = r.LastRotatedAt
	st.reloadedKeyID = r.ReloadedKeyID
	st.revoked = slices.Clone(r.Revoked)
	st.orphans = slices.Clone(r.Orphans)
	st.seal = r.Seal.Clone()
	return st
}

// fill sets r's secret fields from st.
func (r *record) fill(st *state) {
	r.Slots = map[store.Slot]keyRecord{}
	for sl, e := range st.slots {
		if e != nil {
			r.Slots[sl] = recordOf(*e)
		}
	}
	r.Retired = nil
	for _, e := range st.retired {
		r.Retired = append(r.Retired, recordOf(e))
	}
	r.Rotation = nil
	if rot := st.rotation; rot != nil {
		r.Rotation = &rotationRecord{
			ID: rot.ID, Kind: rot.Kind, Step: rot.Step, StartedAt: rot.StartedAt, Initiator: rot.Initiator,
			Holder: rot.Holder, LeaseExpiresAt: rot.LeaseExpiresAt,
			KeyID: rot.KeyID, Reason: rot.Reason, Intent: rot.Intent.Clone(),
		}
	}
	r.LastRotatedAt = st.lastRotatedAt
	r.ReloadedKeyID = st.reloadedKeyID
	r.Revoked = slices.Clone(st.revoked)
	r.Orphans = slices.Clone(st.orphans)
	r.Seal = st.seal.Clone()
}

// secret returns st as a store.Secret called name.
func (st *state) secret(name string) *store.Secret {
	s := &store.Secret{
		Name: name, Rotation: st.rotation.Clone(), LastRotatedAt: st.lastRotatedAt,
		ReloadedKeyID: st.reloadedKeyID, Revoked: slices.Clone(st.revoked), Orphans: slices.Clone(st.orphans),
		Seal: st.seal.Clone(),
	}
	for _, sl := range store.Slots {
		e := st.slots[sl]
		if e == nil {
			continue
		}
		k := e.key
		k.Meta = maps.Clone(k.Meta)
		switch sl {
		case store.SlotCurrent:
			s.Current = &k
		case store.SlotPrevious:
			s.Previous = &k
		case store.SlotPending:
			s.Pending = &k
		case store.SlotNext:
			s.Next = &k
		}
	}
	for _, e := range st.retired {
		k := e.key
		k.Meta = maps.Clone(k.Meta)
		s.Retired = append(s.Retired, k)
	}
	return s
}

// errMalformed is returned for a state secret that is not a rotor record.
// Its message never quotes the document: it holds secret values.
var errMalformed = errors.New("not a rotor state record")

// decodeRecord parses a state document of the secret called name.
func decodeRecord(b []byte, name string) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: invalid JSON at byte %d", errMalformed, se.Offset)
		}
		return nil, fmt.Errorf("%w: unexpected JSON types", errMalformed)
	}
	switch {
	case r.Format == 0:
		return nil, fmt.Errorf("%w: no format", errMalformed)
	case r.Format > recordFormat:
		return nil, fmt.Errorf("record format %d was written by a newer rotor (this one reads format %d)", r.Format, recordFormat)
	case r.Secret != name:
		// Do not quote r.Secret: a document that is not rotor's may hold
		// anything there.
		return nil, fmt.Errorf("%w: it describes another secret than %q", errMalformed, name)
	}
	for sl, k := range r.Slots {
		if _, err := store.ParseSlot(string(sl)); err != nil {
			return nil, fmt.Errorf("%w: unknown slot", errMalformed)
		}
		if k.Value == "" {
			return nil, fmt.Errorf("%w: slot %s has no value", errMalformed, sl)
		}
	}
	return &r, nil
}
