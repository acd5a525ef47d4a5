// Package rotation is rotor's state machine: it rotates, rolls back, stages
// and revokes the keys of a managed secret, recording every step in the
// store before the next one starts.
//
// # Operations
//
// Every operation that takes more than one save holds the secret's lease
// (a [store.Rotation] whose Kind names it) from its first save to its
// last:
//
//   - rotate: create → test → promote → reload → verify → finish
//     (see [store.Steps]);
//   - rollback: test previous again → promote it back → reload → verify →
//     finish, whether asked for (`rotor rollback`), automatic after a failed
//     reload or verify, or the unwinding of an abort after promote;
//   - revoke: mark the key [store.KeyRevoking] → revoke it at its issuer →
//     clear it, one key per operation;
//   - stage, and the dismissal of a possibly orphaned key: one save, then
//     the outcome is recorded.
//
// After each step the secret is saved with compare-and-swap, with the
// completed step recorded, except where nothing outside the store happens
// before the next save: a rotation's start carries its mint intent, test
// is saved with promote and verify with finish (their audit records
// follow that save), so a rotation that mints writes five versions: start,
// create, promote, reload, finish. A secret without reload hooks saves
// reload with finish as well, and one without verify hooks either saves
// promote with finish too: three versions, start, create, finish. A run
// that dies before such a merged save repeats the step, which changed
// nothing outside the store (test and verify only ask; a promote nobody
// reloads for or verifies is seen only once saved). Every call that does
// change something outside (mint, apply, reload, revoke) still follows a
// save of its own, and promote is saved before a reload or verify hook
// acts on the consumers that read it. A process that dies at any point leaves a
// secret that the next run completes: `rotor rotate NAME`, a daemon tick,
// or the command of the same kind resumes a rotation or a rollback from
// its last recorded step, and any command finishes an interrupted revoke or
// stage before its own work. `rotor rotate NAME --abort` unwinds a
// rotation instead: before promote the pending key is set aside, after
// promote the rotation becomes a rollback.
//
// # Intent before side effect
//
// A call that changes the world outside the store is preceded by a saved
// record of it. A mint saves an intent with a request id
// ([store.Intent], [provider.MintRequest].RequestID); a run that finds the
// intent without a pending key reconciles it (see package provider):
// it recovers the credential from the issuer, repeats an idempotent mint, or
// records a possibly orphaned key ([store.Orphan]) for the operator. A
// revoke marks the key revoking before asking the issuer; a revoking or
// revoked key ([store.Secret].Revoked) is never staged, promoted or rolled
// back to again, and rollback tests previous with the issuer before it
// promotes it back. Reload and verify are preceded by the saved promote:
// a run that dies during a hook runs it again, so hooks must be safe to
// repeat. The id of the key the last completed reload gave consumers is
// kept ([store.Secret].ReloadedKeyID), and revoke refuses that key until
// a later reload completes.
//
// # Providers that prepare
//
// For a provider that is a [provider.Preparer] (a database password is set,
// never read back), create saves the prepared value as pending before the
// issuer sees it and records the step only after Apply returned, so a run
// that dies in between leaves the value in the store and the next run
// applies that same value again. A key that becomes current again through
// an abort or a rollback is applied again too, for issuers that hold one
// credential at a time.
//
// # Audit records
//
// Every record of an operation carries its id, and its last record says how
// it ended: in the audit log's detail, "[op ID] …" and
// "[op ID ended: OUTCOME] …" (see [Event.AuditDetail]). The terminal record
// is written before the save that releases the lease, so a run that dies
// between the two leaves an operation the next run finds and closes again
// ([EndRecovered]); an operation is never left without one unless nobody
// runs again. [OpenOperations] lists the operations of a log that have
// none (`rotor audit verify --open`).
//
// # Leases
//
// An unfinished operation holds a lease: the holder's identity and an
// expiry. Another rotator that finds a live lease gets
// [ErrRotationInProgress]; one that finds an expired lease, or a lease held
// by a process on this host that no longer exists, takes the operation over.
// The store's compare-and-swap is the only coordination: two rotators that
// race to start both load the same version, and only one save succeeds.
//
// # Keys that leave the slots
//
// A key that stops being current is kept as previous until its grace period
// ends, then revoked. A key pushed out of previous by the next rotation, or
// set aside by a rollback or an abort, moves to the secret's retired list and
// is revoked by the next revoke run once it has expired. No key is dropped
// while its issuer may still accept it.
package rotation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/keyring/keyid"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// Secret is what the engine needs to know about one managed secret.
type Secret struct {
	Name     string
	Provider provider.Provider
	Every    time.Duration // rotation interval
	Grace    time.Duration // how long previous stays valid after promote
	Lease    time.Duration // how long a rotator may hold the secret between saves
	// KeepFailedAsPrevious keeps a rolled-back key as previous (valid for
	// another grace period) instead of retiring it.
	KeepFailedAsPrevious bool
	Reload               Reloader // nil: no-op
	Verify               Verifier // nil: no-op
	// Usage, when set, tells which consumers still use a key; revoke
	// refuses a key in use unless forced.
	Usage UsageChecker
	// Schedule, when set, decides when the secret is due (cron, jitter,
	// windows); otherwise it is due Every after the last rotation.
	Schedule Scheduler
}

