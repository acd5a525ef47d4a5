package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/notify"
	"github.com/rotor-dev/rotor/rotation"
)

// This file wires the notify block (Slack, webhooks; package notify). It
// is not server.notify, the push to rotor serve in notify.go.

// openNotifications builds the notifier of the notify block, or returns
// nil when no target is configured. Deliveries are recorded in a's audit
// trail; a serving process (daemon, serve) retries them in the
// background, a command for at most notify.exit_wait before it exits.
func (g *globals) openNotifications(a *app) (*notify.Notifier, error) {
	if len(a.cfg.Notify.Targets) == 0 {
		return nil, nil
	}
	n, err := notify.New(a.cfg.Notify, notify.Deps{
		Getenv: g.env.getenv,
		Audit: func(ctx context.Context, d notify.Delivery) error {
			e := audit.Event{Initiator: d.Event.Initiator, Action: notify.ActionDelivery, Secret: d.Event.Secret,
				KeyID: d.Event.KeyID, Status: audit.StatusSucceeded, Detail: d.Detail()}
			if d.Err != nil {
				e.Status = audit.StatusFailed
			}
			_, err := a.audit.Append(ctx, e)
			return err
		},
		Warnf: func(format string, args ...any) {
			fmt.Fprintf(g.env.stderr, "rotor: warning: "+format+"\n", args...)
		},
		Initiator:   g.initiatorName(),
		LongRunning: g.serving,
		Now:         a.now,
	})
	if err != nil {
		return nil, err
	}
	g.notifier, g.notifyWait = n, a.cfg.Notify.ExitWait
	return n, nil
}

// notifying returns r with notifications about the events it records, when
// notifications are configured.
func (a *app) notifying(r rotation.Recorder, initiator string) rotation.Recorder {
	if a.notifier == nil {
		return r
	}
	return a.notifier.Recorder(r, initiator)
}

// chainChecked notifies the first time a periodic check finds the audit
// chain broken, and again only after a check found it whole.
func (a *app) chainChecked(err error, broken *bool) {
	isBroken := errors.Is(err, audit.ErrChainBroken)
	if a.notifier != nil && isBroken && !*broken {
		a.notifier.Notify(notify.Event{Kind: notify.KindAuditChainBroken, Summary: "audit chain broken: " + err.Error()})
	}
	*broken = isBroken
}

// closeNotifications ends a command's notifications: a command that failed
// because the audit chain is broken says so, then the exit waits for the
// deliveries, for at most notify.exit_wait.
func (g *globals) closeNotifications(ctx context.Context, err error) {
	if g.notifier == nil {
		return
	}
	if errors.Is(err, audit.ErrChainBroken) {
		g.notifier.Notify(notify.Event{Kind: notify.KindAuditChainBroken, Summary: "audit chain broken: " + err.Error()})
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.notifyWait)
	defer cancel()
	g.notifier.Close(cctx)
}

// checkNotifications is rotor doctor's line per notification target: its
// URL variable set and acceptable, its signing key readable. It sends
// nothing: a test message would reach people.
func (d *doctor) checkNotifications(g *globals, cfg *config.Config) {
	for _, t := range cfg.Notify.Targets {
		events := "every event"
		if len(t.Events) > 0 {
			events = strings.Join(t.Events, ", ")
		}
		if t.URLEnv != "" {
			if err := notify.URLEnvProblem(t.URLEnv, g.env.getenv(t.URLEnv)); err != nil {
				d.problem("notify", t.Name, err.Error(), "export "+t.URLEnv+" with the target's URL wherever rotor runs (CI, daemon)")
				continue
			}
		}
		switch {
		case t.SigningKeyFile != "":
			if _, err := os.Stat(t.SigningKeyFile); errors.Is(err, fs.ErrNotExist) {
				break // created on first use
			}
			if _, err := notify.LoadOrCreateKey(t.SigningKeyFile); err != nil {
				d.problem("notify", t.Name, err.Error(), fileHint(err, t.SigningKeyFile))
				continue
			}
		case t.SigningKeyEnv != "":
			if _, err := notify.ParseKey(g.env.getenv(t.SigningKeyEnv)); err != nil {
				d.problem("notify", t.Name, "$"+t.SigningKeyEnv+": "+err.Error(), "")
				continue
			}
		}
		d.ok("notify", t.Name, fmt.Sprintf("%s, %s", t.Type, events))
	}
}
