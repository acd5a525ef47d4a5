package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/keyring/pgxkeyring"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// These tests exercise the SDK helper keyring/pgxkeyring (a module of its
// own, without a server of its own) against the real server here.

// TestPgxkeyringFallsBackOnRefusedPassword gives the helper a key set whose
// current URL the server refuses (28P01) and whose previous one works: a
// single connection, a pool and database/sql all end up on previous; once
// the current one works, the pool goes back to it.
func TestPgxkeyringFallsBackOnRefusedPassword(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, names(t))
	p := newProvider(t, f.options(), srv.SuperURL())
	eng, st, _ := engine()
	if _, err := eng.Rotate(ctx, secretOf(p)); err != nil {
		t.Fatal(err)
	}
	s, _, _ := st.Load(ctx, "db")
	good := keyring.Key{Value: s.Current.Value, ID: s.Current.ID}
	// The other role's URL with a password the server has never seen.
	next, err := p.Prepare(ctx, rotationMintRequest(s.Current.Value))
	if err != nil {
		t.Fatal(err)
	}
	refused := keyring.Key{Value: next.Value, ID: "refused"}
	if err := p.Test(ctx, refused.Value); err == nil {
		t.Fatal("the unapplied key logs in")
	}
	kr, err := keyring.New(ctx, keyring.StaticSource(keyring.Set{Current: refused, Previous: &good}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := pgxkeyring.New(kr, pgxkeyring.WithRecheck(time.Hour), pgxkeyring.WithClock(func() time.Time { return now }))

	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatalf("Connect with a refused current and a good previous: %v", err)
	}
	conn.Close(ctx)

	pool, err := c.NewPool(ctx, func(cfg *pgxpool.Config) { cfg.MaxConns = 2 })
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var user string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != s.Current.Meta[MetaRole] {
		t.Fatalf("pool: user %q, %v; want the previous key's role %s", user, err, s.Current.Meta[MetaRole])
	}

	db, err := c.OpenDB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT current_user").Scan(&user); err != nil || user != s.Current.Meta[MetaRole] {
		t.Fatalf("database/sql: user %q, %v; want %s", user, err, s.Current.Meta[MetaRole])
	}

	// The server learns the new password; after the recheck interval new
	// connections use current again.
	if err := p.Apply(ctx, storeKey(next.Value)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	pool.Reset()
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != next.Meta[MetaRole] {
		t.Fatalf("pool after the server accepted current: user %q, %v; want %s", user, err, next.Meta[MetaRole])
	}
}

// TestPgxkeyringNoFallbackWithoutPrevious: with no valid previous key a
// refused current is reported as refused.
func TestPgxkeyringNoFallbackWithoutPrevious(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, names(t))
	p := newProvider(t, f.options(), srv.SuperURL())
	next, err := p.Prepare(ctx, rotationMintRequest(""))
	if err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "CREATE ROLE "+quoteIdent(next.Meta[MetaRole])+" LOGIN IN ROLE "+quoteIdent(f.group))
	kr, err := keyring.New(ctx, keyring.StaticSource(keyring.Set{Current: keyring.Key{Value: next.Value, ID: "refused"}}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pgxkeyring.New(kr).Connect(ctx)
	if !pgxkeyring.Refused(err) {
		t.Fatalf("Connect = %v, want a refused password", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("timed out instead of being refused")
	}
}

func rotationMintRequest(current string) provider.MintRequest {
	if current == "" {
		return provider.MintRequest{Secret: "db"}
	}
	return provider.MintRequest{Secret: "db", Current: &store.Key{Value: current, ID: "current"}}
}

func storeKey(v string) store.Key { return store.Key{Value: v, ID: "new"} }

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }
