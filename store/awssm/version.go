package awssm

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-dev/rotor/store"
)

// Version returns the version [Store.Load] would return for the secret
// called name without reading a secret value: one DescribeSecret of the
// secret applications read (its staging labels) and one of its state
// secret (the version id that holds AWSCURRENT there). A poller such as
// rotor serve's watch reader, or storesource.New, asks for it at every poll
// and loads the secret only when it moved; see "Reading the version" in
// the package documentation. It wraps store.ErrNotFound when neither
// secret exists.
func (s *Store) Version(ctx context.Context, name string) (store.Version, error) {
	if err := s.checkName(name); err != nil {
		return store.NoVersion, fmt.Errorf("awssm: version: %w", err)
	}
	snap, err := s.describe(ctx, name)
	if err != nil {
		return store.NoVersion, fmt.Errorf("awssm: version of %s: %w", name, err)
	}
	sName := s.StateName(name)
	d, err := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(sName)})
	switch {
	case isNotFound(err):
	case err != nil:
		return store.NoVersion, fmt.Errorf("awssm: version of %s: describe %s: %w", name, sName, err)
	case d.DeletedDate != nil:
		return store.NoVersion, fmt.Errorf("awssm: version of %s: state secret %s is scheduled for deletion; restore it (aws secretsmanager restore-secret) to use it", name, sName)
	default:
		// A state secret without an AWSCURRENT version has no document:
		// Load's GetSecretValue of AWSCURRENT finds nothing either.
		snap.svid = holder(d.VersionIdsToStages, LabelCurrent)
		snap.sExists = snap.svid != ""
	}
	if !snap.mExists && !snap.sExists {
		return store.NoVersion, fmt.Errorf("awssm: version of %s: %w", name, store.ErrNotFound)
	}
	if snap.sExists {
		h, err := s.head(ctx, name, snap.svid)
		if err != nil {
			return store.NoVersion, fmt.Errorf("awssm: version of %s: %w", name, err)
		}
		snap.rec = record{Serial: h.serial, Labels: h.labels, Prior: h.prior}
	}
	b, _ := basisOf(snap.actual, &snap.rec)
	return version(snap, b), nil
}

// head returns what a version depends on of the state document svid of
// the secret called name: from memory when this store read or wrote that
// document last, else by reading it (the one GetSecretValue Version can
// cost, once per new document).
func (s *Store) head(ctx context.Context, name, svid string) (head, error) {
	if h, ok := s.heads.get(name, svid); ok {
		return h, nil
	}
	sName := s.StateName(name)
	g, err := s.api.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(sName), VersionId: aws.String(svid)})
	if err != nil {
		return head{}, fmt.Errorf("read version %s of %s: %w", svid, sName, err)
	}
	rec, err := decodeRecord([]byte(aws.ToString(g.SecretString)), name)
	if err != nil {
		return head{}, fmt.Errorf("read %s: %w", sName, err)
	}
	s.heads.remember(name, svid, rec)
	return headOf(svid, rec), nil
}

// head is the part of a state document that a store.Version depends on,
// besides the labels: Versions of the state secret are immutable, so it
// is fixed by the version id.
type head struct {
	svid          string
	serial        uint64
	labels, prior layout
}

// heads remembers the head of the latest state document read or written
// for each secret: one small entry per secret the store has used, no
// values.
type heads struct {
	mu sync.Mutex
	m  map[string]head
}

func headOf(svid string, rec *record) head {
	return head{svid: svid, serial: rec.Serial, labels: rec.Labels, prior: rec.Prior}
}

func (h *heads) remember(name, svid string, rec *record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]head{}
	}
	h.m[name] = headOf(svid, rec)
}

func (h *heads) get(name, svid string) (head, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[name]
	return e, ok && e.svid == svid
}

// Version returns the version [LabelReader.Load] would return, from one
// DescribeSecret call: a polling keyring (storesource.New) then reads the
// values only when AWSCURRENT or AWSPREVIOUS moved.
func (r LabelReader) Version(ctx context.Context, name string) (store.Version, error) {
	s := r.s
	if err := s.checkName(name); err != nil {
		return store.NoVersion, fmt.Errorf("awssm: label version: %w", err)
	}
	cur, prev, err := s.labelHolders(ctx, name)
	if err != nil {
		return store.NoVersion, fmt.Errorf("awssm: label version of %s: %w", name, err)
	}
	return labelsVersion(cur, prev), nil
}
