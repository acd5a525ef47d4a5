package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/provider/clerkmachine"
	"github.com/rotor-dev/rotor/provider/exec"
	"github.com/rotor-dev/rotor/provider/postgres"
	"github.com/rotor-dev/rotor/provider/random"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/trigger"
)

// --dry-run of rotate, rollback and revoke: what the operation would do
// with the secret as stored now, decided by the engine's own rules
// (rotation.Engine.PlanRollback, PlanRevoke, Due), printed on stdout. A
// dry run changes nothing, writes no audit record and never calls the
// issuer; it reads the store and, for revoke, asks consumers which key
// they use, as revoke does. What the operation would refuse is printed
// and returned as the same error, so the exit code is the operation's.

// providerPlan says, in the issuer's terms, what the provider of a secret
// does to mint and to revoke a key.
type providerPlan struct {
	mint, revoke string
	// manual is set when the provider cannot mint by itself: a rotation
	// without a staged key stops and asks the operator (exit 6).
	manual string
}

// describeProvider reads the secret's provider options; it calls nothing.
func describeProvider(sc *config.Secret) providerPlan {
	switch o := sc.ProviderOptions.(type) {
	case random.Options:
		return providerPlan{
			mint:   fmt.Sprintf("generate %d random bytes (%s), no issuer", o.Bytes, o.Encoding),
			revoke: "drop it (no issuer)",
		}
	case clerk.Options:
		switch {
		case o.Platform != nil:
			return providerPlan{
				mint:   fmt.Sprintf("Clerk Platform API: POST /platform/applications/%s/instances/%s/rotate_secret_keys (Clerk deletes the old key after the grace period)", o.Platform.ApplicationID, o.Platform.Instance),
				revoke: "confirm Clerk no longer accepts it (GET /v1/jwks answers 401); Clerk deletes it itself when the delay ends",
			}
		case o.Mint != nil:
			p := providerPlan{mint: "run the Clerk mint hook " + strings.Join(o.Mint.Command, " "), revoke: "ask the operator to delete it in the Clerk Dashboard, then confirm it answers 401"}
			if o.Revoke != nil {
				p.revoke = "run the Clerk revoke hook " + strings.Join(o.Revoke.Command, " ") + ", then confirm it answers 401"
			}
			return p
		}
		p := providerPlan{
			mint:   "none: Clerk instance keys are created in the Clerk Dashboard",
			revoke: "ask the operator to delete it in the Clerk Dashboard (exit 6), and on a later revoke confirm Clerk answers 401 (GET /v1/jwks)",
			manual: "create a secret key in the Clerk Dashboard (API keys), then `rotor stage " + sc.Name + " --from-env VAR` it",
		}
		if o.Revoke != nil {
			p.revoke = "run the Clerk revoke hook " + strings.Join(o.Revoke.Command, " ") + ", then confirm it answers 401"
		}
		return p
	case clerkmachine.Options:
		return providerPlan{
			mint:   "Clerk Backend API: POST /v1/machines/" + o.MachineID + "/secret_key/rotate (the old key stays valid for the grace period, at most 8h)",
			revoke: "confirm Clerk no longer accepts it; Clerk expires it itself",
		}
	case exec.Options:
		return providerPlan{
			mint:   "run " + strings.Join(o.Command, " ") + " (action mint)",
			revoke: "run " + strings.Join(o.Command, " ") + " (action revoke)",
		}
	case postgres.Options:
		return providerPlan{
			mint:   fmt.Sprintf("PostgreSQL: set a new password on the next of roles %s (%s)", strings.Join(o.Roles, ", "), o.Strategy),
			revoke: fmt.Sprintf("PostgreSQL: lock out the key's role (revoke mode %s)", o.Revoke),
		}
	}
	return providerPlan{mint: "call provider " + sc.Provider + " to mint", revoke: "call provider " + sc.Provider + " to revoke"}
}