// Scheduler decides when a secret is due (see package schedule).
type Scheduler interface {
	// Next returns when the secret called name, last rotated at last, is
	// due; the zero time for a secret never rotated.
	Next(name string, last time.Time) time.Time
	// Allowed reports whether a rotation may start at now.
	Allowed(now time.Time) bool
}

// UsageChecker reports which consumers still use a key.
type UsageChecker interface {
	InUse(ctx context.Context, keyID string) ([]string, error)
}

// Reloader makes consumers pick up a newly promoted key.
type Reloader interface {
	Reload(ctx context.Context, s *store.Secret) error
}

// Verifier checks that consumers work with the current key. An error
// triggers an automatic rollback.
type Verifier interface {
	Verify(ctx context.Context, s *store.Secret) error
}

// Event is an audit-worthy happening, without the initiator and time the
// recorder adds.
type Event struct {
	Action string // e.g. rotate.promote, rollback, stage, revoke
	Secret string
	KeyID  string
	Status string // started, succeeded, failed
	Detail string
	// Op is the id of the operation the event belongs to; empty for an
	// event outside one (a refusal before anything started).
	Op string
	// End, when set, makes this the operation's terminal record and says
	// how the operation ended.
	End Outcome
	// Err is the error a failed event reports, for recorders that act on
	// its kind (errors.Is, errors.As: a *provider.ActionRequiredError
	// asks the operator to act); Detail carries its message. Nil for
	// other events. It is not part of the audit record.
	Err error
}

// Audit statuses.
const (
	StatusStarted   = "started"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Outcome is how an operation ended, in its terminal record.
type Outcome string

// The outcomes of an operation.
const (
	EndSucceeded Outcome = "succeeded"
	EndFailed    Outcome = "failed"
	// EndAborted: a rotation unwound by `rotor rotate --abort` before
	// promote.
	EndAborted Outcome = "aborted"
	// EndRecovered: written by a run that found the operation interrupted
	// after its work was saved and closed it (its own terminal record may
	// or may not have been written).
	EndRecovered Outcome = "recovered"
)

// Recorder writes audit events. An error from Record stops the operation
// before it changes anything when the event is a "started" one.
type Recorder interface {
	Record(ctx context.Context, e Event) error
}

// Engine runs rotor's operations against one store.
type Engine struct {
	Store store.Store
	Audit Recorder
	// Salt keys the key ids (see package keyid).
	Salt []byte
	// Initiator is who is acting, recorded in the rotation's lease.
	Initiator string
	// Holder identifies this process in leases. Default: host:pid:nonce.
	Holder string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// HolderAlive reports whether a lease holder still exists. Default:
	// a holder on this host is alive while its pid is; holders on other
	// hosts are assumed alive until their lease expires.
	HolderAlive func(holder string) bool
	// OnStep is called after each step is saved (progress output, fault
	// injection in tests), and at the other [Points]. A step saved with
	// a later one (test, verify, and promote and reload of a secret
	// without hooks; see the package doc) is seen when it completes,
	// before that save, and [StepIntent] after the start
	// that carried the intent was recorded. It may not modify
	// the secret.
	OnStep func(name string, step store.Step, s *store.Secret)
	// Log receives operational logs (key ids only). Default: discard.
	Log *slog.Logger
	// Stopping, when set and true, makes a rotation park between steps:
	// the step in flight finishes, the lease is released, and the next run
	// resumes. A daemon shutting down uses it, so that shutdown never cuts
	// a step (or a verification) short.
	Stopping func() bool
}

// Points reported to [Engine.OnStep] like steps but never recorded as
// one: places inside a step, and the steps of operations other than a
// rotation.
const (
	// StepIntent: the mint intent was saved; the provider has not been
	// asked yet.
	StepIntent store.Step = "intent"
	// StepMinted: the provider answered Mint; the pending key is not saved
	// yet.
	StepMinted store.Step = "minted"
	// StepPrepared: the prepared value was saved as pending; the issuer
	// has not been asked to accept it yet ([provider.Preparer]).
	StepPrepared store.Step = "prepare"
	// StepApplied: the issuer accepted the pending value; create is not
	// recorded yet.
	StepApplied store.Step = "apply"
	// StepAborted: an abort before promote was saved; its outcome is not
	// recorded yet and the lease is held.
	StepAborted = store.StepAborted
	// StepRevoking: the key was marked revoking and saved; its issuer has
	// not been asked yet.
	StepRevoking store.Step = "revoking"
	// StepRevoked: the issuer revoked the key; it is not cleared yet.
	StepRevoked store.Step = "revoked"
	// StepStaged: the staged key was saved; its outcome is not recorded
	// yet and the lease is held.
	StepStaged store.Step = "staged"
)

// RollbackStep names a step of a rollback for [Engine.OnStep]:
// "rollback.test", "rollback.promote", "rollback.reload",
// "rollback.verify", "rollback.finish".
func RollbackStep(step store.Step) store.Step { return "rollback." + step }

// rollbackSteps are the steps of a rollback, in order.
var rollbackSteps = []store.Step{store.StepTest, store.StepPromote, store.StepReload, store.StepVerify, store.StepFinish}

// Points lists every step and point [Engine.OnStep] may be called with.
var Points = func() []store.Step {
	ps := []store.Step{StepIntent, StepMinted, StepPrepared, StepApplied}
	ps = append(ps, store.Steps...)
	ps = append(ps, StepAborted)
	for _, st := range rollbackSteps {
		ps = append(ps, RollbackStep(st))
	}
	return append(ps, StepRevoking, StepRevoked, StepStaged)
}()

// point reports a point inside a step to OnStep.
func (e *Engine) point(s *store.Secret, p store.Step) {
	if e.OnStep != nil {
		e.OnStep(s.Name, p, s)
	}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (e *Engine) holder() string {
	if e.Holder == "" {
		e.Holder = NewHolder()
	}
	return e.Holder
}

// NewHolder returns a lease holder id for this process: host:pid:nonce.
func NewHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), randomID(4))
}

