// Package zerodowntime is the proof behind rotor's zero-downtime claim: an
// application that needs CLERK_SECRET_KEY serves requests from a load
// generator while rotor rotates the key again and again, revoking each
// previous key at Clerk, and every request must succeed.
//
// Everything is real except Clerk: the rotor CLI (stage, rotate with
// consumer verification, revoke with the consumer guard), the consumer
// (examples/clerk-app under `rotor run --mode signal`, an in-process app
// on the keyring SDK, or the Next.js example on @rotor-dev/keyring under
// `rotor run --mode signal` or fed by rotor serve's watch stream), and
// Clerk's Backend API behaviour reproduced by internal/clerkfake on
// loopback. The secret lives in the file store, or for the push modes in
// any store the caller runs and describes in Options.Store (rotor-bench
// runs a Vault dev server, or the AWS emulators). The test in this package
// runs it small; cmd/rotor-bench runs it at scale and reports the figures.
package zerodowntime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

// Consumer modes.
const (
	// ModeRun runs examples/clerk-app under `rotor run --mode signal`.
	ModeRun = "run"
	// ModeSDK runs an in-process app on the keyring SDK, polling the store.
	ModeSDK = "sdk"
	// ModePush runs an in-process app on the keyring SDK fed by the watch
	// stream of `rotor serve`, and rotates through the API.
	ModePush = "push"
	// ModePushCLI is ModePush with the rotations made by the rotor CLI in
	// another process, as cron or CI would: the push reaches the app
	// because rotor serve watches the file store, or, on another store
	// (Options.Store), because the CLI notifies rotor serve
	// (server.notify) after each save.
	ModePushCLI = "push-cli"
	// ModeNode runs examples/nextjs-app (Next.js on @rotor-dev/keyring)
	// under `rotor run --mode signal`. The app must be built (npm ci,
	// the package's build, next build); see Options.NodeAppDir.
	ModeNode = "node"
	// ModeNodePush runs examples/nextjs-app fed by the watch stream of
	// `rotor serve` (the package's Watcher), and rotates through the API.
	ModeNodePush = "node-push"
)

// Options configures a run.
type Options struct {
	// Mode is ModeRun or ModeSDK.
	Mode string
	// RotorBin is the rotor binary; AppBin the clerk-app binary (run mode).
	RotorBin, AppBin string
	// NodeAppDir is the built examples/nextjs-app (node mode); the
	// repository's node_modules (an npm workspace) must hold Next.js.
	NodeAppDir string
	// Dir is a scratch directory for the config, store and audit log.
	Dir string
	// Rotations is how many rotations (each with revocation) to perform.
	Rotations int
	// Workers is the load generator's concurrency.
	Workers int
	// MinRequests keeps the load going after the last rotation until at
	// least this many requests were made.
	MinRequests int64
	// Poll is how often the consumer (rotor run or the keyring) checks
	// the store.
	Poll time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Store is where rotor keeps the secret; the zero value is the file
	// store in Dir. The push modes (ModePush, ModePushCLI) run on any
	// store; the others read the file store directly and need it.
	Store Store
	// IdleWindow, when positive and Store.Requests is set, is how long
	// the run counts the store's requests after the last rotation (after
	// settling for two seconds, or IdleWindow if shorter), with rotor
	// serve and the app's watcher still running and nothing rotating:
	// what serve's polling costs the store (Result.Idle).
	IdleWindow time.Duration
	// IdleWatchers, when more than one, is how many watch-stream clients
	// the push modes count the idle requests with a second time: the
	// app's watcher and IdleWatchers-1 more, as more instances of the
	// app would be.
	IdleWatchers int
	// WatchInterval, when positive, is rotor serve's store poll
	// (server.watch_interval; rotor's default otherwise). A long one
	// leaves the push of a CLI rotation to inotify or notify alone.
	WatchInterval time.Duration
}

