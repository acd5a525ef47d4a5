package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/internal/pgtest"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/file"
)

// The PostgreSQL tests share one throw-away cluster, started by the first
// test that needs it and stopped after all tests (see TestMain).
var pgShared struct {
	once sync.Once
	srv  *pgtest.Server
	stop func()
	err  error
}

func pgServer(t testing.TB) *pgtest.Server {
	t.Helper()
	pgShared.once.Do(func() { pgShared.srv, pgShared.stop, pgShared.err = pgtest.StartMain() })
	if pgShared.err != nil {
		t.Fatal(pgShared.err)
	}
	return pgShared.srv
}

// stopPostgresAfter stops the shared cluster once the tests have run.
type stopPostgresAfter struct{ m *testing.M }

func (s stopPostgresAfter) Run() int {
	code := s.m.Run()
	if pgShared.stop != nil {
		pgShared.stop()
	}
	return code
}

// pgAdminEnv is the environment variable the scripts' rotor.yaml names for
// the admin connection.
const pgAdminEnv = "ROTOR_PG_ADMIN_URL"

// TestPostgresScripts runs the CLI scenarios of testdata/postgres against
// the real server. Each script gets a group role of its own ($PG_GROUP,
// owning table ${PG_GROUP}_data), the database URL ($PG_URL) and the admin
// connection in $ROTOR_PG_ADMIN_URL.
//
// Script commands added here, besides those of TestScripts:
//
//	envsubst FILE        expand $VARS in FILE in place
//	pgconnect NAME SLOT  connect with the value in SLOT of secret NAME and
//	                     read the group's table; fails if it cannot
//	pgexec SQL           run SQL as the superuser
func TestPostgresScripts(t *testing.T) {
	srv := pgServer(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/postgres",
		Setup: func(env *testscript.Env) error {
			if err := setupScript(env); err != nil {
				return err
			}
			group := pgName(env.WorkDir)
			if err := pgFixture(srv, group); err != nil {
				return err
			}
			env.Defer(func() { pgDropFixture(srv, group) })
			env.Setenv("PG_URL", srv.BaseURL("postgres"))
			env.Setenv("PG_GROUP", group)
			env.Setenv(pgAdminEnv, srv.SuperURL())
			st := env.Values[stateKey{}].(*scriptState)
			st.values[srv.Password] = true
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"rotor":     cmdRotor,
			"exitcode":  cmdExitCode,
			"envsubst":  cmdEnvsubst,
			"pgconnect": cmdPgConnect,
			"pgexec": func(ts *testscript.TestScript, neg bool, args []string) {
				err := pgExec(context.Background(), srv, strings.Join(args, " "))
				if (err != nil) != neg {
					ts.Fatalf("pgexec: %v", err)
				}
			},
		},
	})
}

func pgName(testName string) string {
	h := fnv.New32a()
	h.Write([]byte(testName))
	return fmt.Sprintf("cli%08x", h.Sum32())
}

