// Package daemon runs rotor's schedule in a long-lived process: on every
// tick it rotates each secret that is due and revokes keys whose grace
// period is over.
//
// # Replicas
//
// Several daemons may run against one store. They need no coordination of
// their own: a due secret is rotated by whichever replica's lease save wins
// (the store's compare-and-swap); the others get rotation.ErrRotationInProgress
// and, on their next tick, find the secret no longer due. Each due rotation
// therefore happens exactly once.
//
// # Shutdown
//
// When the context passed to [Daemon.Run] is cancelled, the daemon stops
// ticking. A rotation in flight finishes its current step and parks (its
// lease is released and the next run, by any replica, resumes it); a step
// is never cut short, so a shutdown cannot turn into a spurious rollback.
package daemon

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
)

// Daemon runs the schedule.
type Daemon struct {
	Engine *rotation.Engine
	// Secrets returns the managed secrets (from the config).
	Secrets func() ([]rotation.Secret, error)
	// Interval between ticks; default 1m.
	Interval time.Duration
	Log      *slog.Logger

	stop func() bool // set by Run: true once shutdown began
}

func (d *Daemon) stopping() bool { return d.stop != nil && d.stop() }

// Run ticks until ctx is cancelled, then parks any rotation in flight.
func (d *Daemon) Run(ctx context.Context) error {
	stopping := func() bool { return ctx.Err() != nil }
	d.Engine.Stopping = stopping
	d.stop = stopping
	interval := d.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	work := context.WithoutCancel(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.Tick(work)
		select {
		case <-ctx.Done():
			d.log().Info("daemon stopped")
			return nil
		case <-t.C:
		}
	}
}

func (d *Daemon) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// TickResult counts what one tick did.
type TickResult struct {
	Rotated, InProgress, Failed, Revoked int
}

// Tick rotates every due secret and revokes expired keys, once.
func (d *Daemon) Tick(ctx context.Context) TickResult {
	var res TickResult
	secrets, err := d.Secrets()
	if err != nil {
		d.log().Error("load secrets", "err", err)
		return res
	}
	for _, sec := range secrets {
		if d.stopping() {
			return res
		}
		d.tickOne(ctx, sec, &res)
	}
	return res
}

func (d *Daemon) tickOne(ctx context.Context, sec rotation.Secret, res *TickResult) {
	log := d.log().With("secret", sec.Name)
	s, ver, err := d.Engine.Load(ctx, sec.Name)
	if err != nil {
		log.Error("load", "err", err)
		res.Failed++
		return
	}
	now := time.Now()
	if d.Engine.Now != nil {
		now = d.Engine.Now()
	}
	if d.Engine.Due(s, sec, now) {
		r, err := d.Engine.RotateDue(ctx, sec, s, ver, now)
		switch {
		case err == nil:
			res.Rotated++
			log.Info("rotated", "rotation", r.Rotation, "current", r.Current, "resumed", r.Resumed)
		case errors.Is(err, rotation.ErrNotDue):
			// Another replica rotated it since the load.
			log.Info("rotated by another rotator meanwhile")
		case errors.Is(err, rotation.ErrRotationInProgress):
			res.InProgress++
			log.Info("rotation held by another rotator", "err", err)
		case errors.Is(err, provider.ErrCannotMint):
			res.Failed++
			log.Warn("rotation needs an operator", "err", err)
		default:
			res.Failed++
			log.Error("rotation failed", "err", err)
		}
		return
	}
	rr, err := d.Engine.Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true})
	res.Revoked += len(rr.Revoked)
	if err != nil && !errors.Is(err, rotation.ErrRotationInProgress) {
		log.Warn("revoke expired keys", "err", err)
	}
	for _, id := range rr.Revoked {
		log.Info("revoked", "key_id", id)
	}
}
