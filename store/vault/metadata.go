package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/store"
)

// Custom metadata. After each version it writes, the store patches the
// secret's KV metadata with what a viewer may know of it: the key ids and
// times of every slot, the rotation in progress, and one line of history
// per version. A token that may read metadata but no values (the viewer
// policy) can then run `rotor status` and `rotor history`, and the patch
// sets max_versions too. Vault limits custom metadata to 64 keys of at
// most 512 bytes each; rotor uses:
//
//	rotor_version   the KV version rotor_state describes
//	rotor_state     the secret without its values, as JSON (continued
//	rotor_state_1…  in _1 to _7 when longer than 512 bytes)
//	rotor_v<N>      version N's key ids, step and writer, as JSON, for the
//	                last historyKept versions
//
// The patch follows the data write. A version written while an operation
// holds the secret (a rotation's start, create, promote…) is described
// with the operation's next patch instead of one of its own: the patch
// that ends the operation, or one describeAfter after the first version
// held back, whichever comes first, or [Store.Close]. A rotation of a few
// milliseconds then costs one patch instead of one per version, and a
// viewer still sees a rotation that waits (a verify hook, a slow issuer)
// as in progress within describeAfter. A process that dies before the
// patch, or a token without the patch capability, leaves the metadata
// behind until the next write (Describe reports which version it
// describes), and the versions it wrote without their history lines.
// Values never go into metadata.
const (
	metaVersion   = "rotor_version"
	metaState     = "rotor_state"
	metaHistory   = "rotor_v"
	chunkSize     = 512
	maxChunks     = 8
	historyKept   = 50
	metaKeysLimit = 64
)

// The custom metadata keys must fit Vault's limit.
var _ = [metaKeysLimit - 1 - maxChunks - historyKept]struct{}{}

// historyLine is one version in custom metadata.
type historyLine struct {
	Current  string     `json:"c,omitempty"`
	Previous string     `json:"p,omitempty"`
	Next     string     `json:"n,omitempty"`
	Pending  string     `json:"q,omitempty"`
	Step     store.Step `json:"s,omitempty"`
	Writer   string     `json:"w,omitempty"`
}

// withoutValues returns a copy of sec with every value emptied.
func withoutValues(sec *store.Secret) *store.Secret {
	c := sec.Clone()
	for _, k := range []*store.Key{c.Current, c.Previous, c.Next, c.Pending} {
		if k != nil {
			k.Value = ""
		}
	}
	for i := range c.Retired {
		c.Retired[i].Value = ""
	}
	return c
}

// customMetadata returns the custom metadata patch describing sec at
// version v: new keys, and nulls for the history line that falls out.
func customMetadata(sec *store.Secret, v uint64, writer string) (map[string]any, error) {
	state, err := json.Marshal(withoutValues(sec))
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	md := map[string]any{metaVersion: strconv.FormatUint(v, 10)}
	chunks := (len(state) + chunkSize - 1) / chunkSize
	if chunks > maxChunks {
		// Only a secret with dozens of retired keys gets here: its
		// status needs the data.
		state, chunks = nil, 0
	}
	for i := range maxChunks {
		var part any // null removes a chunk a longer state left
		if i < chunks {
			part = string(state[i*chunkSize : min((i+1)*chunkSize, len(state))])
		}
		md[chunkKey(i)] = part
	}
	line := historyLine{Current: store.KeyID(sec.Current), Previous: store.KeyID(sec.Previous),
		Next: store.KeyID(sec.Next), Pending: store.KeyID(sec.Pending), Writer: clipWriter(writer)}
	if sec.Rotation != nil {
		line.Step = sec.Rotation.Step
	}
	b, err := json.Marshal(line)
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	md[historyKey(v)] = string(b)
	if v > historyKept {
		md[historyKey(v-historyKept)] = nil
	}
	return md, nil
}

// clipWriter keeps a history line within Vault's 512 bytes.
func clipWriter(w string) string {
	if len(w) > 300 {
		return w[:300] + "…"
	}
	return w
}

func chunkKey(i int) string {
	if i == 0 {
		return metaState
	}
	return metaState + "_" + strconv.Itoa(i)
}

func historyKey(v uint64) string { return metaHistory + strconv.FormatUint(v, 10) }

// describeAfter bounds how long the description of a version written
// during an operation waits for the operation's next patch.
const describeAfter = time.Second

// describer holds the descriptions not yet patched into the metadata, by
// secret name. Patches of one secret are made one at a time, each taking
// everything held for it, so they are made in the order of the versions.
type describer struct {
	mu      sync.Mutex
	held    map[string]*heldDescription
	patches map[string]*sync.Mutex // serialises the patches of a secret
	// after overrides describeAfter, and patched, when set, hears of
	// every patch made (tests).
	after   time.Duration
	patched func(name string, v uint64)
}