func (e *Engine) alive(holder string) bool {
	if e.HolderAlive != nil {
		return e.HolderAlive(holder)
	}
	return LocalHolderAlive(holder)
}

// LocalHolderAlive reports false only for a holder on this host whose
// process no longer exists; a holder elsewhere is presumed alive.
func LocalHolderAlive(holder string) bool {
	parts := strings.Split(holder, ":")
	if len(parts) != 3 {
		return true
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if parts[0] != host || err != nil || pid <= 0 {
		return true
	}
	if pid == os.Getpid() {
		return true
	}
	return processAlive(pid)
}

func (e *Engine) keyID(value string) string { return keyid.Of(e.Salt, value) }

func (e *Engine) record(ctx context.Context, ev Event) error {
	if e.Audit == nil {
		return nil
	}
	if err := e.Audit.Record(ctx, ev); err != nil {
		return fmt.Errorf("audit %s %s: %w", ev.Action, ev.Secret, err)
	}
	return nil
}

// recordAll records ev and, on failure, joins the audit error to err.
func (e *Engine) recordAll(ctx context.Context, err error, ev Event) error {
	ev.Err = err
	if aerr := e.record(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// load returns the stored secret, or an empty one with NoVersion when the
// store has none yet (first issue).
func (e *Engine) load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	s, v, err := e.Store.Load(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return &store.Secret{Name: name}, store.NoVersion, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("load %s: %w", name, err)
	}
	return s, v, nil
}

// Load returns the stored secret; a secret that was never rotated is
// returned empty, with NoVersion.
func (e *Engine) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	return e.load(ctx, name)
}

// NextRotation returns when s is next due under sec's schedule, or half a
// grace period before its issuer deletes the current key
// ([store.Key.IssuerExpiresAt]) if that is sooner. A secret without a
// current key is due now (the zero time).
func (sec Secret) NextRotation(s *store.Secret) time.Time {
	if s.Current == nil {
		return time.Time{}
	}
	last := s.LastRotatedAt
	if last.IsZero() {
		last = s.Current.CreatedAt
	}
	next := last.Add(sec.Every)
	if sec.Schedule != nil {
		next = sec.Schedule.Next(sec.Name, last)
	}
	// A current key its issuer deletes (restored by a rollback within a
	// deletion delay) is due half a grace period before then, so that the
	// new key has been in use that long when the old one stops working.
	if exp := s.Current.IssuerExpiresAt(); !exp.IsZero() {
		if due := exp.Add(-sec.Grace / 2); due.Before(next) {
			next = due
		}
	}
	return next
}

// Due reports whether s should be rotated at now: it has no current key,
// its interval has passed, or an abandoned rotation waits to be resumed.
func (e *Engine) Due(s *store.Secret, sec Secret, now time.Time) bool {
	if r := s.Rotation; r != nil {
		return !now.Before(r.LeaseExpiresAt) || !e.alive(r.Holder)
	}
	if sec.Schedule != nil && !sec.Schedule.Allowed(now) {
		return false
	}
	return s.Current == nil || !now.Before(sec.NextRotation(s))
}

// live reports whether rot is held by another process that may still be
// running: its lease has not expired and its holder is not known dead.
func (e *Engine) live(rot *store.Rotation) bool {
	return e.now().Before(rot.LeaseExpiresAt) && rot.Holder != e.holder() && e.alive(rot.Holder)
}
