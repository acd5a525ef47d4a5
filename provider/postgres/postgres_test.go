package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/internal/pgtest"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// srv is the real PostgreSQL cluster every test here shares; tests keep
// apart by role names derived from their names.
var srv *pgtest.Server

func TestMain(m *testing.M) {
	s, stop, err := pgtest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

const adminEnv = "TEST_PG_ADMIN_URL"

// testConnectTimeout is generous: a busy 2-core machine can take seconds to
// accept a loopback connection, and a timeout here is a flaky test.
const testConnectTimeout = 2 * time.Minute

// names returns a short prefix unique to t, for role names.
func names(t *testing.T) string {
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	return fmt.Sprintf("t%08x", h.Sum32())
}

// fixture creates a group role owning a table, for login roles to share.
type fixture struct {
	group string
	table string
}

func newFixture(t *testing.T, group string) fixture {
	t.Helper()
	g := pgx.Identifier{group}.Sanitize()
	table := pgx.Identifier{group + "_data"}.Sanitize()
	srv.Exec(t, "CREATE ROLE "+g+" NOLOGIN")
	srv.Exec(t, "CREATE TABLE "+table+" (n int)")
	srv.Exec(t, "GRANT SELECT, INSERT ON "+table+" TO "+g)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, srv.SuperURL())
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
		rows, _ := conn.Query(ctx, "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = $1", group)
		members, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, r := range append(members, group) {
			_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
		}
	})
	return fixture{group: group, table: table}
}

// options returns alternating-users options for the fixture's group,
// rotor creating the login roles from the template.
func (f fixture) options() Options {
	return Options{URL: srv.BaseURL("postgres"), TemplateRole: f.group, AdminURLEnv: adminEnv, ConnectTimeout: testConnectTimeout}
}

func newProvider(t *testing.T, o Options, admin string) *Provider {
	t.Helper()
	p, err := New("db", o, WithGetenv(func(k string) string {
		if k == adminEnv {
			return admin
		}
		return ""
	}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// query runs SELECT count(*) on the fixture's table as the key's role,
// proving the key works for the application, not only for SELECT 1.
func query(ctx context.Context, dsn, table string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var n int
	return conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
}

// TestProviderScenarios runs the engine's provider scenarios against the
// real server, for both strategies.
func TestProviderScenarios(t *testing.T) {
	t.Run("alternating_users", func(t *testing.T) {
		rotationtest.RunProvider(t, rotationtest.ProviderCase{
			New: func(t *testing.T) provider.Provider {
				return newProvider(t, newFixture(t, names(t)).options(), srv.SuperURL())
			},
		})
	})
	t.Run("single_user", func(t *testing.T) {
		rotationtest.RunProvider(t, rotationtest.ProviderCase{
			New: func(t *testing.T) provider.Provider {
				f := newFixture(t, names(t))
				role := f.group + "_app"
				srv.Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN IN ROLE "+pgx.Identifier{f.group}.Sanitize())
				o := Options{Strategy: SingleUser, URL: srv.BaseURL("postgres"), Roles: []string{role}, AdminURLEnv: adminEnv, ConnectTimeout: testConnectTimeout}
				return newProvider(t, o, srv.SuperURL())
			},
			SingleCredential: true,
		})
	})
}

// engine returns an engine on a fresh in-memory store.
func engine() (*rotation.Engine, store.Store, *rotationtest.Clock) {
	st := memstore.New()
	clock := rotationtest.NewClock()
	return &rotation.Engine{Store: st, Salt: []byte("salt"), Initiator: "user:test", Now: clock.Now}, st, clock
}

func secretOf(p provider.Provider) rotation.Secret {
	return rotation.Secret{Name: "db", Provider: p, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: time.Minute}
}

// TestGraceAndRevoke walks one alternating cycle against the application's
// table: the previous role keeps working during grace, then stops, while
// the current one never does; a session opened with the old key is ended
// by revoke when terminate_sessions is on.
func TestGraceAndRevoke(t *testing.T) {
	for _, terminate := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminate_sessions=%t", terminate), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, names(t))
			o := f.options()
			o.TerminateSessions = terminate
			p := newProvider(t, o, srv.SuperURL())
			eng, st, clock := engine()
			sec := secretOf(p)
			for range 2 {
				if _, err := eng.Rotate(ctx, sec); err != nil {
					t.Fatal(err)
				}
			}
			s, _, _ := st.Load(ctx, "db")
			if s.Current.Meta[MetaRole] == s.Previous.Meta[MetaRole] {
				t.Fatalf("current and previous both use role %s", s.Current.Meta[MetaRole])
			}
			for _, k := range []*store.Key{s.Current, s.Previous} {
				if err := query(ctx, k.Value, f.table); err != nil {
					t.Fatalf("key %s during grace: %v", k.ID, err)
				}
			}
			old, err := pgx.Connect(ctx, s.Previous.Value)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close(ctx)
			clock.Advance(25 * time.Hour)
			if _, err := eng.Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true}); err != nil {
				t.Fatal(err)
			}
			if err := p.Test(ctx, s.Previous.Value); !errors.Is(err, provider.ErrRejected) {
				t.Fatalf("revoked key: test = %v, want rejected", err)
			}
			if err := query(ctx, s.Current.Value, f.table); err != nil {
				t.Fatalf("current after revoke: %v", err)
			}
			var one int
			err = old.QueryRow(ctx, "SELECT 1").Scan(&one)
			if terminate && err == nil {
				t.Fatal("a session of the revoked role survived terminate_sessions")
			}
			if !terminate && err != nil {
				t.Fatalf("a session of the revoked role was ended without terminate_sessions: %v", err)
			}
		})
	}
}

