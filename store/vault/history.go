package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/store"
)

// HistoryEntry describes one KV version of a secret without its values.
type HistoryEntry struct {
	// Version is the KV version, as Load and Save report it.
	Version store.Version
	// CreatedAt is when Vault stored the version.
	CreatedAt time.Time
	// WrittenBy is the version's written_by field (see the package doc).
	WrittenBy string
	// Key ids in each slot at this version; empty for an empty slot.
	CurrentKeyID  string
	PreviousKeyID string
	NextKeyID     string
	PendingKeyID  string
	// Step is the last completed step of the rotation in progress at this
	// version; empty when none was.
	Step store.Step
	// Deleted and Destroyed versions have no readable data: only Version
	// and CreatedAt are set.
	Deleted   bool
	Destroyed bool
}

// History lists the KV versions Vault still keeps of the secret called
// name (max_versions bounds them), oldest first. The key ids, step and
// writer of the last 50 versions come from the secret's custom metadata
// (see [Store.Describe]), so a token with the viewer policy, which reads
// metadata but no values, sees them; older versions, and versions
// written by an older rotor, are read from the data when the token may
// (ci, admin) and listed with their times only otherwise. It returns an
// error wrapping [store.ErrNotFound] when there is no such secret.
func (s *Store) History(ctx context.Context, name string) ([]HistoryEntry, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, err
	}
	md, err := s.metadata(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", name, err)
	}
	if md == nil || len(md.versions) == 0 {
		return nil, fmt.Errorf("history %s: %w", name, store.ErrNotFound)
	}
	nums := make([]uint64, 0, len(md.versions))
	for n := range md.versions {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	now := time.Now()
	entries := make([]HistoryEntry, 0, len(nums))
	for _, n := range nums {
		vm := md.versions[n]
		e := HistoryEntry{Version: formatVersion(n), CreatedAt: vm.created, Destroyed: vm.destroyed}
		if vm.gone(now) {
			e.Deleted = !vm.destroyed
			entries = append(entries, e)
			continue
		}
		if line, ok := md.custom[historyKey(n)]; ok {
			var h historyLine
			if err := json.Unmarshal([]byte(line), &h); err == nil {
				e.CurrentKeyID, e.PreviousKeyID, e.NextKeyID, e.PendingKeyID = h.Current, h.Previous, h.Next, h.Pending
				e.Step, e.WrittenBy = h.Step, h.Writer
				entries = append(entries, e)
				continue
			}
		}
		kv, err := s.client.Logical().ReadWithDataWithContext(ctx, s.dataPath(name),
			map[string][]string{"version": {strconv.FormatUint(n, 10)}})
		if StatusCode(err) == http.StatusForbidden {
			// A viewer: this version's ids are not in the metadata.
			entries = append(entries, e)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("history %s: version %d: %w", name, n, s.describe(err))
		}
		if err := s.fillEntry(&e, name, kv); err != nil {
			return nil, fmt.Errorf("history %s: version %d: %w", name, n, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// idsOnly decodes the rotor field without its key values, so History never
// holds them.
type idsOnly struct {
	Current  *keyRef `json:"current"`
	Previous *keyRef `json:"previous"`
	Next     *keyRef `json:"next"`
	Pending  *keyRef `json:"pending"`
	Rotation *struct {
		Step store.Step `json:"step"`
	} `json:"rotation"`
}

type keyRef struct {
	ID string `json:"key_id"`
}

func (r *keyRef) id() string {
	if r == nil {
		return ""
	}
	return r.ID
}

func (s *Store) fillEntry(e *HistoryEntry, name string, kv *api.Secret) error {
	data, _, err := kvData(kv)
	if err != nil {
		return err
	}
	if data == nil {
		// Deleted between the metadata read and this one.
		e.Deleted = true
		return nil
	}
	e.WrittenBy, _ = data[fieldWrittenBy].(string)
	blob, ok := data[fieldRotor].(string)
	if !ok {
		return fmt.Errorf("%s has no %q field: not written by rotor", s.dataPath(name), fieldRotor)
	}
	var ids idsOnly
	if err := json.Unmarshal([]byte(blob), &ids); err != nil {
		return fmt.Errorf("%s: field %q is not valid rotor JSON", s.dataPath(name), fieldRotor)
	}
	e.CurrentKeyID, e.PreviousKeyID = ids.Current.id(), ids.Previous.id()
	e.NextKeyID, e.PendingKeyID = ids.Next.id(), ids.Pending.id()
	if ids.Rotation != nil {
		e.Step = ids.Rotation.Step
	}
	return nil
}