// Store describes a store other than the file store, already running: how
// rotor is configured to use it, and how its requests are counted.
type Store struct {
	// Name names the store in reports, e.g. "vault".
	Name string
	// Block is the store block of rotor.yaml: the lines under "store:",
	// indented by two spaces.
	Block string
	// Audit is lines added under "audit:" (indented by two spaces), e.g.
	// the endpoint of the audit chain's table; empty for none.
	Audit string
	// Env is added to the environment of every rotor process (e.g. the
	// AWS SDK's credentials for an emulator).
	Env []string
	// Requests returns how many requests the store has answered so far;
	// nil when they are not counted.
	Requests func() int64
}

// Result is what a run measured.
type Result struct {
	Requests  int64
	Failures  int64
	Rotations int // rotations completed with consumer verification
	Revoked   int // previous keys revoked at Clerk and cleared
	// Adoption is, per rotation, the time from promote (as rotor printed
	// it) to the consumer reporting the new key id.
	Adoption []time.Duration
	// FailureSamples holds the first few failures, for diagnosis.
	FailureSamples []string
	Elapsed        time.Duration
	// Idle is the store's requests while nothing rotated, with one
	// watcher and then with Options.IdleWatchers; empty when not
	// measured.
	Idle []IdleCount
}

// IdleCount is what the store answered while rotor serve watched the one
// secret and nothing rotated.
type IdleCount struct {
	Watchers int           // watch-stream clients connected to rotor serve
	Requests int64         // requests the store answered in Window
	Window   time.Duration // how long they were counted
}

// PerSecond is Requests per second of Window.
func (c IdleCount) PerSecond() float64 { return float64(c.Requests) / c.Window.Seconds() }

// Run runs the proof with the consumer o.Mode selects.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Rotations < 1 || o.Workers < 1 {
		return Result{}, errors.New("zerodowntime: need at least one rotation and one worker")
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Store.Block != "" && o.Mode != ModePush && o.Mode != ModePushCLI {
		return Result{}, fmt.Errorf("zerodowntime: mode %s runs on the file store only (the store %s is for the push modes)", o.Mode, o.Store.Name)
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	fake := clerkfake.Start()
	defer fake.Close()
	h := &harness{o: o, fake: fake, logf: logf}

	// The secret under rotor, first key issued.
	if _, err := h.rotor(ctx, nil, "init"); err != nil {
		return Result{}, err
	}
	if err := h.writeConfig(""); err != nil {
		return Result{}, err
	}
	if o.Mode == ModePush || o.Mode == ModePushCLI || o.Mode == ModeNodePush {
		if err := h.makeTokens(); err != nil {
			return Result{}, err
		}
		if err := h.writeConfig(""); err != nil {
			return Result{}, err
		}
	}
	h.current = fake.Key()
	h.issued = append(h.issued, h.current)
	if err := h.stage(ctx, h.current); err != nil {
		return Result{}, err
	}
	if _, err := h.rotor(ctx, nil, "rotate", secretName); err != nil {
		return Result{}, err
	}

	// The application, then consumer verification on.
	var addr string
	switch o.Mode {
	case ModeRun:
		app, a, err := h.startApp(ctx)
		if err != nil {
			return Result{}, err
		}
		defer app.stop()
		addr = a
		logf("app listening on %s under rotor run --mode signal", addr)
	case ModePush, ModePushCLI:
		api, apiURL, err := h.startServe(ctx)
		if err != nil {
			return Result{}, err
		}
		defer api.stop()
		h.apiURL = apiURL
		a, stop, err := h.startPushApp(ctx)
		if err != nil {
			return Result{}, err
		}
		defer stop()
		addr = a
		logf("keyring app listening on %s, fed by %s/v1/watch", addr, apiURL)
	case ModeNode:
		app, a, err := h.startNodeApp(ctx)
		if err != nil {
			return Result{}, err
		}
		defer app.stop()
		addr = a
		h.usersPath, h.healthPath = "/api/users", "/api/health"
		logf("Next.js app listening on %s under rotor run --mode signal", addr)
	case ModeNodePush:
		api, apiURL, err := h.startServe(ctx)
		if err != nil {
			return Result{}, err
		}
		defer api.stop()
		h.apiURL = apiURL
		app, a, err := h.startNodePushApp(ctx)
		if err != nil {
			return Result{}, err
		}
		defer app.stop()
		addr = a
		h.usersPath, h.healthPath = "/api/users", "/api/health"
		logf("Next.js app listening on %s, fed by %s/v1/watch", addr, apiURL)
	case ModeSDK:
		a, stop, err := h.startSDKApp(ctx)
		if err != nil {
			return Result{}, err
		}
		defer stop()
		addr = a
		logf("keyring app listening on %s, polling the store every %s", addr, o.Poll)
	default:
		return Result{}, fmt.Errorf("zerodowntime: unknown mode %q", o.Mode)
	}
	if err := h.writeConfig("http://" + addr + h.path(h.healthPath, "/healthz")); err != nil {
		return Result{}, err
	}
	res, err := h.drive(ctx, "http://"+addr)
	if err == nil {
		res.Idle, err = h.idleRequests(ctx)
	}
	if err == nil {
		err = h.leakCheck(ctx)
	}
	return res, err
}

