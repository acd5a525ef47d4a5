package zerodowntime

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor/internal/pgtest"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/keyring/pgxkeyring"
	"github.com/rotor-dev/rotor/store/file"
	"github.com/rotor-dev/rotor/storesource"
)

// ModePostgres rotates a PostgreSQL password (provider postgres,
// alternating users) under the query load of a pgx pool built with
// keyring/pgxkeyring, polling the store. It runs with [RunPostgres].
const ModePostgres = "postgres"

// pgSecret is the secret RunPostgres rotates.
const pgSecret = "app-db"

// RunPostgres is the proof for database passwords. A throw-away PostgreSQL
// cluster (internal/pgtest) holds a table the application role may read;
// rotor's admin connection is a role with exactly the grants `rotor policy
// postgres` prints. An in-process application keeps a pgx pool (connections
// recycled every few hundred milliseconds, so that new logins happen all the
// time) busy with queries while the rotor CLI rotates the password o.Rotations
// times. Each rotation is verified through the application's health endpoint
// (it reports the new key id) and followed by a revoke of the previous role
// (a new random password and NOLOGIN) after its grace period, which
// ROTOR_CLOCK_SKEW stands in for. Result.Requests counts queries.
func RunPostgres(ctx context.Context, o Options) (Result, error) {
	if o.Rotations < 1 || o.Workers < 1 {
		return Result{}, errors.New("zerodowntime: need at least one rotation and one worker")
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	srv, stop, err := pgtest.StartMain()
	if err != nil {
		return Result{}, err
	}
	defer stop()
	h := &harness{o: o, logf: logf}
	h.issued = append(h.issued, srv.Password)
	logf("PostgreSQL %d on 127.0.0.1:%d", srv.Version, srv.Port)

	for _, sql := range []string{
		"CREATE ROLE bench_app NOLOGIN",
		"CREATE TABLE bench_data (n int)",
		"INSERT INTO bench_data SELECT generate_series(1, 100)",
		"GRANT SELECT ON bench_data TO bench_app",
	} {
		if err := srv.ExecContext(ctx, sql); err != nil {
			return Result{}, fmt.Errorf("set up: %s: %w", sql, err)
		}
	}
	if _, err := h.rotor(ctx, nil, "init"); err != nil {
		return Result{}, err
	}
	if err := h.writePostgresConfig(srv, ""); err != nil {
		return Result{}, err
	}
	adminURL, err := h.policyAdmin(ctx, srv)
	if err != nil {
		return Result{}, err
	}
	env := []string{"ROTOR_PG_ADMIN_URL=" + adminURL}
	if _, err := h.rotor(ctx, env, "rotate", pgSecret); err != nil {
		return Result{}, err
	}

	app, err := h.startPostgresApp(ctx)
	if err != nil {
		return Result{}, err
	}
	defer app.stop()
	logf("pgx pool app (keyring/pgxkeyring) health on %s, polling the store every %s", app.addr, o.Poll)
	if err := h.writePostgresConfig(srv, "http://"+app.addr+"/healthz"); err != nil {
		return Result{}, err
	}
	res, err := h.drivePostgres(ctx, app, env)
	if err == nil {
		err = h.leakCheck(ctx)
	}
	return res, err
}

func (h *harness) writePostgresConfig(srv *pgtest.Server, consumer string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "secrets:\n  - name: %s\n    provider: postgres\n    env: DATABASE_URL\n    postgres:\n", pgSecret)
	fmt.Fprintf(&b, "      url: %s\n      template_role: bench_app\n      admin_url_env: ROTOR_PG_ADMIN_URL\n      connect_timeout: 2m\n", srv.BaseURL("postgres"))
	if consumer != "" {
		fmt.Fprintf(&b, "    consumers: [%q]\n    consumer_timeout: 60s\n", consumer)
	}
	return os.WriteFile(filepath.Join(h.o.Dir, "rotor.yaml"), []byte(b.String()), 0o644)
}

