package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/rotation"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the tamper-evident audit log",
		Long: `The audit chain records every rotation step, rollback, revoke, stage and
denied request. With a Vault store it is one chain shared by every actor
(CI runs, admins, daemon replicas), kept in Vault under <prefix>/_audit
(audit.chain: store, the default); with an AWS store it is kept in the
DynamoDB table audit.table (default rotor-audit), which an administrator
creates once with "rotor audit init"; with the file store it is the local
log (audit.chain: file). audit.local: true also keeps a copy of every event
in the local log.`,
	}
	cmd.AddCommand(newAuditInitCmd(g), newAuditTailCmd(g), newAuditVerifyCmd(g), newAuditImportCmd(g))
	return cmd
}

func newAuditInitCmd(g *globals) *cobra.Command {
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create what the audit chain needs (the DynamoDB table with an AWS store)",
		Long: `Init prepares where the audit chain lives, once per deployment, before the
first rotation. With an AWS store it creates the DynamoDB table audit.table
(default rotor-audit) when it is missing: on-demand capacity (PAY_PER_REQUEST),
string partition key pk; it waits until the table is ACTIVE. This needs
dynamodb:CreateTable and dynamodb:DescribeTable, which only the admin policy
of "rotor policy aws" grants; rotations need neither. Enable point-in-time
recovery on the table afterwards. A table that exists is left as it is, so
init can run every time. With a Vault store or the local log there is
nothing to create: the chain is written on first use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, err := config.Load(g.config)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case cfg.Audit.Chain != "store":
				return out.print(w, api.AuditInit{Chain: "file"}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "the audit chain is the local log %s: nothing to create\n", cfg.Audit.Path)
					return err
				})
			case cfg.Store.Type != "awssm" || cfg.Store.AWSSM == nil:
				return out.print(w, api.AuditInit{Chain: cfg.Store.Type}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "the shared audit chain is kept in the %s store: nothing to create\n", cfg.Store.Type)
					return err
				})
			}
			db, err := dynamoBackend(ctx, cfg)
			if err != nil {
				return err
			}
			created, err := db.CreateTable(ctx)
			if err != nil {
				return fmt.Errorf("audit init: %w", err)
			}
			return out.print(w, api.AuditInit{Chain: "dynamodb", Table: cfg.Audit.Table, Created: created}, func(w io.Writer) error {
				if created {
					_, err := fmt.Fprintf(w, "created DynamoDB table %s (on-demand, partition key pk); enable point-in-time recovery on it\n", cfg.Audit.Table)
					return err
				}
				_, err := fmt.Fprintf(w, "DynamoDB table %s exists: nothing to do\n", cfg.Audit.Table)
				return err
			})
		},
	}
	out.register(cmd, "text")
	return cmd
}

func newAuditTailCmd(g *globals) *cobra.Command {
	var (
		n                 int
		out               outputFlag
		secret, initiator string
		since             string
	)
	cmd := &cobra.Command{
		Use:   "tail [-n N] [--secret NAME] [--since 90d] [--initiator PREFIX] [-o json|table]",
		Short: "Show the last audit records, optionally filtered",
		Long: `Tail prints the last N audit records (0: all). --secret keeps the records of
one secret, --since those of the last duration (90d, 12h) or from an RFC 3339
time on, --initiator those whose initiator starts with a prefix (user:ana,
ci:github:acme/). With a filter, tail reads and checks the whole chain.

With -o json it prints JSON Lines: one audit record per line, as the log
keeps them (the records GET /v1/audit answers), for jq -c.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			f := audit.Filter{Secret: secret, Initiator: initiator}
			if since != "" {
				if f.Since, err = audit.ParseSince(since, a.now()); err != nil {
					return usagef("audit tail: --since: %v", err)
				}
			}
			var recs []audit.Record
			if f == (audit.Filter{}) {
				recs, err = a.audit.Tail(cmd.Context(), n)
			} else {
				recs, err = a.audit.Query(cmd.Context(), f, n)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.json() {
				enc := json.NewEncoder(w)
				for _, r := range recs {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tINITIATOR\tACTION\tSECRET\tKEY ID\tSTATUS\tDETAIL")
			for _, r := range recs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Timestamp.UTC().Format(time.RFC3339),
					printable(r.Initiator), printable(r.Action), dash(printable(r.Secret)), dash(r.KeyID), r.Status, printable(r.Detail))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "number of records (0: all)")
	out.register(cmd, "table")
	cmd.Flags().StringVar(&secret, "secret", "", "only records about this secret")
	cmd.Flags().StringVar(&since, "since", "", "only records of the last duration (90d, 12h) or since an RFC 3339 time")
	cmd.Flags().StringVar(&initiator, "initiator", "", "only records whose initiator starts with this prefix")
	return cmd
}

// printable replaces control characters, so a record cannot drive the
// terminal that shows it.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// rate formats n per d as a whole number per second.
func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/d.Seconds(), 'f', 0, 64)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	var open bool
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "verify [--open]",
		Short: "Check the audit hash chain and its anchor (exit 5 when broken)",
		Long: `Verify walks the whole audit chain and checks every record's keyed hash
against the one before, and the last record against the anchor kept apart
from the log (the chain head, for the chain shared through Vault). It detects modified, deleted, reordered and inserted records
and a truncated or deleted log, and exits 5 when it finds any. It reads the
log as a stream, in constant memory, and prints how fast it went.

It then checks every configured secret in the store against the chain
(package binding): a stored state older than the last save the chain
records, one whose seal is not its own, one saved after a chain record the
chain no longer holds, and a secret deleted from the store after the chain
recorded saves of it all exit 5.

--open also lists the operations (rotations, rollbacks, revokes, stages)
that have records but no terminal one: still running, or interrupted and
not yet resumed. Running rotor again on the secret (rotate, rollback or
revoke, or a daemon tick) resumes or closes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			start := time.Now()
			rep, err := a.audit.Verify(cmd.Context())
			if err != nil {
				return err
			}
			took := time.Since(start)
			doc := api.AuditVerify{OK: true, Chain: "file", Records: rep.Records, Head: rep.Head, OpenOperations: []api.OpenOperation{}}
			what := "audit log ok"
			if w, ok := unwrap(a.audit).(interface{ Where() string }); ok {
				what = "audit chain ok (" + w.Where() + ")"
				doc.Chain = w.Where()
			}
			// The chain's verdict first: it stands even if the store then
			// fails to match it.
			if !out.json() {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d records, head %s\n", what, rep.Records, rep.Head)
				fmt.Fprintf(cmd.OutOrStdout(), "verified in %s (%s records/s)\n", took.Round(time.Millisecond), rate(rep.Records, took))
			}
			n, err := binding.Verify(cmd.Context(), a.store, a.names(), a.audit.Saves(), a.salt)
			if err != nil {
				return fmt.Errorf("the store does not match the audit chain: %w", err)
			}
			doc.StoreSecrets = n
			var ops []rotation.OpenOperation
			if open {
				if ops, err = openOperations(cmd.Context(), a.audit); err != nil {
					return err
				}
			}
			for _, op := range ops {
				doc.OpenOperations = append(doc.OpenOperations, api.OpenOperation{Secret: op.Secret, ID: op.ID,
					Action: op.First.Action, StartedSeq: op.First.Seq, StartedAt: op.First.Timestamp.UTC(), Initiator: op.First.Initiator,
					LastSeq: op.Last.Seq, LastAction: op.Last.Action, LastStatus: op.Last.Status})
			}
			return out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
				fmt.Fprintf(w, "store ok: %d stored secrets match the audit chain\n", n)
				if !open {
					return nil
				}
				fmt.Fprintf(w, "%d operations without a terminal record\n", len(ops))
				for _, op := range ops {
					fmt.Fprintf(w, "open: %s %s %s started seq %d %s by %s, last seq %d %s %s\n",
						printable(op.Secret), printable(op.ID), printable(op.First.Action), op.First.Seq,
						op.First.Timestamp.UTC().Format(time.RFC3339), printable(op.First.Initiator),
						op.Last.Seq, printable(op.Last.Action), op.Last.Status)
				}
				return nil
			})
		},
	}
	out.register(cmd, "text")
	cmd.Flags().BoolVar(&open, "open", false, "also list operations without a terminal record")
	return cmd
}

// openOperations reads the whole chain and returns its operations without
// a terminal record (see [rotation.OpenOperations]).
func openOperations(ctx context.Context, t trail) ([]rotation.OpenOperation, error) {
	recs, err := t.Tail(ctx, 0)
	if err != nil {
		return nil, err
	}
	in := make([]rotation.AuditRecord, len(recs))
	for i, r := range recs {
		in[i] = rotation.AuditRecord{Seq: r.Seq, Timestamp: r.Timestamp, Initiator: r.Initiator,
			Action: r.Action, Secret: r.Secret, Status: r.Status, Detail: r.Detail}
	}
	return rotation.OpenOperations(in), nil
}

func newAuditImportCmd(g *globals) *cobra.Command {
	var from, anchor string
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "import [--from LOG] [--anchor HEAD]",
		Short: "Move a local audit log into the shared chain",
		Long: `Import verifies a local audit log (by default audit.path with its anchor
audit.anchor) and appends its records, in order, to the shared audit chain
(audit.chain: store), followed by an audit.import record that names the old
log's last seq and hash. Each imported record keeps its initiator, action,
secret, key id and status; its detail starts with its old seq and time. Keep
the old log: with the salt, anyone can check it against the head the import
record names. A log that does not verify is refused (exit 5), and so is a log
whose head was imported before.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := g.open(ctx)
			if err != nil {
				return err
			}
			sh, ok := unwrap(a.audit).(*sharedTrail)
			if !ok {
				return usagef("audit import: the audit chain is the local log (audit.chain: file); there is no shared chain to import into")
			}
			if from == "" {
				from, anchor = a.cfg.Audit.Path, a.cfg.Audit.Anchor
			}
			if anchor == "" {
				return usagef("audit import: --anchor is required with --from")
			}
			if _, err := os.Stat(from); err != nil {
				return fmt.Errorf("audit import: %w", err)
			}
			old, err := audit.Open(from, anchor, a.salt)
			if err != nil {
				return fmt.Errorf("audit import: %w", err)
			}
			rep, err := old.Verify(ctx)
			if err != nil {
				return fmt.Errorf("audit import: %s does not verify: %w", from, err)
			}
			prior, err := sh.Query(ctx, audit.Filter{}, 0)
			if err != nil {
				return fmt.Errorf("audit import: %w", err)
			}
			for _, r := range prior {
				if r.Action == audit.ActionImport && strings.Contains(r.Detail, rep.Head) {
					return fmt.Errorf("audit import: the log with head %s was imported before, at seq %d of the shared chain", rep.Head, r.Seq)
				}
			}
			recs, err := old.Tail(ctx, 0)
			if err != nil {
				return fmt.Errorf("audit import: %w", err)
			}
			host, _ := os.Hostname()
			origin := host + ":" + from
			events := make([]audit.Event, 0, len(recs)+1)
			for _, r := range recs {
				e := r.Event
				e.Detail = fmt.Sprintf("imported seq %d of %s, %s: %s", r.Seq, origin, r.Timestamp.UTC().Format(time.RFC3339Nano), r.Detail)
				events = append(events, e)
			}
			events = append(events, audit.Event{
				Initiator: g.initiatorName(), Action: audit.ActionImport, Status: audit.StatusSucceeded,
				Detail: fmt.Sprintf("imported %d records of %s; its last record is seq %d with hash %s", rep.Records, origin, rep.Records, rep.Head),
			})
			// Straight into the chain: a local copy would copy the log
			// into itself.
			written, err := sh.Shared.AppendAll(ctx, events)
			if err != nil {
				return fmt.Errorf("audit import: %w", err)
			}
			last := written[len(written)-1]
			doc := api.AuditImport{From: from, Records: rep.Records, FirstSeq: written[0].Seq, LastSeq: last.Seq - 1, LinkSeq: last.Seq, OldHead: rep.Head}
			return out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "imported %d records of %s into the shared chain (seq %d to %d); seq %d links the old head %s\n",
					rep.Records, from, doc.FirstSeq, doc.LastSeq, doc.LinkSeq, rep.Head)
				return err
			})
		},
	}
	out.register(cmd, "text")
	cmd.Flags().StringVar(&from, "from", "", "the local log to import (default: audit.path)")
	cmd.Flags().StringVar(&anchor, "anchor", "", "its anchor (default: audit.anchor)")
	return cmd
}