// TestRotateRefusedWhilePreviousInGrace: a third rotation within the grace
// period would take the previous role; it is refused with a message that
// says what to do, and nothing changes.
func TestRotateRefusedWhilePreviousInGrace(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, newFixture(t, names(t)).options(), srv.SuperURL())
	eng, st, _ := engine()
	sec := secretOf(p)
	for range 2 {
		if _, err := eng.Rotate(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	before, _, _ := st.Load(ctx, "db")
	_, err := eng.Rotate(ctx, sec)
	if err == nil || !strings.Contains(err.Error(), "still serves the previous key") || !strings.Contains(err.Error(), "rotor revoke db") {
		t.Fatalf("rotate within grace = %v, want a refusal naming rotor revoke", err)
	}
	after, _, _ := st.Load(ctx, "db")
	if after.Current.Value != before.Current.Value || after.Rotation != nil || after.Pending != nil {
		t.Fatal("refused rotation changed the secret")
	}
	if err := p.Test(ctx, before.Previous.Value); err != nil {
		t.Fatalf("previous after the refusal: %v", err)
	}
}

// TestHostileNames rotates roles whose names, and passwords whose
// characters, include quotes, backslashes and non-ASCII letters.
func TestHostileNames(t *testing.T) {
	ctx := context.Background()
	group := names(t) + ` o'Brien "\ ü`
	f := newFixture(t, group)
	o := f.options()
	o.Roles = []string{group + ` 'a'`, group + ` "b"\`}
	o.PasswordAlphabet = `'"\%@:/?#&=+ üéßЖ€ab` // with a space: must be refused
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "password_alphabet") {
		t.Fatalf("alphabet with a space: Validate = %v, want a password_alphabet problem", err)
	}
	o.PasswordAlphabet = `'"\%@:/?#&=+üéßЖ€ab`
	p := newProvider(t, o, srv.SuperURL())
	eng, st, clock := engine()
	sec := secretOf(p)
	for range 3 {
		if _, err := eng.Rotate(ctx, sec); err != nil {
			t.Fatal(err)
		}
		s, _, _ := st.Load(ctx, "db")
		if err := query(ctx, s.Current.Value, f.table); err != nil {
			t.Fatalf("current key of role %q: %v", s.Current.Meta[MetaRole], err)
		}
		clock.Advance(25 * time.Hour)
		if _, err := eng.Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true}); err != nil {
			t.Fatal(err)
		}
		if s.Previous != nil {
			if err := p.Test(ctx, s.Previous.Value); !errors.Is(err, provider.ErrRejected) {
				t.Fatalf("revoked key: %v", err)
			}
		}
	}
}

