// Package pgtest runs a real, throw-away PostgreSQL cluster for integration
// tests.
//
// # Binaries
//
// initdb and postgres are looked up in $PG_BIN (a directory), then in the
// newest /usr/lib/postgresql/N/bin that Debian's postgresql package
// installs, then on $PATH. A missing server is an error that says how to
// install it, never a skipped test: scripts/test.sh installs it with
// apt-get.
//
// # The cluster
//
// Each [Server] is a cluster of its own, made by initdb in a fresh
// temporary directory, listening on 127.0.0.1 on a free port (and on a
// Unix socket in its directory), with scram-sha-256 password
// authentication for every connection and fsync off (the data is thrown
// away). Its superuser is "postgres" with a random password. PostgreSQL
// refuses to run as root, so when the tests run as root the cluster runs as
// the "postgres" system user that Debian's package creates. The server is
// a child process in a process group of its own; [Server.Stop] shuts it
// down and removes the directory.
//
// # Use
//
// [Start] gives one test its own cluster. Packages with many tests share
// one from TestMain with [StartMain] and keep tests apart by role and
// database names.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/internal/procgroup"
)

// Timeouts. initdb and start-up take a few seconds on a loaded 2-core
// machine; the deadlines only bound how long a broken start hangs.
const (
	readyTimeout = 3 * time.Minute
	stopTimeout  = 30 * time.Second
	startTries   = 3
)

// Superuser is the name of the cluster's superuser.
const Superuser = "postgres"

// Server is a running throw-away PostgreSQL cluster.
type Server struct {
	// Host and Port are where the server listens (127.0.0.1).
	Host string
	Port int
	// Password is the superuser's password.
	Password string
	// Version is the server's major version, e.g. 15.
	Version int

	dir  string
	proc *procgroup.Proc
	stop sync.Once
}

// TB is the part of testing.TB the helpers use; taking it instead of
// testing.TB keeps the testing package out of binaries (rotor-bench) that
// start a cluster with [StartMain].
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start starts a cluster for t and stops it in t.Cleanup.
func Start(t TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartMain starts a cluster to be shared by a package's tests, for use in
// TestMain. The returned function stops it; call it after m.Run.
func StartMain() (*Server, func(), error) {
	s, err := start()
	if err != nil {
		return nil, nil, err
	}
	return s, s.Stop, nil
}

// URL returns a connection URL for user with password to database (default
// postgres), with TLS off: the server listens on loopback only.
func (s *Server) URL(user, password, database string) string {
	if database == "" {
		database = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// BaseURL returns the connection URL of database without a user, the form
// rotor.yaml takes.
func (s *Server) BaseURL(database string) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// SuperURL returns the superuser's connection URL to the postgres database.
func (s *Server) SuperURL() string { return s.URL(Superuser, s.Password, "") }

// Exec runs sql as the superuser and fails t on error.
func (s *Server) Exec(t TB, sql string, args ...any) {
	t.Helper()
	if err := s.ExecContext(context.Background(), sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// ExecContext runs sql as the superuser.
func (s *Server) ExecContext(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, s.SuperURL())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.proc.Log() }

// Stop shuts the server down (fast shutdown, then SIGKILL after
// stopTimeout), waits for it and removes its directory. It is safe to call
// more than once.
func (s *Server) Stop() {
	s.stop.Do(func() {
		s.proc.Stop(syscall.SIGINT, stopTimeout) // SIGINT: fast shutdown
		_ = os.RemoveAll(s.dir)
	})
}

// Binaries returns the directory holding initdb and postgres, or an error
// saying how to install them.
func Binaries() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("PG_BIN"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("PG_BIN=%s holds no initdb and postgres", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return majorOf(b) - majorOf(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); has(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server not found: not in $PG_BIN, not in /usr/lib/postgresql/*/bin, not on $PATH.\n" +
		"Install it (Debian) with: apt-get install -y postgresql (scripts/test.sh does), or point PG_BIN at a bin directory")
}

// majorOf returns N of /usr/lib/postgresql/N/bin, or 0.
func majorOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func start() (*Server, error) {
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	owner, err := clusterOwner()
	if err != nil {
		return nil, err
	}
	var errs []error
	for range startTries {
		s, err := startOnce(bin, owner)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errExited) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errExited = errors.New("postgres exited during start-up")

// clusterOwner returns the credential to run initdb and postgres with: nil
// (the current user) unless that is root.
func clusterOwner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user, and the postgres system user (made by Debian's postgresql package) was not found: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startOnce(bin string, owner *syscall.Credential) (*Server, error) {
	dir, err := os.MkdirTemp("", "rotor-pgtest-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if owner != nil {
		if err := os.Chown(dir, int(owner.Uid), int(owner.Gid)); err != nil {
			return fail(err)
		}
	}
	password, err := randomHex(16)
	if err != nil {
		return fail(err)
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if owner != nil {
		if err := os.Chown(pwfile, int(owner.Uid), int(owner.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: owner}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "max_connections=200",
		"-c", "password_encryption=scram-sha-256")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner}
	proc, err := procgroup.Start(cmd)
	if err != nil {
		return fail(err)
	}
	s := &Server{Host: "127.0.0.1", Port: port, Password: password, dir: dir, proc: proc}
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\npostgres log:\n%s", err, s.Log())
	}
	return s, nil
}

// waitReady connects until the server answers, the process exits, or
// readyTimeout passes.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		conn, err := pgx.Connect(ctx, s.SuperURL())
		if err == nil {
			var v string
			err = conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v)
			conn.Close(ctx)
			if err == nil {
				n, _ := strconv.Atoi(v)
				s.Version = n / 10000
				return nil
			}
		}
		last = err
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("%w (%s)", errExited, s.proc.State())
		case <-ctx.Done():
			return fmt.Errorf("postgres on port %d not ready after %s: %v", s.Port, readyTimeout, last)
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