// policyAdmin creates rotor's admin role from what `rotor policy postgres`
// prints, and returns its connection URL.
func (h *harness) policyAdmin(ctx context.Context, srv *pgtest.Server) (string, error) {
	sql, err := h.rotor(ctx, nil, "policy", "postgres", "--role", "rotor_admin", "--server-version", strconv.Itoa(srv.Version))
	if err != nil {
		return "", err
	}
	if err := srv.ExecContext(ctx, sql); err != nil {
		return "", fmt.Errorf("apply rotor policy postgres: %w", err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	password := hex.EncodeToString(b)
	h.issued = append(h.issued, password)
	// ALTER ROLE takes no bind parameters; the password is hex we made.
	if err := srv.ExecContext(ctx, "ALTER ROLE rotor_admin PASSWORD '"+password+"'"); err != nil {
		return "", err
	}
	return srv.URL("rotor_admin", password, ""), nil
}

// pgApp is the application under load.
type pgApp struct {
	addr string
	kr   *keyring.Keyring
	pool *pgxpool.Pool
	stop func()

	mu      sync.Mutex
	changes map[string]time.Time // key id -> when the keyring adopted it
}

func (h *harness) startPostgresApp(ctx context.Context) (*pgApp, error) {
	st, err := file.New(filepath.Join(h.o.Dir, ".rotor", "store"), filepath.Join(h.o.Dir, ".rotor", "identity.txt"))
	if err != nil {
		return nil, err
	}
	kr, err := keyring.New(ctx, storesource.New(st, pgSecret), keyring.WithInterval(h.o.Poll))
	if err != nil {
		return nil, err
	}
	app := &pgApp{kr: kr, changes: map[string]time.Time{}}
	kr.OnChange(func(_, set keyring.Set) {
		app.mu.Lock()
		app.changes[set.Current.ID] = time.Now()
		app.mu.Unlock()
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopKeyring := kr.Start(runCtx)
	pool, err := pgxkeyring.New(kr).NewPool(ctx, func(c *pgxpool.Config) {
		c.MaxConns = int32(h.o.Workers)
		c.MaxConnLifetime = 300 * time.Millisecond
		c.MaxConnLifetimeJitter = 200 * time.Millisecond
		c.HealthCheckPeriod = 100 * time.Millisecond
		c.ConnConfig.ConnectTimeout = 2 * time.Minute
	})
	if err != nil {
		cancel()
		stopKeyring()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		cancel()
		stopKeyring()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", kr.HealthHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	app.addr, app.pool = ln.Addr().String(), pool
	app.stop = func() {
		srv.Close()
		pool.Close()
		stopKeyring()
		cancel()
	}
	return app, nil
}

func (a *pgApp) adoptedAt(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.changes[id]
	return t, ok
}

func (h *harness) drivePostgres(ctx context.Context, app *pgApp, env []string) (Result, error) {
	start := time.Now()
	var res Result
	var queries, failures atomic.Int64
	var mu sync.Mutex
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for range h.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				var n int
				qctx, cancel := context.WithTimeout(loadCtx, 2*time.Minute)
				err := app.pool.QueryRow(qctx, "SELECT count(*) FROM bench_data").Scan(&n)
				cancel()
				if loadCtx.Err() != nil {
					return
				}
				queries.Add(1)
				if err == nil && n != 100 {
					err = fmt.Errorf("read %d rows, want 100", n)
				}
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if len(res.FailureSamples) < 5 {
						res.FailureSamples = append(res.FailureSamples, err.Error())
					}
					mu.Unlock()
				}
			}
		}()
	}
	var err error
	for i := 1; i <= h.o.Rotations && err == nil; i++ {
		err = h.rotatePostgres(ctx, i, app, env, &res)
	}
	for err == nil && queries.Load() < h.o.MinRequests && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stopLoad()
	wg.Wait()
	res.Requests, res.Failures = queries.Load(), failures.Load()
	res.Elapsed = time.Since(start)
	return res, err
}

// rotatePostgres rotates (verify waits until the app reports the new key),
// then revokes the previous role as a revoke run after the grace period
// does.
func (h *harness) rotatePostgres(ctx context.Context, i int, app *pgApp, env []string, res *Result) error {
	oldID, err := h.rotor(ctx, env, "get", pgSecret)
	if err != nil {
		return err
	}
	promoted, err := h.rotateWatchingPromote(ctx, env, pgSecret)
	if err != nil {
		return err
	}
	newID, err := h.rotor(ctx, env, "get", pgSecret)
	if err != nil {
		return err
	}
	newID = strings.TrimSpace(newID)
	if err := h.collectValues(ctx); err != nil {
		return err
	}
	adopted, ok := app.adoptedAt(newID)
	if !ok {
		return fmt.Errorf("rotation %d: verified, but the app never adopted key %s", i, newID)
	}
	res.Rotations++
	res.Adoption = append(res.Adoption, max(adopted.Sub(promoted), 0))
	skew := append([]string{"ROTOR_CLOCK_SKEW=25h"}, env...)
	if _, err := h.rotor(ctx, skew, "revoke", pgSecret); err != nil {
		return fmt.Errorf("rotation %d: %w", i, err)
	}
	res.Revoked++
	h.logf("rotation %d: %s → %s verified in use, %s revoked (new random password, NOLOGIN)", i, strings.TrimSpace(oldID), newID, strings.TrimSpace(oldID))
	return nil
}

// rotateWatchingPromote runs rotor rotate NAME and returns when it printed
// the promote step.
func (h *harness) rotateWatchingPromote(ctx context.Context, env []string, name string) (time.Time, error) {
	cmd := exec.CommandContext(ctx, h.o.RotorBin, "rotate", name)
	cmd.Dir = h.o.Dir
	cmd.Env = append(os.Environ(), append([]string{"ROTOR_INITIATOR=ci:zerodowntime"}, env...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return time.Time{}, err
	}
	if err := cmd.Start(); err != nil {
		return time.Time{}, err
	}
	var promoted time.Time
	var all strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if promoted.IsZero() && strings.Contains(line, ": promote  ok") {
			promoted = time.Now()
		}
	}
	err = cmd.Wait()
	h.mu.Lock()
	h.transcript.WriteString(all.String() + errb.String())
	h.mu.Unlock()
	if err != nil {
		return time.Time{}, fmt.Errorf("rotor rotate %s: %w: %s", name, err, strings.TrimSpace(errb.String()))
	}
	if promoted.IsZero() {
		return time.Time{}, fmt.Errorf("rotor rotate %s printed no promote step", name)
	}
	return promoted, nil
}

// collectValues adds every value in the store, and the password of every
// connection URL, to what the leak check looks for.
func (h *harness) collectValues(ctx context.Context) error {
	st, err := file.New(filepath.Join(h.o.Dir, ".rotor", "store"), filepath.Join(h.o.Dir, ".rotor", "identity.txt"))
	if err != nil {
		return err
	}
	s, _, err := st.Load(ctx, pgSecret)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range s.Values() {
		h.issued = append(h.issued, v)
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				h.issued = append(h.issued, p)
			}
		}
	}
	return nil
}