// TestAdminWithoutGrant: an admin role without CREATEROLE gets a clear
// error naming the grant, and neither the database nor the secret changes.
func TestAdminWithoutGrant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, names(t))
	good := newProvider(t, f.options(), srv.SuperURL())
	eng, st, _ := engine()
	if _, err := eng.Rotate(ctx, secretOf(good)); err != nil {
		t.Fatal(err)
	}
	before, _, _ := st.Load(ctx, "db")

	weak := f.group + "_weak"
	srv.Exec(t, "CREATE ROLE "+pgx.Identifier{weak}.Sanitize()+" LOGIN PASSWORD 'weak-password'")
	t.Cleanup(func() { srv.Exec(t, "DROP ROLE IF EXISTS "+pgx.Identifier{weak}.Sanitize()) })
	p := newProvider(t, f.options(), srv.URL(weak, "weak-password", ""))
	_, err := eng.Rotate(ctx, secretOf(p))
	if !errors.Is(err, provider.ErrNotApplied) || !strings.Contains(err.Error(), "CREATEROLE") || !strings.Contains(err.Error(), "rotor policy postgres") {
		t.Fatalf("rotate without the grant = %v, want ErrNotApplied naming CREATEROLE and rotor policy postgres", err)
	}
	after, _, _ := st.Load(ctx, "db")
	if after.Current.Value != before.Current.Value || after.Pending != nil || after.Rotation != nil {
		t.Fatalf("secret changed: pending=%v rotation=%v", after.Pending, after.Rotation)
	}
	if err := query(ctx, before.Current.Value, f.table); err != nil {
		t.Fatalf("current key after the refused rotation: %v", err)
	}
	var n int
	conn, _ := pgx.Connect(ctx, srv.SuperURL())
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", f.group+"_b").Scan(&n); err != nil || n != 0 {
		t.Fatalf("role %s_b exists (%d, %v): the refused rotation created it", f.group, n, err)
	}
}

// TestPolicyGrantsSuffice applies what Policy prints for this server's
// version to a fresh admin role, and rotates, revokes and terminates
// sessions with it: the grants are enough, and SUPERUSER is not among them.
func TestPolicyGrantsSuffice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, names(t))
	admin := f.group + ` rotor "admin"`
	o := f.options()
	o.TerminateSessions = true
	o = o.WithDefaults()
	sql, err := Policy(PolicyOptions{AdminRole: admin, Roles: o.Roles, TemplateRoles: []string{o.TemplateRole}, TerminateSessions: true, ServerVersion: srv.Version})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(line, "--") && strings.Contains(strings.ToUpper(line), "SUPERUSER") {
			t.Fatalf("policy grants SUPERUSER:\n%s", sql)
		}
	}
	srv.Exec(t, sql)
	t.Cleanup(func() { srv.Exec(t, "DROP ROLE IF EXISTS "+pgx.Identifier{admin}.Sanitize()) })
	srv.Exec(t, "ALTER ROLE "+pgx.Identifier{admin}.Sanitize()+" PASSWORD 'admin-password'")
	p := newProvider(t, o, srv.URL(admin, "admin-password", ""))
	eng, _, clock := engine()
	sec := secretOf(p)
	for range 3 {
		if _, err := eng.Rotate(ctx, sec); err != nil {
			t.Fatalf("rotate with the policy's grants: %v\n%s", err, sql)
		}
		clock.Advance(25 * time.Hour)
		if _, err := eng.Revoke(ctx, sec, rotation.RevokeOptions{ExpiredOnly: true}); err != nil {
			t.Fatalf("revoke with the policy's grants: %v\n%s", err, sql)
		}
	}
}

// TestAdminFromSecret reads the admin connection from another secret's
// current value.
func TestAdminFromSecret(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, names(t))
	eng, st, _ := engine()
	if _, err := st.Save(ctx, &store.Secret{Name: "pg-admin", Current: &store.Key{Value: srv.SuperURL(), ID: "admin"}}, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	o := f.options()
	o.AdminURLEnv, o.AdminSecret = "", "pg-admin"
	p, err := New("db", o, WithSecrets(st))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Rotate(ctx, secretOf(p)); err != nil {
		t.Fatal(err)
	}
}

// TestRevokeModes checks what each revoke mode leaves on the role.
func TestRevokeModes(t *testing.T) {
	tests := []struct {
		mode      RevokeMode
		wantLogin bool
	}{
		{RevokePasswordAndNologin, false},
		{RevokePassword, true},
		{RevokeNologin, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, names(t))
			o := f.options()
			o.Revoke = tc.mode
			p := newProvider(t, o, srv.SuperURL())
			eng, st, _ := engine()
			sec := secretOf(p)
			for range 2 {
				if _, err := eng.Rotate(ctx, sec); err != nil {
					t.Fatal(err)
				}
			}
			s, _, _ := st.Load(ctx, "db")
			if _, err := eng.Revoke(ctx, sec, rotation.RevokeOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			if err := p.Test(ctx, s.Previous.Value); !errors.Is(err, provider.ErrRejected) {
				t.Fatalf("revoked key: %v", err)
			}
			var canLogin bool
			conn, _ := pgx.Connect(ctx, srv.SuperURL())
			defer conn.Close(ctx)
			if err := conn.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", s.Previous.Meta[MetaRole]).Scan(&canLogin); err != nil {
				t.Fatal(err)
			}
			if canLogin != tc.wantLogin {
				t.Fatalf("rolcanlogin = %t, want %t", canLogin, tc.wantLogin)
			}
		})
	}
}