// describeHooks lists the reload hooks, verify checks and consumers of sc
// in the order the reload and verify steps run them.
func describeHooks(sc *config.Secret) (reload, verify string) {
	var rs, vs []string
	for _, h := range sc.Reload {
		rs = append(rs, describeHook(h, true))
	}
	for _, h := range sc.Verify {
		vs = append(vs, describeHook(h, false))
	}
	if len(sc.Consumers) > 0 {
		timeout := time.Duration(sc.ConsumerTimeout)
		if timeout == 0 {
			timeout = trigger.DefaultConsumerTimeout
		}
		vs = append(vs, fmt.Sprintf("consumers %s must report the new key id (within %s)", strings.Join(sc.Consumers, ", "), timeout))
	}
	reload, verify = "none", "none"
	if len(rs) > 0 {
		reload = strings.Join(rs, "; ")
	}
	if len(vs) > 0 {
		verify = strings.Join(vs, "; ")
	}
	return reload, verify
}

func describeHook(h config.Hook, reload bool) string {
	switch {
	case h.HTTP != nil && reload:
		return "POST " + h.HTTP.URL
	case h.HTTP != nil:
		s := "GET " + h.HTTP.URL + " until it answers 2xx"
		if h.HTTP.RequireKeyID {
			s += " with the new key id"
		}
		return s
	case h.Signal != nil:
		sig := h.Signal.Signal
		if sig == "" {
			sig = "HUP"
		}
		return "signal " + sig + " to the pid in " + h.Signal.PIDFile
	case h.Kubernetes != nil:
		return "restart deployment " + h.Kubernetes.Namespace + "/" + h.Kubernetes.Deployment + " and wait for the rollout"
	}
	return "run " + strings.Join(h.Command, " ")
}

// plan is a dry run's plan as it is built: its text, which the text
// output prints and the JSON documents carry as plan, and its steps
// (api.PlanStep), the same plan for a program to read.
type plan struct {
	text  strings.Builder
	steps []api.PlanStep
}

func (p *plan) printf(format string, args ...any) { fmt.Fprintf(&p.text, format, args...) }

// step adds a step acting on the keys ids ("" ids are left out: a key
// that does not exist).
func (p *plan) step(name, action string, ids ...string) {
	st := api.PlanStep{Name: name, Action: action, KeyIDs: []string{}}
	for _, id := range ids {
		if id != "" {
			st.KeyIDs = append(st.KeyIDs, id)
		}
	}
	p.steps = append(p.steps, st)
}

// String returns the plan's text.
func (p *plan) String() string { return p.text.String() }

// Steps returns the plan's steps, [] for none.
func (p *plan) Steps() []api.PlanStep {
	if p.steps == nil {
		return []api.PlanStep{}
	}
	return p.steps
}

// hooks adds the reload and verify steps of sc, and their lines.
func (p *plan) hooks(sc *config.Secret, after string) {
	reload, verify := describeHooks(sc)
	p.printf("%s:   reload (%s): %s\n", sc.Name, after, reload)
	p.printf("%s:   verify: %s\n", sc.Name, verify)
	p.step(api.PlanReload, reload)
	p.step(api.PlanVerify, verify)
}

