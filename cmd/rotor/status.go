package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/vault"
)

func newStatusCmd(g *globals) *cobra.Command {
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show the key ids, expiry and rotation state of each secret",
		Long: `Status shows, per secret, the key ids in each slot (never values), when
previous expires, any operation in progress (rotation, rollback, revoke,
stage) with its step and lease, when the next rotation is due, and keys an
interrupted mint may have left at the issuer ("possibly orphaned"), with
what to check there; dismiss one with revoke NAME --orphan-checked ID.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			names := a.names()
			if len(args) == 1 {
				names = args
			}
			views, err := a.status(cmd.Context(), names)
			if err != nil {
				return err
			}
			var doc any = views
			if len(args) == 1 {
				doc = views[0]
			}
			return out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
				printStatusTable(w, views, a.now())
				return nil
			})
		},
	}
	out.register(cmd, "table")
	return cmd
}

func (a *app) status(ctx context.Context, names []string) ([]api.Status, error) {
	views := make([]api.Status, 0, len(names))
	now := a.now().UTC()
	for _, name := range names {
		sec, err := a.secret(name)
		if err != nil {
			return nil, err
		}
		sc, _ := a.cfg.Secret(name)
		s, ver, err := a.loadForStatus(ctx, name)
		if err != nil {
			return nil, err
		}
		v := api.StatusOf(s)
		v.Name = name
		v.Version = string(ver)
		v.Provider = sc.Provider
		v.NextRotationAt = api.TimeOf(sec.NextRotation(s))
		v.Due = a.engine.Due(s, sec, now)
		if w, ok := sc.ProviderOptions.(interface{ Warning() string }); ok {
			v.Warning = w.Warning()
		}
		views = append(views, v)
	}
	return views, nil
}

func printStatusTable(out io.Writer, views []api.Status, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROVIDER\tCURRENT\tPREVIOUS\tNEXT\tRETIRED\tROTATION\tNEXT ROTATION")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.Name, v.Provider,
			keyCell(v.Current, now), keyCell(v.Previous, now), keyCell(v.Next, now),
			len(v.Retired), rotationCell(v.Rotation), nextCell(v, now))
	}
	tw.Flush()
	for _, v := range views {
		if v.Warning != "" {
			fmt.Fprintf(out, "warning: %s: %s\n", v.Name, v.Warning)
		}
		for _, o := range v.Orphans {
			fmt.Fprintf(out, "warning: %s: possibly orphaned key at the issuer (request %s): %s\n", v.Name, o.RequestID, o.Check)
		}
	}
}

func keyCell(k *api.Key, now time.Time) string {
	if k == nil {
		return "-"
	}
	cell := k.KeyID
	if k.ExpiresAt != nil {
		if !now.Before(*k.ExpiresAt) {
			cell += " (expired)"
		} else {
			cell += fmt.Sprintf(" (until %s)", k.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	if k.IssuerExpiresAt != nil {
		cell += fmt.Sprintf(" (issuer deletes it %s)", k.IssuerExpiresAt.UTC().Format(time.RFC3339))
	}
	return cell
}

func rotationCell(r *api.Operation) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s after %s (lease %s)", r.Kind, r.ID, r.Step, r.LeaseExpiresAt.UTC().Format(time.RFC3339))
}

func nextCell(v api.Status, now time.Time) string {
	switch {
	case v.Due:
		return "due now"
	case v.NextRotationAt == nil:
		return "-"
	}
	return v.NextRotationAt.UTC().Format(time.RFC3339)
}

// describer is a store that can describe a secret without its values, to
// a reader that may not read them (Vault's KV metadata, see
// vault.Store.Describe).
type describer interface {
	Describe(ctx context.Context, name string) (*store.Secret, store.Version, error)
}

// loadForStatus loads name, or, when the store refuses to give a value to
// this identity (a Vault token with the viewer policy), its description.
func (a *app) loadForStatus(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	s, ver, err := a.engine.Load(ctx, name)
	d, ok := a.store.(describer)
	if err == nil || !ok || vault.StatusCode(err) != http.StatusForbidden {
		return s, ver, err
	}
	s, ver, derr := d.Describe(ctx, name)
	switch {
	case errors.Is(derr, store.ErrNotFound):
		return &store.Secret{Name: name}, store.NoVersion, nil
	case derr != nil:
		return nil, store.NoVersion, errors.Join(err, derr)
	}
	return s, ver, nil
}
