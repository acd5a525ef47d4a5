package pgxkeyring_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/keyring/pgxkeyring"
)

// A pgx pool on the DATABASE_URL that `rotor run` injects (DATABASE_URL_PRIMARY
// and DATABASE_URL_SECONDARY): new connections use the current URL and fall
// back to the previous one while the server refuses the current password.
func ExampleConnector_NewPool() {
	ctx := context.Background()
	kr, err := keyring.New(ctx, keyring.EnvSource("DATABASE_URL", os.Getenv), keyring.WithInterval(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer kr.Start(ctx)()
	pool, err := pgxkeyring.New(kr).NewPool(ctx, func(c *pgxpool.Config) {
		c.MaxConnLifetime = time.Hour // connections made before a rotation retire within the grace period
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		log.Fatal(err)
	}
}

// database/sql through the pgx stdlib driver.
func ExampleConnector_OpenDB() {
	kr, err := keyring.New(context.Background(), keyring.EnvSource("DATABASE_URL", os.Getenv))
	if err != nil {
		log.Fatal(err)
	}
	db, err := pgxkeyring.New(kr).OpenDB()
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		log.Fatal(err)
	}
}
