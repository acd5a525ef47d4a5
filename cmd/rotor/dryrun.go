package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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

// printHooks writes the reload and verify lines of a dry run.
func printHooks(out io.Writer, sc *config.Secret, after string) {
	reload, verify := describeHooks(sc)
	fmt.Fprintf(out, "%s:   reload (%s): %s\n", sc.Name, after, reload)
	fmt.Fprintf(out, "%s:   verify: %s\n", sc.Name, verify)
}

// planRotate prints what rotating sec would do; it returns the error the
// rotation would stop with when it cannot start or cannot mint.
func (a *app) planRotate(out io.Writer, sec rotation.Secret, s *store.Secret, now time.Time) error {
	sc, err := a.cfg.Secret(sec.Name)
	if err != nil {
		return err
	}
	pp := describeProvider(sc)
	p, err := a.engine.PlanRotate(s)
	var ipe *rotation.InProgressError
	if errors.As(err, &ipe) {
		fmt.Fprintf(out, "%s: busy: %s %s (last step %s) is held by %s until %s; rotate would change nothing and exit %d\n",
			sec.Name, opName(ipe.Kind), ipe.ID, stepOrStart(ipe.Step), ipe.Holder, ipe.LeaseExpiresAt.UTC().Format(time.RFC3339), exitCode(err))
	}
	if err != nil {
		return fmt.Errorf("dry run: rotate would stop: %w", err)
	}
	if r := p.Resume; r != nil {
		fmt.Fprintf(out, "%s: would rotate: resume %s %s after step %s (its lease, held by %s until %s, is no longer live)\n",
			sec.Name, opName(r.OpKind()), r.ID, stepOrStart(r.Step), orNobody(r.Holder), r.LeaseExpiresAt.UTC().Format(time.RFC3339))
		return nil
	}
	if r := p.Interrupted; r != nil {
		fmt.Fprintf(out, "%s: would first finish the interrupted %s %s\n", sec.Name, r.OpKind(), r.ID)
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
	msg := src + "; test it with the issuer; promote"
	if s.Current != nil {
		msg += fmt.Sprintf(" (current %s becomes previous until %s)", s.Current.ID, now.Add(sec.Grace).Format(time.RFC3339))
	}
	fmt.Fprintf(out, "%s: would rotate: %s; reload; verify; finish\n", sec.Name, msg)
	printHooks(out, sc, "after promote")
	fmt.Fprintf(out, "%s:   on a failed reload or verify: roll back to %s\n", sec.Name, orNone(store.KeyID(s.Current)))
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

// planRollback prints what rolling sec back would do, and returns the
// error the rollback would refuse with.
func (a *app) planRollback(out io.Writer, sec rotation.Secret, s *store.Secret) error {
	sc, err := a.cfg.Secret(sec.Name)
	if err != nil {
		return err
	}
	p, err := a.engine.PlanRollback(sec, s)
	if err != nil {
		return fmt.Errorf("dry run: rollback would refuse: %w", err)
	}
	if r := p.Interrupted; r != nil {
		fmt.Fprintf(out, "%s: would first finish the interrupted %s %s (key %s)\n", sec.Name, r.OpKind(), r.ID, orNone(r.KeyID))
	}
	if r := p.Resume; r != nil {
		fmt.Fprintf(out, "%s: would resume rollback %s after step %s (reason: %s)\n", sec.Name, r.ID, stepOrStart(r.Step), r.Reason)
		printHooks(out, sc, "after the restored key is current")
		return nil
	}
	aside := "set aside for revocation (revoke it with `rotor revoke " + sec.Name + "`)"
	if p.KeepAsPrevious {
		aside = "kept as previous (keep_failed_as_previous)"
	}
	fmt.Fprintf(out, "%s: would roll back: test previous key %s with provider %s; make it current; current %s %s; reload; verify; finish\n",
		sec.Name, p.Restore, sc.Provider, p.SetAside, aside)
	printHooks(out, sc, "after the restored key is current")
	if exp := s.Previous.IssuerExpiresAt(); !exp.IsZero() {
		fmt.Fprintf(out, "%s:   the issuer deletes key %s at %s: rotate before then\n", sec.Name, p.Restore, exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// planRevoke prints what revoking sec's keys would do, and returns the
// errors revoke would refuse with.
func (a *app) planRevoke(ctx context.Context, out io.Writer, sec rotation.Secret, s *store.Secret, opts rotation.RevokeOptions) error {
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
		fmt.Fprintf(out, "%s: would first finish the interrupted %s %s\n", sec.Name, r.OpKind(), r.ID)
	}
	if r := p.Interrupted; r != nil && r.OpKind() == store.OpRevoke {
		fmt.Fprintf(out, "%s: would finish revoking key %s (interrupted revoke %s): %s\n", sec.Name, r.KeyID, r.ID, pp.revoke)
	}
	for _, id := range p.Finish {
		fmt.Fprintf(out, "%s: would finish revoking key %s (marked revoking by an interrupted run): %s%s\n", sec.Name, id, pp.revoke, dashboardHint(sc, findKey(s, id)))
	}
	for _, id := range p.Revoke {
		forced := ""
		if k := findKey(s, id); k != nil && !k.Expired(a.now()) {
			forced = " (forced before its grace period ends; audited as forced)"
		}
		fmt.Fprintf(out, "%s: would revoke key %s%s: %s%s\n", sec.Name, id, forced, pp.revoke, dashboardHint(sc, findKey(s, id)))
	}
	if opts.ExpiredOnly {
		for _, id := range p.Waiting {
			fmt.Fprintf(out, "%s: would skip key %s: still within grace\n", sec.Name, id)
		}
	}
	if p.Interrupted == nil && len(p.Finish)+len(p.Revoke)+len(p.Refused) == 0 && !opts.ExpiredOnly {
		fmt.Fprintf(out, "%s: nothing to revoke\n", sec.Name)
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
