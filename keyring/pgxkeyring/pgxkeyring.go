// Package pgxkeyring connects pgx to a PostgreSQL password that rotor
// rotates: the key set of a [keyring.Keyring] holds connection URLs
// (postgres://ROLE:PASSWORD@host/db, provider postgres), and every new
// connection uses the current one.
//
// # Fallback
//
// A connection that the server refuses with SQLSTATE 28P01 (wrong password)
// is retried once with the previous URL, while it is valid. That covers the
// moments when the application learned the new key before every server it
// connects to did (a replica replaying the ALTER ROLE), and a rollback the
// application has not picked up yet. Established connections are not
// touched: PostgreSQL checks the password only at login, and rotor's
// alternating users keep the previous role working through the grace
// period.
//
// # Pools and database/sql
//
// [Connector.BeforeConnect] is a pgxpool.Config.BeforeConnect (and
// stdlib.OptionBeforeConnect) hook that sets the host, database, user,
// password and TLS settings of the URL to use. A hook cannot retry the
// connection the pool then makes, so the first time it sees a current key
// it logs in with it once to find out whether the server accepts it (one
// extra login per rotation); while the server refuses it, the hook picks the
// previous key and asks again every [WithRecheck] interval. [NewPool] and
// [OpenDB] wire it for you; [Connector.Connect] opens a single connection
// and retries in place.
//
// # Dependencies
//
// This is a module of its own, so that the keyring module stays free of
// pgx: only applications that use pgx import it.
package pgxkeyring

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rotor-dev/rotor/keyring"
)

// DefaultRecheck is how long a refused current key is passed over before
// BeforeConnect tries it again.
const DefaultRecheck = 5 * time.Second

// Option configures a [Connector].
type Option func(*Connector)

// WithRecheck sets how long BeforeConnect keeps using the previous key
// after the server refused the current one (default [DefaultRecheck]).
func WithRecheck(d time.Duration) Option { return func(c *Connector) { c.recheck = d } }

// WithClock sets the clock that decides key expiry and rechecks.
func WithClock(now func() time.Time) Option { return func(c *Connector) { c.now = now } }

// Connector picks the connection URL for new connections from a keyring.
// It is safe for concurrent use.
type Connector struct {
	kr      *keyring.Keyring
	recheck time.Duration
	now     func() time.Time

	mu      sync.Mutex
	checked string    // id of the current key last checked by BeforeConnect
	refused bool      // the server refused it (28P01)
	at      time.Time // when it was checked
}

// New returns a connector over kr, whose keys are connection URLs.
func New(kr *keyring.Keyring, opts ...Option) *Connector {
	c := &Connector{kr: kr, recheck: DefaultRecheck, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
}

// keys returns the current key and the previous one while it is valid.
func (c *Connector) keys() (keyring.Key, *keyring.Key) {
	set := c.kr.Set()
	prev := set.Previous
	if prev != nil && !prev.ExpiresAt.IsZero() && !c.now().Before(prev.ExpiresAt) {
		prev = nil
	}
	return set.Current, prev
}

// Connect opens a connection with the current URL and, if the server
// refuses its password (28P01), once more with the previous one.
func (c *Connector) Connect(ctx context.Context) (*pgx.Conn, error) {
	cur, prev := c.keys()
	conn, err := connect(ctx, cur)
	if err == nil || !Refused(err) || prev == nil {
		return conn, err
	}
	conn, perr := connect(ctx, *prev)
	if perr != nil {
		return nil, errors.Join(err, perr)
	}
	return conn, nil
}

func connect(ctx context.Context, k keyring.Key) (*pgx.Conn, error) {
	cfg, err := configOf(k)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgxkeyring: key %s: %w", k.ID, err)
	}
	return conn, nil
}

// configOf parses a key's URL. The error never quotes it.
func configOf(k keyring.Key) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(k.Value)
	if err != nil {
		return nil, fmt.Errorf("pgxkeyring: key %s is not a PostgreSQL connection URL", k.ID)
	}
	return cfg, nil
}

// BeforeConnect sets cfg to connect with the URL to use now: the current
// one, unless the server refused it (see the package documentation).
func (c *Connector) BeforeConnect(ctx context.Context, cfg *pgx.ConnConfig) error {
	k, err := c.choose(ctx)
	if err != nil {
		return err
	}
	use, err := configOf(k)
	if err != nil {
		return err
	}
	// Host, port, TLS and fallbacks depend on each other: set them all.
	cfg.Host, cfg.Port, cfg.Database = use.Host, use.Port, use.Database
	cfg.User, cfg.Password = use.User, use.Password
	cfg.TLSConfig, cfg.Fallbacks = use.TLSConfig, use.Fallbacks
	for name, v := range use.RuntimeParams {
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		cfg.RuntimeParams[name] = v
	}
	return nil
}

// choose returns the key BeforeConnect uses.
func (c *Connector) choose(ctx context.Context) (keyring.Key, error) {
	cur, prev := c.keys()
	c.mu.Lock()
	known := c.checked == cur.ID
	refused, at := c.refused, c.at
	c.mu.Unlock()
	switch {
	case known && !refused:
		return cur, nil
	case known && prev != nil && c.now().Sub(at) < c.recheck:
		return *prev, nil
	}
	conn, err := connect(ctx, cur)
	if err == nil {
		conn.Close(ctx)
	} else if !Refused(err) {
		return cur, nil // the pool's own attempt reports the real error
	}
	c.mu.Lock()
	c.checked, c.refused, c.at = cur.ID, err != nil, c.now()
	c.mu.Unlock()
	if err != nil && prev != nil {
		return *prev, nil
	}
	return cur, nil
}

// NewPool returns a pgx pool whose connections use the keyring's URL
// through [Connector.BeforeConnect]. configure, if not nil, adjusts the
// pool's config (size, lifetimes, hooks other than BeforeConnect).
func (c *Connector) NewPool(ctx context.Context, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cur, _ := c.keys()
	cfg, err := pgxpool.ParseConfig(cur.Value)
	if err != nil {
		return nil, fmt.Errorf("pgxkeyring: key %s is not a PostgreSQL connection URL", cur.ID)
	}
	if configure != nil {
		configure(cfg)
	}
	cfg.BeforeConnect = c.BeforeConnect
	return pgxpool.NewWithConfig(ctx, cfg)
}

// OpenDB returns a database/sql handle on the pgx stdlib driver whose
// connections use the keyring's URL through [Connector.BeforeConnect].
func (c *Connector) OpenDB() (*sql.DB, error) {
	cur, _ := c.keys()
	cfg, err := configOf(cur)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg, stdlib.OptionBeforeConnect(c.BeforeConnect)), nil
}

// Refused reports whether err is PostgreSQL refusing a password (SQLSTATE
// 28P01).
func Refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28P01"
}
