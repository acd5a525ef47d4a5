package awssm

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-dev/rotor/store"
)

// plan is what one save writes: the state document to commit and the
// values of the versions its layout needs.
type plan struct {
	rec    record
	values map[string]string // version id → value
}

// plan turns desired into the next state document. Each key is mapped to
// the version holding its value, or given a new version id.
func (s *Store) plan(ctx context.Context, name string, snap *snapshot, cur *state, desired *store.Secret, commit string) (*plan, error) {
	// Versions that already hold a value; a slot's own version wins.
	byValue := map[string]string{}
	for _, e := range cur.retired {
		if e.vid != "" {
			byValue[e.key.Value] = e.vid
		}
	}
	for _, l := range slices.Backward(labels) {
		if e := cur.slots[slotOf[l]]; e != nil && e.vid != "" {
			byValue[e.key.Value] = e.vid
		}
	}

	next := newState()
	p := &plan{values: map[string]string{}}
	for _, l := range labels {
		sl := slotOf[l]
		k := desired.Slot(sl)
		if k == nil {
			continue
		}
		var vid string
		if e := cur.slots[sl]; e != nil && e.vid != "" && e.key.Value == k.Value {
			vid = e.vid
		} else if v, ok := byValue[k.Value]; ok {
			vid = v
		} else {
			var err error
			if vid, err = s.newVersionID(ctx, name, snap, cur, desired, sl, commit); err != nil {
				return nil, err
			}
		}
		byValue[k.Value] = vid
		p.values[vid] = k.Value
		next.slots[sl] = &entry{key: *k.Clone(), vid: vid}
	}
	for _, k := range desired.Retired {
		k.Meta = maps.Clone(k.Meta)
		next.retired = append(next.retired, entry{key: k, vid: byValue[k.Value]})
	}
	next.rotation = desired.Rotation.Clone()
	next.lastRotatedAt = desired.LastRotatedAt
	next.reloadedKeyID = desired.ReloadedKeyID
	next.revoked = slices.Clone(desired.Revoked)
	next.orphans = slices.Clone(desired.Orphans)
	next.seal = desired.Seal.Clone()

	// The layout to leave on the secret. Without a current key, nothing
	// new is written: Secrets Manager would make the first version
	// AWSCURRENT, and AWSCURRENT cannot be removed, so it stays put.
	canWrite := desired.Current != nil || snap.actual.Current != ""
	var target layout
	for _, l := range labels {
		if e := next.slots[slotOf[l]]; e != nil && (canWrite || snap.labelled[e.vid]) {
			*target.at(l) = e.vid
		}
	}
	if desired.Current == nil {
		target.Current = snap.actual.Current
	}
	p.rec = record{
		Format: recordFormat, Secret: name, Serial: snap.rec.Serial + 1, Nonce: newToken(),
		Labels: target.normal(), Prior: snap.actual,
	}
	p.rec.fill(next)
	return p, nil
}

// newVersionID returns the version id of a new value in slot sl. The
// pending key of rotation R is version "R-pending" when that is a valid
// ClientRequestToken not used before, so AWS's version history names the
// rotation; anything else gets an id derived from the commit, which is
// unique to this save and the same when it is replayed.
func (s *Store) newVersionID(ctx context.Context, name string, snap *snapshot, cur *state, desired *store.Secret, sl store.Slot, commit string) (string, error) {
	if sl == store.SlotPending && desired.Rotation != nil {
		if tok, ok := rotationToken(desired.Rotation.ID); ok {
			used, err := s.used(ctx, name, snap, cur, tok)
			if err != nil {
				return "", err
			}
			if !used {
				return tok, nil
			}
		}
	}
	return derive("version", commit, string(sl)), nil
}

// rotationToken returns the ClientRequestToken of rotation id's pending key,
// if id makes a valid one (32 to 64 letters, digits and '-').
func rotationToken(id string) (string, bool) {
	t := id + "-pending"
	if len(t) < 32 || len(t) > 64 {
		return "", false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return "", false
		}
	}
	return t, true
}

// used reports whether version id tok exists or is known to the record:
// reusing it for another value would fail with ResourceExistsException.
func (s *Store) used(ctx context.Context, name string, snap *snapshot, cur *state, tok string) (bool, error) {
	if snap.labelled[tok] {
		return true, nil
	}
	for _, e := range cur.slots {
		if e.vid == tok {
			return true, nil
		}
	}
	for _, e := range cur.retired {
		if e.vid == tok {
			return true, nil
		}
	}
	if !snap.mExists {
		return false, nil
	}
	mName := s.SecretName(name)
	p := sm.NewListSecretVersionIdsPaginator(s.api, &sm.ListSecretVersionIdsInput{
		SecretId: aws.String(mName), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("list versions of %s: %w", mName, err)
		}
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) == tok {
				return true, nil
			}
		}
	}
	return false, nil
}