// planRotate plans rotating sec; it returns the error the rotation would
// stop with when it cannot start or cannot mint.
func (a *app) planRotate(pl *plan, sec rotation.Secret, s *store.Secret, now time.Time) error {
	sc, err := a.cfg.Secret(sec.Name)
	if err != nil {
		return err
	}
	pp := describeProvider(sc)
	p, err := a.engine.PlanRotate(s)
	var ipe *rotation.InProgressError
	if errors.As(err, &ipe) {
		pl.printf("%s: busy: %s %s (last step %s) is held by %s until %s; rotate would change nothing and exit %d\n",
			sec.Name, opName(ipe.Kind), ipe.ID, stepOrStart(ipe.Step), ipe.Holder, ipe.LeaseExpiresAt.UTC().Format(time.RFC3339), exitCode(err))
	}
	if err != nil {
		return fmt.Errorf("dry run: rotate would stop: %w", err)
	}
	if r := p.Resume; r != nil {
		action := fmt.Sprintf("resume %s %s after step %s (its lease, held by %s until %s, is no longer live)",
			opName(r.OpKind()), r.ID, stepOrStart(r.Step), orNobody(r.Holder), r.LeaseExpiresAt.UTC().Format(time.RFC3339))
		pl.printf("%s: would rotate: %s\n", sec.Name, action)
		pl.step(api.PlanResume, action, store.KeyID(s.Pending), r.KeyID)
		return nil
	}
	if r := p.Interrupted; r != nil {
		pl.printf("%s: would first finish the interrupted %s %s\n", sec.Name, r.OpKind(), r.ID)
		pl.step(api.PlanFinishInterrupted, fmt.Sprintf("finish the interrupted %s %s", r.OpKind(), r.ID), r.KeyID)
	}
	var src string
	switch {
	case s.Next != nil:
		src = "promote staged key " + s.Next.ID + " (no issuer call to mint)"
	case pp.manual != "":
		return &provider.ActionRequiredError{Action: fmt.Sprintf("dry run: rotate would stop: %s: no staged key, and provider %s cannot mint one", sec.Name, sc.Provider), Steps: []string{pp.manual}}
	default:
		src = "mint a new key with provider " + sc.Provider + ": " + pp.mint
	}
	newID := store.KeyID(s.Next) // "" for a key yet to be minted
	pl.step(api.PlanCreate, src, newID)
	pl.step(api.PlanTest, "test the new key with the issuer", newID)
	promote := "make the new key current"
	msg := src + "; test it with the issuer; promote"
	if s.Current != nil {
		aside := fmt.Sprintf("current %s becomes previous until %s", s.Current.ID, now.Add(sec.Grace).Format(time.RFC3339))
		msg += " (" + aside + ")"
		promote += "; " + aside
	}
	pl.step(api.PlanPromote, promote, newID, store.KeyID(s.Current))
	pl.printf("%s: would rotate: %s; reload; verify; finish\n", sec.Name, msg)
	pl.hooks(sc, "after promote")
	pl.step(api.PlanFinish, "record the rotation as finished")
	pl.printf("%s:   on a failed reload or verify: roll back to %s\n", sec.Name, orNone(store.KeyID(s.Current)))
	pl.step(api.PlanRollBackOnFailure, "roll back to "+orNone(store.KeyID(s.Current)), store.KeyID(s.Current))
	return nil
}

// opName names an operation of kind k in a sentence ("rotation",
// "rollback", "revoke"…).
func opName(k store.OpKind) string {
	if k == "" || k == store.OpRotate {
		return "rotation"
	}
	return string(k)
}

// orNobody names a lease holder, "nobody" for a released lease.
func orNobody(holder string) string {
	if holder == "" {
		return "nobody"
	}
	return holder
}

func orNone(id string) string {
	if id == "" {
		return "nothing (no previous key)"
	}
	return id
}

