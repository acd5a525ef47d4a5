package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/vault"
)

// keyView is a key as status shows it: never the value.
type keyView struct {
	KeyID     string     `json:"key_id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Source    string     `json:"source,omitempty"`
	// State is "revoking" for a key rotor decided to revoke and whose
	// issuer may already have been asked.
	State string `json:"state,omitempty"`
	// IssuerExpiresAt is when the issuer deletes the key on its own
	// (store.MetaIssuerExpiresAt).
	IssuerExpiresAt *time.Time `json:"issuer_expires_at,omitempty"`
}

// orphanView is a possibly orphaned key at the issuer: what an
// interrupted call may have created, and what the operator must check.
type orphanView struct {
	RequestID string    `json:"request_id"`
	Operation string    `json:"operation"`
	Action    string    `json:"action"`
	At        time.Time `json:"at"`
	Check     string    `json:"check"`
}

type rotationView struct {
	ID             string    `json:"id"`
	Step           string    `json:"step"`
	StartedAt      time.Time `json:"started_at"`
	Initiator      string    `json:"initiator"`
	Holder         string    `json:"holder"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	// Kind is the operation: rotate, rollback, revoke, stage or dismiss.
	Kind string `json:"kind"`
}

type statusView struct {
	Name           string        `json:"name"`
	Provider       string        `json:"provider"`
	Current        *keyView      `json:"current"`
	Previous       *keyView      `json:"previous"`
	Next           *keyView      `json:"next"`
	Pending        *keyView      `json:"pending"`
	Retired        []keyView     `json:"retired"`
	Rotation       *rotationView `json:"rotation"`
	LastRotatedAt  *time.Time    `json:"last_rotated_at"`
	NextRotationAt *time.Time    `json:"next_rotation_at"`
	Due            bool          `json:"due"`
	// ReloadedKeyID is the key the last completed reload gave consumers;
	// it is not revoked until a later reload completes.
	ReloadedKeyID string `json:"reloaded_key_id,omitempty"`
	// Orphans are keys interrupted mints may have left at the issuer.
	Orphans []orphanView `json:"orphans,omitempty"`
	// Warning says what the secret's provider cannot do (e.g. no grace
	// period at the database for postgres single_user).
	Warning string `json:"warning,omitempty"`
}

func viewKey(k *store.Key) *keyView {
	if k == nil {
		return nil
	}
	v := &keyView{KeyID: k.ID, CreatedAt: k.CreatedAt, Source: k.Source, State: string(k.State), IssuerExpiresAt: timePtr(k.IssuerExpiresAt())}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt
		v.ExpiresAt = &t
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newStatusCmd(g *globals) *cobra.Command {
	var output string
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
			if output != "table" && output != "json" {
				return usagef("status: --output must be table or json")
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
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if len(args) == 1 {
					return enc.Encode(views[0])
				}
				return enc.Encode(views)
			}
			printStatusTable(out, views, a.now())
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func (a *app) status(ctx context.Context, names []string) ([]statusView, error) {
	views := make([]statusView, 0, len(names))
	now := a.now().UTC()
	for _, name := range names {
		sec, err := a.secret(name)
		if err != nil {
			return nil, err
		}
		sc, _ := a.cfg.Secret(name)
		s, err := a.loadForStatus(ctx, name)
		if err != nil {
			return nil, err
		}
		v := statusView{
			Name: name, Provider: sc.Provider,
			Current: viewKey(s.Current), Previous: viewKey(s.Previous),
			Next: viewKey(s.Next), Pending: viewKey(s.Pending),
			Retired:        []keyView{},
			LastRotatedAt:  timePtr(s.LastRotatedAt),
			NextRotationAt: timePtr(sec.NextRotation(s)),
			Due:            a.engine.Due(s, sec, now),
			ReloadedKeyID:  s.ReloadedKeyID,
		}
		for _, o := range s.Orphans {
			v.Orphans = append(v.Orphans, orphanView{RequestID: o.RequestID, Operation: o.Operation, Action: o.Action, At: o.At, Check: o.Check})
		}
		if w, ok := sc.ProviderOptions.(interface{ Warning() string }); ok {
			v.Warning = w.Warning()
		}
		for _, k := range s.Retired {
			v.Retired = append(v.Retired, *viewKey(&k))
		}
		if r := s.Rotation; r != nil {
			v.Rotation = &rotationView{ID: r.ID, Step: stepOrStart(r.Step), StartedAt: r.StartedAt,
				Initiator: r.Initiator, Holder: r.Holder, LeaseExpiresAt: r.LeaseExpiresAt, Kind: string(r.OpKind())}
		}
		views = append(views, v)
	}
	return views, nil
}

func printStatusTable(out io.Writer, views []statusView, now time.Time) {
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

func keyCell(k *keyView, now time.Time) string {
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

func rotationCell(r *rotationView) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s after %s (lease %s)", r.Kind, r.ID, r.Step, r.LeaseExpiresAt.UTC().Format(time.RFC3339))
}

func nextCell(v statusView, now time.Time) string {
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
func (a *app) loadForStatus(ctx context.Context, name string) (*store.Secret, error) {
	s, _, err := a.engine.Load(ctx, name)
	d, ok := a.store.(describer)
	if err == nil || !ok || vault.StatusCode(err) != http.StatusForbidden {
		return s, err
	}
	s, _, derr := d.Describe(ctx, name)
	switch {
	case errors.Is(derr, store.ErrNotFound):
		return &store.Secret{Name: name}, nil
	case derr != nil:
		return nil, errors.Join(err, derr)
	}
	return s, nil
}