// idleSettle is how long idleRequests lets rotor serve settle before it
// counts: two of serve's default watch intervals (1s), so that the reads
// of the last change (the CLI's revoke, which serve may learn of at its
// next poll) and the audit records of new watch streams (written to the
// store's audit chain on Vault) are not counted as idle.
const idleSettle = 2 * time.Second

// idleRequests counts the store's requests over Options.IdleWindow while
// nothing rotates: rotor serve polling its one watched secret, for the
// app's watcher alone and then, in the push modes, for
// Options.IdleWatchers.
func (h *harness) idleRequests(ctx context.Context) ([]IdleCount, error) {
	if h.o.IdleWindow <= 0 || h.o.Store.Requests == nil {
		return nil, nil
	}
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A window shorter than idleSettle is a smoke run (a test), not a
	// measurement: it settles for as long as it counts.
	settle := min(idleSettle, h.o.IdleWindow)
	count := func(watchers int) (IdleCount, error) {
		if err := wait(settle); err != nil {
			return IdleCount{}, err
		}
		before, start := h.o.Store.Requests(), time.Now()
		if err := wait(h.o.IdleWindow); err != nil {
			return IdleCount{}, err
		}
		c := IdleCount{Watchers: watchers, Requests: h.o.Store.Requests() - before, Window: time.Since(start)}
		h.logf("idle, %d watch stream(s): %d store requests in %s", watchers, c.Requests, c.Window.Round(time.Millisecond))
		return c, nil
	}
	one, err := count(1)
	if err != nil || h.o.IdleWatchers <= 1 || h.apiURL == "" {
		return []IdleCount{one}, err
	}
	stop, err := h.addWatchers(ctx, h.o.IdleWatchers-1)
	if err != nil {
		return nil, err
	}
	defer stop()
	many, err := count(h.o.IdleWatchers)
	return []IdleCount{one, many}, err
}

// leakCheck fails the run if any key value the issuer handed out appears
// in what rotor printed, in the audit log (the local file, and the records
// rotor audit tail shows, wherever the chain lives), or in the logs of
// rotor run, rotor serve and the app.
func (h *harness) leakCheck(ctx context.Context) error {
	if _, err := h.rotor(ctx, nil, "audit", "tail", "-n", "1000", "-o", "json"); err != nil {
		return err
	}
	h.mu.Lock()
	text := h.transcript.String()
	h.mu.Unlock()
	for _, f := range []string{"app.log", "serve.log", filepath.Join(".rotor", "audit.log")} {
		b, err := os.ReadFile(filepath.Join(h.o.Dir, f))
		if err == nil {
			text += string(b)
		}
	}
	for i, v := range h.issued {
		if strings.Contains(text, v) {
			return fmt.Errorf("zerodowntime: key #%d leaked into rotor's output or logs", i)
		}
	}
	return nil
}

