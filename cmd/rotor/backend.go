package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/storesource"
)

// backend serves the API from the same wiring the CLI uses. Each operation
// runs on its own copy of the engine, with the caller as initiator and a
// lease holder of its own, so two API calls on one secret contend through
// the store exactly like two CLI processes.
type backend struct {
	a *app
}

var (
	_ server.Backend    = (*backend)(nil)
	_ server.Overviewer = (*backend)(nil)
)

func (b *backend) engine(initiator string) *rotation.Engine {
	e := *b.a.engine
	e.Initiator = initiator
	e.Holder = rotation.NewHolder()
	e.Audit = b.a.recorderFor(initiator)
	return &e
}

func (b *backend) secret(name string) (rotation.Secret, error) {
	if _, err := b.a.cfg.Secret(name); err != nil {
		return rotation.Secret{}, fmt.Errorf("%w: %s is not a configured secret", store.ErrNotFound, name)
	}
	return b.a.secret(name)
}

func (b *backend) Names(context.Context) ([]string, error) { return b.a.names(), nil }

func (b *backend) Status(ctx context.Context, name string) (api.Status, error) {
	if _, err := b.secret(name); err != nil {
		return api.Status{}, err
	}
	vs, err := b.a.status(ctx, []string{name})
	if err != nil {
		return api.Status{}, err
	}
	return vs[0], nil
}

// Overview feeds the status page: the stored secret, its provider and
// when the schedule rotates it next.
func (b *backend) Overview(ctx context.Context, name string) (server.Overview, error) {
	sec, err := b.secret(name)
	if err != nil {
		return server.Overview{}, err
	}
	s, _, err := b.a.engine.Load(ctx, name)
	if err != nil {
		return server.Overview{}, err
	}
	cfg, err := b.a.cfg.Secret(name)
	if err != nil {
		return server.Overview{}, err
	}
	return server.Overview{Secret: s, Provider: cfg.Provider, NextRotationAt: sec.NextRotation(s)}, nil
}

func (b *backend) Rotate(ctx context.Context, name, initiator string) (api.Result, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Result{}, err
	}
	res, err := b.engine(initiator).Rotate(ctx, sec)
	return api.ResultOf(res), err
}

func (b *backend) Rollback(ctx context.Context, name, initiator string) (api.Result, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Result{}, err
	}
	res, err := b.engine(initiator).Rollback(ctx, sec)
	return api.ResultOf(res), err
}

func (b *backend) Stage(ctx context.Context, name, value string, meta map[string]string, initiator string) (api.Staged, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Staged{}, err
	}
	id, err := b.engine(initiator).Stage(ctx, sec, value, meta)
	if err != nil {
		return api.Staged{}, err
	}
	return api.Staged{Secret: name, KeyID: id}, nil
}

func (b *backend) Revoke(ctx context.Context, name string, force bool, initiator string) (api.Revoked, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Revoked{}, err
	}
	res, err := b.engine(initiator).Revoke(ctx, sec, rotation.RevokeOptions{Force: force})
	return api.RevokedOf(res), err
}

func (b *backend) KeySet(ctx context.Context, name string) (server.KeySet, error) {
	if _, err := b.secret(name); err != nil {
		return server.KeySet{}, err
	}
	s, ver, err := b.a.engine.Load(ctx, name)
	if err != nil {
		return server.KeySet{}, err
	}
	return server.KeySetOf(s, ver, b.a.now())
}

func (b *backend) Ready(ctx context.Context) error {
	names := b.a.names()
	if len(names) == 0 {
		return errors.New("no secrets configured")
	}
	_, _, err := b.a.engine.Load(ctx, names[0])
	return err
}

// versionedBackend is the backend of a store that tells a secret's version
// from its metadata (Vault's KV metadata, AWS Secrets Manager's
// DescribeSecret): the watch streams' reader polls the version and reads
// the keys only when it moved.
type versionedBackend struct {
	*backend
	v storesource.Versioner
}

var _ server.Versioner = (*versionedBackend)(nil)

func (b *versionedBackend) Version(ctx context.Context, name string) (store.Version, error) {
	if _, err := b.secret(name); err != nil {
		return store.NoVersion, err
	}
	return b.v.Version(ctx, name)
}
