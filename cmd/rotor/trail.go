package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/dynamochain"
	auditsinks "github.com/rotor-dev/rotor/audit/sinks"
	"github.com/rotor-dev/rotor/audit/vaultchain"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/awssm"
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
	// Saves follows the saves the chain records (package binding).
	Saves() *audit.Saves
}

var (
	_ trail = (*audit.Log)(nil)
	_ trail = (*sharedTrail)(nil)
	_ trail = (*shipping)(nil)
)

// openTrail opens the audit chain cfg.Audit.Chain names: the local log,
// or the shared chain in the store's trust domain with, when
// cfg.Audit.Local is set, a copy of every event in the local log.
func openTrail(ctx context.Context, cfg *config.Config, st store.Store, salt []byte, now func() time.Time, warn io.Writer) (trail, error) {
	openLocal := func() (*audit.Log, error) {
		return audit.Open(cfg.Audit.Path, cfg.Audit.Anchor, salt, audit.WithClock(now))
	}
	if cfg.Audit.Chain != "store" {
		return openLocal()
	}
	var (
		b     audit.Backend
		where string
	)
	switch st := st.(type) {
	case *vault.Store:
		client, mount, prefix := st.KV()
		vb, err := vaultchain.New(vaultchain.Options{Client: client, Mount: mount, Prefix: prefix})
		if err != nil {
			return nil, err
		}
		b, where = vb, "vault "+vb.Path("")
	default:
		if cfg.Store.Type != "awssm" || cfg.Store.AWSSM == nil {
			return nil, fmt.Errorf("audit.chain store: the %s store cannot hold the shared audit chain", cfg.Store.Type)
		}
		db, err := dynamoBackend(ctx, cfg)
		if err != nil {
			return nil, err
		}
		b, where = db, db.Where()
	}
	sh, err := audit.NewShared(b, salt, audit.WithClock(now))
	if err != nil {
		return nil, err
	}
	t := &sharedTrail{Shared: sh, where: where, warn: warn}
	if cfg.Audit.Local {
		if t.local, err = openLocal(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// dynamoBackend is the chain of an AWS store: the DynamoDB table
// audit.table, in the store's region and with the SDK's credentials, under
// the store's name prefix.
func dynamoBackend(ctx context.Context, cfg *config.Config) (*dynamochain.Backend, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if r := cfg.Store.AWSSM.Region; r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("audit chain: load AWS configuration: %w", err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		// Tests point the whole store at a local emulator.
		if ep := cfg.Audit.Endpoint; ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	return dynamochain.New(dynamochain.Options{Client: client, Table: cfg.Audit.Table, Prefix: cmp.Or(cfg.Store.AWSSM.Prefix, awssm.DefaultPrefix)})
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

// shipping is a trail whose records are also offered to sinks once the
// chain holds them.
type shipping struct {
	trail
	shippers []*audit.Shipper
}

// unwrap returns the chain under any shipping.
func unwrap(t trail) trail {
	if s, ok := t.(*shipping); ok {
		return s.trail
	}
	return t
}

// Append implements trail.
func (s *shipping) Append(ctx context.Context, e audit.Event) (audit.Record, error) {
	r, err := s.trail.Append(ctx, e)
	if err == nil {
		s.offer([]audit.Record{r})
	}
	return r, err
}

// AppendAll implements trail.
func (s *shipping) AppendAll(ctx context.Context, es []audit.Event) ([]audit.Record, error) {
	recs, err := s.trail.AppendAll(ctx, es)
	s.offer(recs)
	return recs, err
}

func (s *shipping) offer(recs []audit.Record) {
	for _, sh := range s.shippers {
		sh.Offer(recs)
	}
}

// Where says where the chain lives, when it is not the local log.
func (s *shipping) Where() (string, bool) {
	w, ok := s.trail.(interface{ Where() string })
	if !ok {
		return "", false
	}
	return w.Where(), true
}

// shipTimeout bounds how long a command that ends waits for its sinks.
const shipTimeout = 5 * time.Second

// newSink builds the sink c configures, and names it for metrics and
// `rotor doctor`.
func newSink(ctx context.Context, c config.AuditSink, g *globals) (audit.Sink, string, error) {
	switch c.Type {
	case "stdout":
		return &auditsinks.JSONLines{W: g.env.stdout}, "stdout", nil
	case "syslog":
		network := cmp.Or(c.Network, "tcp")
		return &auditsinks.Syslog{Network: network, Addr: c.Address}, "syslog " + network + "://" + c.Address, nil
	case "otlp":
		o, err := auditsinks.NewOTLP(ctx, auditsinks.OTLPOptions{Endpoint: c.Endpoint})
		if err != nil {
			return nil, "", err
		}
		return o, "otlp " + cmp.Or(c.Endpoint, "(OTEL_EXPORTER_OTLP_* environment)"), nil
	}
	return nil, "", fmt.Errorf("audit sink type %q is not known", c.Type)
}

// withSinks starts a shipper for every configured sink and returns the
// trail that feeds them; g closes them when the command ends.
func withSinks(ctx context.Context, t trail, sinks []config.AuditSink, g *globals) (trail, error) {
	if len(sinks) == 0 {
		return t, nil
	}
	s := &shipping{trail: t}
	for i, c := range sinks {
		sink, name, err := newSink(ctx, c, g)
		if err != nil {
			return nil, err
		}
		if len(sinks) > 1 {
			name = fmt.Sprintf("%d %s", i, name)
		}
		sh := audit.NewShipper(name, sink, audit.ShipperOptions{Buffer: c.Buffer})
		s.shippers = append(s.shippers, sh)
		g.sinks = append(g.sinks, sh)
	}
	return s, nil
}