// planRollback plans rolling sec back, and returns the error the
// rollback would refuse with.
func (a *app) planRollback(pl *plan, sec rotation.Secret, s *store.Secret) error {
	sc, err := a.cfg.Secret(sec.Name)
	if err != nil {
		return err
	}
	p, err := a.engine.PlanRollback(sec, s)
	if err != nil {
		return fmt.Errorf("dry run: rollback would refuse: %w", err)
	}
	if r := p.Interrupted; r != nil {
		pl.printf("%s: would first finish the interrupted %s %s (key %s)\n", sec.Name, r.OpKind(), r.ID, orNone(r.KeyID))
		pl.step(api.PlanFinishInterrupted, fmt.Sprintf("finish the interrupted %s %s", r.OpKind(), r.ID), r.KeyID)
	}
	if r := p.Resume; r != nil {
		action := fmt.Sprintf("resume rollback %s after step %s (reason: %s)", r.ID, stepOrStart(r.Step), r.Reason)
		pl.printf("%s: would %s\n", sec.Name, action)
		pl.step(api.PlanResume, action, store.KeyID(s.Current), r.KeyID)
		pl.hooks(sc, "after the restored key is current")
		pl.step(api.PlanFinish, "record the rollback as finished")
		return nil
	}
	aside := "set aside for revocation (revoke it with `rotor revoke " + sec.Name + "`)"
	if p.KeepAsPrevious {
		aside = "kept as previous (keep_failed_as_previous)"
	}
	pl.printf("%s: would roll back: test previous key %s with provider %s; make it current; current %s %s; reload; verify; finish\n",
		sec.Name, p.Restore, sc.Provider, p.SetAside, aside)
	pl.step(api.PlanTest, fmt.Sprintf("test previous key %s with provider %s", p.Restore, sc.Provider), p.Restore)
	pl.step(api.PlanPromote, fmt.Sprintf("make %s current; current %s %s", p.Restore, p.SetAside, aside), p.Restore, p.SetAside)
	pl.hooks(sc, "after the restored key is current")
	pl.step(api.PlanFinish, "record the rollback as finished")
	if exp := s.Previous.IssuerExpiresAt(); !exp.IsZero() {
		pl.printf("%s:   the issuer deletes key %s at %s: rotate before then\n", sec.Name, p.Restore, exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// planRevoke plans revoking sec's keys, and returns the errors revoke
// would refuse with.
func (a *app) planRevoke(ctx context.Context, pl *plan, sec rotation.Secret, s *store.Secret, opts rotation.RevokeOptions) error {
	sc, err := a.cfg.Secret(sec.Name)
	if err != nil {
		return err
	}
	p, err := a.engine.PlanRevoke(ctx, sec, s, opts)
	if err != nil {
		return fmt.Errorf("dry run: revoke would refuse: %w", err)
	}
	pp := describeProvider(sc)
	if r := p.Interrupted; r != nil && r.OpKind() != store.OpRevoke {
		pl.printf("%s: would first finish the interrupted %s %s\n", sec.Name, r.OpKind(), r.ID)
		pl.step(api.PlanFinishInterrupted, fmt.Sprintf("finish the interrupted %s %s", r.OpKind(), r.ID), r.KeyID)
	}
	if r := p.Interrupted; r != nil && r.OpKind() == store.OpRevoke {
		action := fmt.Sprintf("finish revoking key %s (interrupted revoke %s): %s", r.KeyID, r.ID, pp.revoke)
		pl.printf("%s: would %s\n", sec.Name, action)
		pl.step(api.PlanRevoke, action, r.KeyID)
	}
	for _, id := range p.Finish {
		action := fmt.Sprintf("finish revoking key %s (marked revoking by an interrupted run): %s%s", id, pp.revoke, dashboardHint(sc, findKey(s, id)))
		pl.printf("%s: would %s\n", sec.Name, action)
		pl.step(api.PlanRevoke, action, id)
	}
	for _, id := range p.Revoke {
		forced := ""
		if k := findKey(s, id); k != nil && !k.Expired(a.now()) {
			forced = " (forced before its grace period ends; audited as forced)"
		}
		action := fmt.Sprintf("revoke key %s%s: %s%s", id, forced, pp.revoke, dashboardHint(sc, findKey(s, id)))
		pl.printf("%s: would %s\n", sec.Name, action)
		pl.step(api.PlanRevoke, action, id)
	}
	if opts.ExpiredOnly {
		for _, id := range p.Waiting {
			action := fmt.Sprintf("skip key %s: still within grace", id)
			pl.printf("%s: would %s\n", sec.Name, action)
			pl.step(api.PlanSkip, action, id)
		}
	}
	if p.Interrupted == nil && len(p.Finish)+len(p.Revoke)+len(p.Refused) == 0 && !opts.ExpiredOnly {
		pl.printf("%s: nothing to revoke\n", sec.Name)
	}
	if len(p.Refused) > 0 {
		return fmt.Errorf("dry run: revoke would refuse: %w", errors.Join(p.Refused...))
	}
	return nil
}

// dashboardHint says which key to delete in the Clerk Dashboard when the
// provider asks the operator to: its Dashboard name, if one was recorded,
// and how the Dashboard shows it (the start and the last four characters,
// what the Dashboard itself shows: see clerk.DashboardHint).
func dashboardHint(sc *config.Secret, k *store.Key) string {
	o, ok := sc.ProviderOptions.(clerk.Options)
	if !ok || o.Platform != nil || o.Revoke != nil || k == nil {
		return ""
	}
	h := "; in the Dashboard it is shown as " + clerk.DashboardHint(k.Value)
	if name := k.Meta[clerk.MetaDashboardName]; name != "" {
		h += fmt.Sprintf(", named %q", name)
	}
	return h
}

// findKey returns the previous or retired key of s with id, or nil.
func findKey(s *store.Secret, id string) *store.Key {
	if s.Previous != nil && s.Previous.ID == id {
		return s.Previous
	}
	for i := range s.Retired {
		if s.Retired[i].ID == id {
			return &s.Retired[i]
		}
	}
	return nil
}