const secretName = "clerk-secret-key"

type harness struct {
	o       Options
	fake    *clerkfake.Server
	logf    func(string, ...any)
	current string // the key value rotor has as current

	mu         sync.Mutex
	issued     []string     // every key value the issuer handed out
	transcript bytes.Buffer // everything rotor printed

	// Push mode: the API and its tokens.
	apiURL, ciToken, appToken string
	ciHash, appHash           string

	// The app's endpoints when they are not /users and /healthz.
	usersPath, healthPath string
}

// path returns p, or def when p is empty.
func (h *harness) path(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

func (h *harness) writeConfig(consumer string) error {
	var b strings.Builder
	if h.o.Store.Block != "" {
		b.WriteString("store:\n" + h.o.Store.Block)
	}
	if h.o.Store.Audit != "" {
		b.WriteString("audit:\n" + h.o.Store.Audit)
	}
	fmt.Fprintf(&b, "secrets:\n  - name: %s\n    provider: clerk\n    clerk: {api_url: %q, timeout: 5s}\n", secretName, h.fake.URL())
	if consumer != "" {
		fmt.Fprintf(&b, "    consumers: [%q]\n    consumer_timeout: 30s\n", consumer)
	}
	if h.ciHash != "" {
		fmt.Fprintf(&b, "server:\n  tokens:\n    - {name: bench-ci, role: ci, hash: %q}\n    - {name: bench-app, role: app, secrets: [%s], hash: %q}\n",
			h.ciHash, secretName, h.appHash)
		if h.o.WatchInterval > 0 {
			fmt.Fprintf(&b, "  watch_interval: %s\n", h.o.WatchInterval)
		}
		if h.notifies() && h.apiURL != "" {
			// The CLI tells rotor serve (token in ROTOR_NOTIFY_TOKEN, see
			// cliEnv); serve has read its config before this line exists.
			fmt.Fprintf(&b, "  notify:\n    urls: [%s]\n", h.apiURL)
		}
	}
	return os.WriteFile(filepath.Join(h.o.Dir, "rotor.yaml"), []byte(b.String()), 0o644)
}

// rotor runs the CLI and returns its stdout; a non-zero exit is an error
// carrying stderr (which never holds a key).
func (h *harness) rotor(ctx context.Context, env []string, args ...string) (string, error) {
	out, code, stderr, err := h.rotorCode(ctx, env, args...)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return out, fmt.Errorf("rotor %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	return out, nil
}

// notifies reports whether the CLI's rotations reach rotor serve by
// notify: in push-cli mode on a store serve cannot watch for changes.
func (h *harness) notifies() bool {
	return h.o.Mode == ModePushCLI && h.o.Store.Block != ""
}

// cliEnv is the environment of a rotor CLI command: the bench's, the
// store's, the initiator, the notify token when the CLI notifies, and env.
func (h *harness) cliEnv(env ...string) []string {
	e := append(os.Environ(), h.o.Store.Env...)
	e = append(e, "ROTOR_INITIATOR=ci:zerodowntime")
	if h.notifies() {
		e = append(e, "ROTOR_NOTIFY_TOKEN="+h.ciToken)
	}
	return append(e, env...)
}

func (h *harness) rotorCode(ctx context.Context, env []string, args ...string) (string, int, string, error) {
	cmd := exec.CommandContext(ctx, h.o.RotorBin, args...)
	cmd.Dir = h.o.Dir
	cmd.Env = h.cliEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	h.mu.Lock()
	h.transcript.WriteString(errb.String())
	if len(args) == 0 || args[0] != "get" || !slices.Contains(args, "--reveal") {
		h.transcript.WriteString(out.String())
	}
	h.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), errb.String(), nil
	}
	return out.String(), 0, errb.String(), err
}