// apply makes the labels of the secret match the committed layout, from
// the labels read before the commit. It writes the versions the layout
// needs first, then moves labels, AWSCURRENT first.
func (s *Store) apply(ctx context.Context, name string, snap *snapshot, p *plan) error {
	mName := s.SecretName(name)
	target, a, exists := p.rec.Labels, snap.actual, snap.mExists
	var fresh []string
	for _, l := range labels {
		if vid := target.get(l); vid != "" && !snap.labelled[vid] && !slices.Contains(fresh, vid) {
			fresh = append(fresh, vid)
		}
	}
	for _, vid := range fresh {
		if !exists {
			// The secret's first version; plan only writes one with a
			// current key, which comes first.
			if err := s.createSecret(ctx, name, vid, p.values[vid]); err != nil {
				return err
			}
			exists, a = true, layout{Current: vid}
			continue
		}
		var stages []string
		for _, l := range labels {
			if target.get(l) == vid && !(l == LabelPrevious && target.Current == vid) {
				stages = append(stages, l)
			}
		}
		out, err := s.api.PutSecretValue(ctx, &sm.PutSecretValueInput{
			SecretId:           aws.String(mName),
			ClientRequestToken: aws.String(vid),
			SecretString:       aws.String(p.values[vid]),
			VersionStages:      stages,
		})
		if isExists(err) {
			return fmt.Errorf("write version %s of %s: it exists with another value", vid, mName)
		}
		if err != nil {
			return fmt.Errorf("write version %s of %s: %w", vid, mName, err)
		}
		// A replayed put is a no-op that attaches nothing: trust only
		// the labels AWS reports on the version now.
		for _, l := range out.VersionStages {
			if _, ok := slotOf[l]; !ok || a.get(l) == vid {
				continue
			}
			if l == LabelCurrent && a.Current != "" {
				a.Previous = a.Current
			}
			*a.at(l) = vid
		}
	}
	for _, l := range labels {
		want, have := target.get(l), a.get(l)
		switch {
		case l == LabelCurrent && want == "":
			continue // never removed; see plan
		case l == LabelPending && (have == want || have == a.Current && want == ""):
			continue
		case have == want:
			continue
		}
		if err := s.move(ctx, mName, l, want, have); err != nil {
			return err
		}
		if l == LabelCurrent && have != "" {
			a.Previous = have // AWS moves AWSPREVIOUS along
		}
		*a.at(l) = want
	}
	return nil
}

func (s *Store) createSecret(ctx context.Context, name, vid, value string) error {
	mName := s.SecretName(name)
	in := &sm.CreateSecretInput{
		Name:               aws.String(mName),
		ClientRequestToken: aws.String(vid),
		SecretString:       aws.String(value),
		Description: aws.String(fmt.Sprintf("Managed by rotor. Staging labels: %s current, %s previous, %s pending, %s next; metadata in %s.",
			LabelCurrent, LabelPrevious, LabelPending, LabelNext, s.StateName(name))),
	}
	if s.kmsKeyID != "" {
		in.KmsKeyId = aws.String(s.kmsKeyID)
	}
	_, err := s.api.CreateSecret(ctx, in)
	if isExists(err) {
		return fmt.Errorf("create %s: %w: it was created outside this save", mName, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", mName, err)
	}
	return nil
}

// move attaches label to version to ("" removes it), taking it from
// version from ("" if it is attached nowhere). Secrets Manager refuses the
// move when from no longer holds the label: somebody else moved it.
func (s *Store) move(ctx context.Context, mName, label, to, from string) error {
	in := &sm.UpdateSecretVersionStageInput{SecretId: aws.String(mName), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := s.api.UpdateSecretVersionStage(ctx, in)
	if err == nil {
		return nil
	}
	if !isInvalidParameter(err) {
		return fmt.Errorf("move %s of %s to %q: %w", label, mName, to, err)
	}
	// A retried call that had succeeded also lands here: accept the
	// label where this save wants it.
	d, derr := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(mName)})
	if derr == nil && holder(d.VersionIdsToStages, label) == to {
		return nil
	}
	return fmt.Errorf("move %s of %s: %w: the label was moved concurrently (%w)", label, mName, store.ErrConflict, err)
}

func holder(m map[string][]string, label string) string {
	for vid, stages := range m {
		if slices.Contains(stages, label) {
			return vid
		}
	}
	return ""
}