// heldDescription is the custom metadata patch of the versions of one
// secret written since its last patch.
type heldDescription struct {
	md    map[string]any
	v     uint64 // the last version it describes
	timer *time.Timer
}

// describeVersion describes version v of sec, written by writer, in the
// secret's metadata: at once when no operation holds sec any more (it
// just ended, or there was none) or its lease was released, and later
// otherwise (see the doc at the top of this file). A failed patch is
// logged, once per store, and otherwise ignored: the data write
// succeeded, and the next patch describes the secret again.
func (s *Store) describeVersion(ctx context.Context, sec *store.Secret, v uint64, writer string) {
	md, err := customMetadata(sec, v, writer)
	if err != nil {
		s.patchFailed(sec.Name, v, err)
		return
	}
	d := &s.desc
	d.mu.Lock()
	if d.held == nil {
		d.held, d.patches = map[string]*heldDescription{}, map[string]*sync.Mutex{}
	}
	if d.patches[sec.Name] == nil {
		d.patches[sec.Name] = &sync.Mutex{}
	}
	h := d.held[sec.Name]
	if h == nil {
		h = &heldDescription{md: md}
		d.held[sec.Name] = h
	} else {
		maps.Copy(h.md, md) // the newer state, and one more history line
	}
	h.v = v
	later := sec.Rotation != nil && sec.Rotation.Holder != ""
	if later && h.timer == nil {
		after := describeAfter
		if d.after > 0 {
			after = d.after
		}
		name := sec.Name
		h.timer = time.AfterFunc(after, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s.patchHeld(ctx, name)
		})
	}
	d.mu.Unlock()
	if !later {
		s.patchHeld(ctx, sec.Name)
	}
}

// FlushDescriptions patches every description still held back into the
// metadata now, and returns once the patches in flight have ended too.
// [Store.Close] calls it; a caller that reads the metadata right after a
// write of its own (tests) may too.
func (s *Store) FlushDescriptions(ctx context.Context) {
	s.desc.mu.Lock()
	names := slices.Collect(maps.Keys(s.desc.patches))
	s.desc.mu.Unlock()
	for _, name := range names {
		s.patchHeld(ctx, name)
	}
}

// patchHeld patches what is held for the secret called name, if anything.
func (s *Store) patchHeld(ctx context.Context, name string) {
	d := &s.desc
	d.mu.Lock()
	one := d.patches[name] // set by describeVersion
	d.mu.Unlock()
	one.Lock()
	defer one.Unlock()
	d.mu.Lock()
	h := d.held[name]
	delete(d.held, name)
	if h != nil && h.timer != nil {
		h.timer.Stop()
	}
	d.mu.Unlock()
	if h == nil {
		return
	}
	_, err := s.client.Logical().JSONMergePatch(ctx, s.metadataPath(name), map[string]any{
		"max_versions":    s.maxVersions,
		"custom_metadata": h.md,
	})
	if err != nil {
		s.patchFailed(name, h.v, err)
	}
	if d.patched != nil {
		d.patched(name, h.v)
	}
}

func (s *Store) patchFailed(name string, v uint64, err error) {
	s.metaWarn.Do(func() {
		s.log.Warn("cannot describe versions in KV metadata: viewers' status and history will lag (does the token have the patch capability on metadata? see rotor policy vault)",
			"secret", name, "version", v, "err", s.describe(err))
	})
}

// Describe returns the secret called name as its KV metadata describes it:
// every slot's key id and times, the rotation in progress, without a
// single value (every Value is empty), and the version described. It
// needs only read access to metadata (the viewer policy). The version may
// trail the secret's latest when a write is in flight or the last writer
// could not patch the metadata. It wraps store.ErrNotFound when there is
// no such secret, and fails when the metadata holds no description.
func (s *Store) Describe(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, store.NoVersion, err
	}
	md, err := s.metadata(ctx, name)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("describe %s: %w", name, err)
	}
	if md == nil || !md.live() {
		return nil, store.NoVersion, fmt.Errorf("describe %s: %w", name, store.ErrNotFound)
	}
	var b strings.Builder
	for i := range maxChunks {
		b.WriteString(md.custom[chunkKey(i)])
	}
	v := md.custom[metaVersion]
	if b.Len() == 0 || v == "" {
		return nil, store.NoVersion, fmt.Errorf("describe %s: its KV metadata holds no description (last written by an older rotor, or too large): a token that may read the data can tell", name)
	}
	var sec store.Secret
	if err := json.Unmarshal([]byte(b.String()), &sec); err != nil || sec.Name != name {
		return nil, store.NoVersion, fmt.Errorf("describe %s: %s: custom metadata %q is not rotor's", name, s.metadataPath(name), metaState)
	}
	for _, k := range []*store.Key{sec.Current, sec.Previous, sec.Next, sec.Pending} {
		if k != nil {
			k.Value = ""
		}
	}
	for i := range sec.Retired {
		sec.Retired[i].Value = ""
	}
	return &sec, store.Version(v), nil
}