func (h *harness) stage(ctx context.Context, key string) error {
	_, err := h.rotor(ctx, []string{"ROTOR_STAGE_KEY=" + key}, "stage", secretName, "--from-env", "ROTOR_STAGE_KEY")
	return err
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startApp starts clerk-app under rotor run and waits for its address.
func (h *harness) startApp(ctx context.Context) (*process, string, error) {
	ready := filepath.Join(h.o.Dir, "app.ready")
	envFile := filepath.Join(h.o.Dir, "app.env")
	cmd := exec.Command(h.o.RotorBin, "run", "--mode", "signal", "--env-file", envFile,
		"--poll", h.o.Poll.String(), "--", h.o.AppBin)
	cmd.Env = append(os.Environ(), "LISTEN=127.0.0.1:0", "READY_FILE="+ready,
		"CLERK_ENV_FILE="+envFile, "CLERK_API_URL="+h.fake.URL())
	return h.startListening(ctx, cmd, "app", ready)
}

// startListening starts cmd in the scratch directory with its output in
// <name>.log, and waits until it writes its listen address to ready.
func (h *harness) startListening(ctx context.Context, cmd *exec.Cmd, name, ready string) (*process, string, error) {
	cmd.Dir = h.o.Dir
	logs, err := os.Create(filepath.Join(h.o.Dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, "", err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logs.Close(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			return p, string(b), nil
		}
		select {
		case <-p.done:
			return nil, "", fmt.Errorf("%s exited before it was ready (see %s)", name, logs.Name())
		case <-ctx.Done():
			p.stop()
			return nil, "", ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("%s not ready after 30s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drive runs the load generator against appURL while it rotates and
// revokes, and returns the measurements.
func (h *harness) drive(ctx context.Context, appURL string) (Result, error) {
	start := time.Now()
	var res Result
	var requests, failures atomic.Int64
	var mu sync.Mutex
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: h.o.Workers}}
	var wg sync.WaitGroup
	for range h.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				err := get(loadCtx, client, appURL+h.path(h.usersPath, "/users"))
				if loadCtx.Err() != nil {
					return
				}
				requests.Add(1)
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
	watch := newAdoptionWatcher(client, appURL+h.path(h.healthPath, "/healthz"))

	var err error
	for i := 1; i <= h.o.Rotations && err == nil; i++ {
		err = h.rotateOnce(ctx, i, watch, &res)
	}
	for err == nil && requests.Load() < h.o.MinRequests && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stopLoad()
	wg.Wait()
	res.Requests, res.Failures = requests.Load(), failures.Load()
	res.Elapsed = time.Since(start)
	return res, err
}

// rotateOnce stages a key created "in the dashboard", rotates (verify
// waits for the consumer to report it), then revokes the previous key the
// way an operator does: rotor names it, the operator deletes it at Clerk,
// rotor confirms Clerk rejects it and clears it.
func (h *harness) rotateOnce(ctx context.Context, i int, watch *adoptionWatcher, res *Result) error {
	key := h.fake.AddKey()
	h.issued = append(h.issued, key)
	if err := h.stage(ctx, key); err != nil {
		return err
	}
	oldID, err := h.rotor(ctx, nil, "get", secretName)
	if err != nil {
		return err
	}
	oldID = strings.TrimSpace(oldID)
	var promoted time.Time
	var rotateErr error
	if h.apiURL != "" && h.o.Mode != ModePushCLI {
		promoted, rotateErr = h.rotateAPI(ctx)
	} else {
		promoted, rotateErr = h.rotateStreaming(ctx)
	}
	if rotateErr != nil {
		return rotateErr
	}
	newID, err := h.rotor(ctx, nil, "get", secretName)
	if err != nil {
		return err
	}
	adopted, err := watch.when(strings.TrimSpace(newID))
	if err != nil {
		return err
	}
	res.Rotations++
	res.Adoption = append(res.Adoption, max(adopted.Sub(promoted), 0))

	// Revoke after the grace period (clock skew stands in for 24 hours).
	skew := []string{"ROTOR_CLOCK_SKEW=25h"}
	_, code, stderr, err := h.rotorCode(ctx, skew, "revoke", secretName)
	if err != nil {
		return err
	}
	if code != 6 || !strings.Contains(stderr, oldID) {
		return fmt.Errorf("rotation %d: revoke should ask for key %s to be deleted (exit 6), got exit %d: %s", i, oldID, code, stderr)
	}
	h.fake.DeleteKey(h.current) // the operator deletes it in the Dashboard
	h.current = key
	if _, err := h.rotor(ctx, skew, "revoke", secretName); err != nil {
		return err
	}
	res.Revoked++
	h.logf("rotation %d: %s → %s verified in use (adopted %s after promote), %s revoked at Clerk",
		i, oldID, strings.TrimSpace(newID), res.Adoption[len(res.Adoption)-1].Round(time.Millisecond), oldID)
	return nil
}

// rotateStreaming runs rotor rotate and returns when rotor printed the
// promote step.
func (h *harness) rotateStreaming(ctx context.Context) (time.Time, error) {
	cmd := exec.CommandContext(ctx, h.o.RotorBin, "rotate", secretName)
	cmd.Dir = h.o.Dir
	cmd.Env = h.cliEnv()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return time.Time{}, err
	}
	if err := cmd.Start(); err != nil {
		return time.Time{}, err
	}
	var promoted time.Time
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if promoted.IsZero() && strings.Contains(sc.Text(), ": promote ") {
			promoted = time.Now()
		}
		h.mu.Lock()
		h.transcript.WriteString(sc.Text() + "\n")
		h.mu.Unlock()
	}
	err = cmd.Wait()
	h.mu.Lock()
	h.transcript.WriteString(errb.String())
	h.mu.Unlock()
	if err != nil {
		return time.Time{}, fmt.Errorf("rotor rotate: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	if promoted.IsZero() {
		return time.Time{}, errors.New("rotor rotate printed no promote step")
	}
	if h.notifies() && strings.Contains(errb.String(), "notify") {
		// A failed notify leaves the push to serve's next poll: what
		// this run would time is then not the notify path.
		return time.Time{}, fmt.Errorf("rotor rotate could not notify rotor serve: %s", strings.TrimSpace(errb.String()))
	}
	return promoted, nil
}

func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// adoptionWatcher polls a consumer's health endpoint and remembers when
// each key id was first reported as current.
type adoptionWatcher struct {
	mu    sync.Mutex
	first map[string]time.Time
	c     *http.Client
	url   string
}

func newAdoptionWatcher(c *http.Client, url string) *adoptionWatcher {
	w := &adoptionWatcher{first: map[string]time.Time{}, c: c, url: url}
	go w.loop()
	return w
}

func (w *adoptionWatcher) loop() {
	for {
		id, err := w.current()
		now := time.Now()
		if err == nil && id != "" {
			w.mu.Lock()
			if _, seen := w.first[id]; !seen {
				w.first[id] = now
			}
			done := len(w.first) > 10000
			w.mu.Unlock()
			if done {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *adoptionWatcher) current() (string, error) {
	resp, err := w.c.Get(w.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var h struct {
		KeyIDs struct{ Current string } `json:"key_ids"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h.KeyIDs.Current, err
}

// when returns when id was first seen; rotor's verify step has already
// waited for it, so it is there or about to be.
func (w *adoptionWatcher) when(id string) (time.Time, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		t, ok := w.first[id]
		w.mu.Unlock()
		if ok {
			return t, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("consumer never reported key %s", id)
}

// Percentile returns the p-th percentile (0-100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
