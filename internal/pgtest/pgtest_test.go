package pgtest

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestStartStop starts a cluster, checks that it takes the superuser's
// password and refuses a wrong one, and that Stop removes everything.
func TestStartStop(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	if s.Version < 10 {
		t.Fatalf("server version %d, want a real major version", s.Version)
	}
	conn, err := pgx.Connect(ctx, s.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	conn.Close(ctx)
	_, err = pgx.Connect(ctx, s.URL(Superuser, "wrong", ""))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password: %v, want SQLSTATE 28P01", err)
	}
	s.Stop()
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory still there after Stop: %v", err)
	}
	if _, err := pgx.Connect(ctx, s.SuperURL()); err == nil {
		t.Fatal("server still answers after Stop")
	}
}