func pgExec(ctx context.Context, srv *pgtest.Server, sql string) error {
	conn, err := pgx.Connect(ctx, srv.SuperURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgFixture makes a group role owning a table, for login roles to share.
func pgFixture(srv *pgtest.Server, group string) error {
	g := pgx.Identifier{group}.Sanitize()
	return pgExec(context.Background(), srv, fmt.Sprintf("CREATE ROLE %s NOLOGIN; CREATE TABLE %s (n int); GRANT SELECT, INSERT ON %s TO %s",
		g, pgx.Identifier{group + "_data"}.Sanitize(), pgx.Identifier{group + "_data"}.Sanitize(), g))
}

// pgDropFixture drops the group, its table and every role rotor made in it.
func pgDropFixture(srv *pgtest.Server, group string) {
	ctx := context.Background()
	_ = pgExec(ctx, srv, "DROP TABLE IF EXISTS "+pgx.Identifier{group + "_data"}.Sanitize())
	for _, r := range []string{group + "_a", group + "_b", group + "_app", group} {
		_ = pgExec(ctx, srv, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
	}
}

func cmdEnvsubst(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: envsubst FILE")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	ts.Check(os.WriteFile(path, []byte(os.Expand(string(b), ts.Getenv)), 0o644))
}

func cmdPgConnect(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: pgconnect NAME SLOT")
	}
	k, err := loadSlot(ts.MkAbs("rotor.yaml"), args[0], args[1])
	if err != nil {
		ts.Fatalf("pgconnect: %v", err)
	}
	err = pgQuery(context.Background(), k.Value, ts.Getenv("PG_GROUP")+"_data")
	if (err != nil) != neg {
		ts.Fatalf("pgconnect %s %s: %v", args[0], args[1], err)
	}
}

// pgQuery connects with dsn and reads table.
func pgQuery(ctx context.Context, dsn, table string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var n int
	return conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n)
}

// loadSlot reads a slot of a secret from the file store cfgPath names.
func loadSlot(cfgPath, name, slot string) (*store.Key, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	fs, err := file.New(cfg.Store.File.Dir, cfg.Store.File.Identity)
	if err != nil {
		return nil, err
	}
	s, _, err := fs.Load(context.Background(), name)
	if err != nil {
		return nil, err
	}
	sl, err := store.ParseSlot(slot)
	if err != nil {
		return nil, err
	}
	k := s.Slot(sl)
	if k == nil {
		return nil, fmt.Errorf("secret %s has no %s key", name, slot)
	}
	return k, nil
}

// passwordOf returns the password of a connection URL, or "".
func passwordOf(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// pgConfig is the rotor.yaml of the process tests: one alternating secret.
func pgConfig(srv *pgtest.Server, group string) string {
	return fmt.Sprintf(`store:
  type: file
secrets:
  - name: db
    provider: postgres
    postgres:
      url: %s
      template_role: %s
      admin_url_env: %s
      connect_timeout: 2m
`, srv.BaseURL("postgres"), group, pgAdminEnv)
}

// TestPostgresCrashAroundAlterRole kills rotor with SIGKILL right after the
// new password was saved as pending (before ALTER ROLE) and right after
// ALTER ROLE (before the step is recorded), then runs it again: the rotation
// resumes and promotes the very password that was saved, which works,
// while the old one keeps working as previous.
func TestPostgresCrashAroundAlterRole(t *testing.T) {
	srv := pgServer(t)
	for _, point := range []string{"prepare", "apply"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			group := pgName(t.Name())
			if err := pgFixture(srv, group); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pgDropFixture(srv, group) })
			env := []string{pgAdminEnv + "=" + srv.SuperURL()}
			var outs []procResult
			outs = append(outs, mustRotor(t, dir, "init"))
			if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(pgConfig(srv, group)), 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(extra ...string) procResult {
				r := rotor(t, dir, append(env, extra...), "rotate", "db")
				outs = append(outs, r)
				return r
			}
			if r := run(); r.code != 0 {
				t.Fatalf("first rotation: exit %d\n%s", r.code, r.stderr)
			}
			cfg := filepath.Join(dir, "rotor.yaml")
			old, err := loadSlot(cfg, "db", "current")
			if err != nil {
				t.Fatal(err)
			}
			crash := run("ROTOR_FAULT=crash-after:" + point)
			if !crash.killed {
				t.Fatalf("rotor was not killed at %s: exit %d\n%s%s", point, crash.code, crash.stdout, crash.stderr)
			}
			pending, err := loadSlot(cfg, "db", "pending")
			if err != nil {
				t.Fatalf("after a kill at %s: %v", point, err)
			}
			again := run()
			if again.code != 0 || !strings.Contains(again.stdout, "resumed and rotated") {
				t.Fatalf("rerun: exit %d\n%s%s", again.code, again.stdout, again.stderr)
			}
			cur, err := loadSlot(cfg, "db", "current")
			if err != nil {
				t.Fatal(err)
			}
			if cur.Value != pending.Value {
				t.Fatalf("current is %s, want the pending key %s saved before the kill", cur.ID, pending.ID)
			}
			ctx := context.Background()
			table := group + "_data"
			if err := pgQuery(ctx, cur.Value, table); err != nil {
				t.Fatalf("the resumed password does not work: %v", err)
			}
			if err := pgQuery(ctx, old.Value, table); err != nil {
				t.Fatalf("the previous password stopped working during grace: %v", err)
			}
			outs = append(outs, mustRotor(t, dir, "audit", "verify"))
			leakCheck(t, dir, outs, passwordOf(cur.Value), passwordOf(old.Value), srv.Password)
		})
	}
}
