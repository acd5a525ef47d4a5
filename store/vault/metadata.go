package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

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
// The patch follows the data write: a process that dies in between, or a
// token without the patch capability, leaves the metadata one version
// behind until the next write (Describe reports which version it
// describes). Values never go into metadata.
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

// describeVersion patches the metadata of sec after version v was
// written. A failure is logged, once per store, and otherwise ignored: the
// data write succeeded, and the next one patches again.
func (s *Store) describeVersion(ctx context.Context, sec *store.Secret, v uint64, writer string) {
	md, err := customMetadata(sec, v, writer)
	if err == nil {
		_, err = s.client.Logical().JSONMergePatch(ctx, s.metadataPath(sec.Name), map[string]any{
			"max_versions":    s.maxVersions,
			"custom_metadata": md,
		})
	}
	if err != nil {
		s.metaWarn.Do(func() {
			s.log.Warn("cannot describe versions in KV metadata: viewers' status and history will lag (does the token have the patch capability on metadata? see rotor policy vault)",
				"secret", sec.Name, "version", v, "err", s.describe(err))
		})
	}
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
