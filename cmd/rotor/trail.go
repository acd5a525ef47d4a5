package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/vaultchain"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/vault"
)

// trail is the audit chain a command writes and reads: the local log
// (*audit.Log) or the chain shared through the store (*sharedTrail).
type trail interface {
	Append(ctx context.Context, e audit.Event) (audit.Record, error)
	AppendAll(ctx context.Context, es []audit.Event) ([]audit.Record, error)
	Tail(ctx context.Context, n int) ([]audit.Record, error)
	Query(ctx context.Context, f audit.Filter, n int) ([]audit.Record, error)
	Verify(ctx context.Context) (audit.Report, error)
}

var (
	_ trail = (*audit.Log)(nil)
	_ trail = (*sharedTrail)(nil)
)

// openTrail opens the audit chain cfg.Audit.Chain names: the local log,
// or the shared chain in the store's trust domain with, when
// cfg.Audit.Local is set, a copy of every event in the local log.
func openTrail(cfg *config.Config, st store.Store, salt []byte, now func() time.Time, warn io.Writer) (trail, error) {
	openLocal := func() (*audit.Log, error) {
		return audit.Open(cfg.Audit.Path, cfg.Audit.Anchor, salt, audit.WithClock(now))
	}
	if cfg.Audit.Chain != "store" {
		return openLocal()
	}
	vs, ok := st.(*vault.Store)
	if !ok {
		return nil, fmt.Errorf("audit.chain store: the %s store cannot hold the shared audit chain", cfg.Store.Type)
	}
	client, mount, prefix := vs.KV()
	b, err := vaultchain.New(vaultchain.Options{Client: client, Mount: mount, Prefix: prefix})
	if err != nil {
		return nil, err
	}
	sh, err := audit.NewShared(b, salt, audit.WithClock(now))
	if err != nil {
		return nil, err
	}
	t := &sharedTrail{Shared: sh, where: fmt.Sprintf("vault %s", b.Path("")), warn: warn}
	if cfg.Audit.Local {
		if t.local, err = openLocal(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// sharedTrail is the shared chain, with an optional local copy.
type sharedTrail struct {
	*audit.Shared
	where string     // where the chain lives, for people
	local *audit.Log // a copy of every event on this machine; nil when off
	warn  io.Writer
}

// Append implements trail.
func (t *sharedTrail) Append(ctx context.Context, e audit.Event) (audit.Record, error) {
	recs, err := t.AppendAll(ctx, []audit.Event{e})
	if len(recs) == 0 {
		return audit.Record{}, err
	}
	return recs[0], err
}

// AppendAll implements trail. The shared chain decides: the local copy is
// written only once the chain holds the events, and its failure is a
// warning, not a failed operation.
func (t *sharedTrail) AppendAll(ctx context.Context, es []audit.Event) ([]audit.Record, error) {
	recs, err := t.Shared.AppendAll(ctx, es)
	if err == nil && t.local != nil {
		if _, lerr := t.local.AppendAll(ctx, es); lerr != nil {
			fmt.Fprintf(t.warn, "rotor: warning: the local copy of the audit chain was not written: %v\n", lerr)
		}
	}
	return recs, err
}

// Where says where the chain lives.
func (t *sharedTrail) Where() string { return t.where }
