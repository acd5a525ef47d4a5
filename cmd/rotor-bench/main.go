// Command rotor-bench measures rotor's zero-downtime claim and its
// throughput at scale.
//
//	go run ./cmd/rotor-bench zero-downtime [-rotations 20] [-requests 100000] [-workers 8] [-poll 100ms] [-modes run,sdk,push,push-cli,node,node-push,postgres] [-store file|vault|aws] [-idle 10s] [-idle-watchers 8] [-write BENCHMARKS.md]
//	go run ./cmd/rotor-bench scale [-store file|vault] [-n 100,1000,10000] [-parallel N] [-rotor BIN] [-requests] [-cost N] [-write BENCHMARKS.md]
//
// scale times one `rotor rotate --due` over n due secrets (provider
// random) for each n, on the file store or on a Vault dev server it starts
// from the binary internal/tools/vault/build.sh caches, and prints the time
// per secret and its growth from the smallest n (1.00x at every size is
// linear). With -requests (Vault) rotor talks to Vault through a counting
// proxy, and scale prints the requests of one rotation by kind (KV data,
// metadata, audit chain head and batches) and the TCP connections rotor
// opened: run it apart from the CPU figures, which the proxy changes.
// -cost N first sends N requests of each kind rotor sends Vault, with
// payloads of rotor's sizes, and prints the server's CPU time per request
// of each kind: with the counts, what a rotation costs Vault and its floor.
//
// For each consumer mode (clerk-app under `rotor run --mode signal`, an app
// on the keyring SDK polling the store, one fed by the watch stream of
// `rotor serve`, rotating through the API (push) or with the rotor CLI in
// its own process as cron would (push-cli), and the Next.js example on
// @rotor-dev/keyring under `rotor run --mode signal` and fed by the watch
// stream, which need Node and the npm workspace installed with npm ci;
// rotor-bench builds the package and the app) it drives continuous
// requests that need the Clerk
// key through the app while the rotor CLI rotates the key, verifies that
// the app adopted it, and revokes the previous key at a local Clerk
// Backend API emulator. It prints requests, failures and the propagation
// latency from promote to adoption, and with -write records them in a
// markdown file together with how to reproduce them.
//
// -store runs the push modes (push, push-cli) with the secret on a Vault
// dev server it starts from the cached binary (vault), or on the AWS
// Secrets Manager and DynamoDB emulators rotor's tests use (aws), instead
// of the file store. There rotor serve cannot see a change in the store,
// so in push-cli the CLI notifies it (server.notify) after each save. On
// these stores zero-downtime also counts the store's requests for -idle
// after the last rotation, while nothing rotates and rotor serve watches
// the one secret, first with the app's watcher alone and then with
// -idle-watchers clients of the watch stream: what serve's poll costs the
// store, and that it does not grow with watchers (Vault's requests pass
// through a counting proxy, in the adoption figures too). The postgres mode
// rotates a PostgreSQL password instead (a throw-away cluster from Debian's
// package) under the queries of a pgx pool built with keyring/pgxkeyring,
// revoking the previous role after each rotation; "requests" are queries.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rotor-dev/rotor/internal/zerodowntime"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "scale" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := scaleMain(ctx, os.Args[2:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "rotor-bench:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "zero-downtime" {
		fmt.Fprintln(os.Stderr, "usage: rotor-bench zero-downtime [flags] | rotor-bench scale [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("zero-downtime", flag.ExitOnError)
	rotations := fs.Int("rotations", 20, "rotations per mode (each verified and followed by revocation)")
	requests := fs.Int64("requests", 100000, "minimum requests per mode")
	workers := fs.Int("workers", 8, "concurrent load generator workers")
	poll := fs.Duration("poll", 100*time.Millisecond, "consumer polling interval (rotor run and keyring)")
	write := fs.String("write", "", "append the results to this markdown file")
	modes := fs.String("modes", "", "consumer modes to run, comma-separated (default: all of them on the file store, push,push-cli on another)")
	storeKind := fs.String("store", storeFile, "store of the push modes: file, vault (a Vault dev server from the cached binary, see internal/tools/vault/build.sh) or aws (the Secrets Manager and DynamoDB emulators)")
	idle := fs.Duration("idle", 10*time.Second, "vault, aws: after the last rotation, count the store's requests for this long while rotor serve watches the secret (0: skip)")
	idleWatchers := fs.Int("idle-watchers", 8, "vault, aws: count the idle requests a second time with this many watch-stream clients of the secret (1: once, with the app's)")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := benchConfig{rotations: *rotations, requests: *requests, workers: *workers, poll: *poll, write: *write, store: *storeKind, idle: *idle, idleWatchers: *idleWatchers}
	if *modes != "" {
		c.modes = strings.Split(*modes, ",")
	}
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "rotor-bench:", err)
		os.Exit(1)
	}
}

// benchConfig is what zero-downtime was asked to run.
type benchConfig struct {
	modes     []string // nil: every mode the store supports
	rotations int
	requests  int64
	workers   int
	poll      time.Duration
	write     string
	store     string        // storeFile, storeVault or storeAWS
	idle      time.Duration // see -idle
	// idleWatchers is -idle-watchers.
	idleWatchers int
}

// check validates c and fills in the default modes.
func (c *benchConfig) check() error {
	if !slices.Contains(pushStores, c.store) {
		return fmt.Errorf("-store %q: want %s", c.store, strings.Join(pushStores, ", "))
	}
	if c.modes == nil {
		c.modes = allModes
		if c.store != storeFile {
			c.modes = pushModes
		}
	}
	for _, mode := range c.modes {
		if _, ok := modeName[mode]; !ok {
			return fmt.Errorf("unknown mode %q (want %s)", mode, strings.Join(allModes, ", "))
		}
		if c.store != storeFile && !slices.Contains(pushModes, mode) {
			return fmt.Errorf("mode %s runs on the file store only; -store %s is for %s", mode, c.store, strings.Join(pushModes, ", "))
		}
	}
	return nil
}

type row struct {
	mode string
	res  zerodowntime.Result
}

// pushModes are the modes that run on any store (-store).
var pushModes = []string{zerodowntime.ModePush, zerodowntime.ModePushCLI}

var allModes = []string{zerodowntime.ModeRun, zerodowntime.ModeSDK, zerodowntime.ModePush, zerodowntime.ModePushCLI,
	zerodowntime.ModeNode, zerodowntime.ModeNodePush, zerodowntime.ModePostgres}

// usesNode reports whether any of modes runs the Next.js example.
func usesNode(modes []string) bool {
	return slices.Contains(modes, zerodowntime.ModeNode) || slices.Contains(modes, zerodowntime.ModeNodePush)
}

// nodeAppDir is the Next.js example the Node modes run.
const nodeAppDir = "examples/nextjs-app"

// buildNodeApp builds @rotor-dev/keyring and the Next.js example from the
// npm workspace at the repository root (installed with npm ci).
func buildNodeApp() error {
	if _, err := os.Stat(filepath.Join("node_modules", "next")); err != nil {
		return fmt.Errorf("the Node modes need the npm workspace installed: run npm ci at the repository root first (%w)", err)
	}
	steps := []struct {
		dir  string
		args []string
	}{
		{".", []string{"npm", "run", "build", "-w", "@rotor-dev/keyring"}},
		{nodeAppDir, []string{"npx", "next", "build"}},
	}
	for _, s := range steps {
		cmd := exec.Command(s.args[0], s.args[1:]...)
		cmd.Dir = s.dir
		cmd.Env = append(os.Environ(), "SKIP_ENV_VALIDATION=1", "NEXT_TELEMETRY_DISABLED=1")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(s.args, " "), err)
		}
	}
	return nil
}

func run(ctx context.Context, c benchConfig) error {
	if err := c.check(); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "rotor-bench-bin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	rotorBin, err := build(bin, ".", "./cmd/rotor")
	if err != nil {
		return err
	}
	var appBin string
	if slices.Contains(c.modes, zerodowntime.ModeRun) {
		if appBin, err = build(bin, "examples", "./clerk-app"); err != nil { // a module of its own
			return err
		}
	}
	if usesNode(c.modes) {
		if err := buildNodeApp(); err != nil {
			return err
		}
	}
	st, err := startStore(c.store)
	if err != nil {
		return err
	}
	defer st.Close()
	var rows []row
	failed := false
	for _, mode := range c.modes {
		fmt.Fprintf(os.Stderr, "== %s on the %s store: %d rotations, at least %d requests, %d workers\n", mode, c.store, c.rotations, c.requests, c.workers)
		res, err := runOne(ctx, c, st, mode, rotorBin, appBin)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		failed = failed || res.Failures > 0
		rows = append(rows, row{mode, res})
	}
	report(os.Stdout, rows, c.store)
	if c.write != "" {
		if err := appendMarkdown(c.write, rows, c); err != nil {
			return err
		}
	}
	if failed {
		return fmt.Errorf("requests failed during rotation")
	}
	return nil
}

// runOne runs one mode in a scratch directory of its own, on the store st.
func runOne(ctx context.Context, c benchConfig, st *benchStore, mode, rotorBin, appBin string) (zerodowntime.Result, error) {
	dir, err := os.MkdirTemp("", "rotor-bench-"+mode)
	if err != nil {
		return zerodowntime.Result{}, err
	}
	defer os.RemoveAll(dir)
	s, release, err := st.forRun()
	if err != nil {
		return zerodowntime.Result{}, err
	}
	defer release()
	o := zerodowntime.Options{
		Mode: mode, RotorBin: rotorBin, AppBin: appBin, NodeAppDir: nodeAppDir, Dir: dir,
		Rotations: c.rotations, Workers: c.workers, MinRequests: c.requests, Poll: c.poll, Log: os.Stderr,
		Store: s, IdleWindow: c.idle, IdleWatchers: c.idleWatchers,
	}
	if mode == zerodowntime.ModePostgres {
		return zerodowntime.RunPostgres(ctx, o)
	}
	return zerodowntime.Run(ctx, o)
}

// build compiles the main package pkg of the module in the directory
// module (relative to the repository root, the working directory) into
// dir, with -tags rotortest so that rotor has its test knobs
// (ROTOR_CLOCK_SKEW).
func build(dir, module, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-tags", "rotortest", "-o", out, pkg)
	cmd.Dir = module
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s (run rotor-bench from the repository root): %w", pkg, module, err)
	}
	return out, nil
}

var modeName = map[string]string{
	zerodowntime.ModeRun:      "rotor run --mode signal (clerk-app, polling)",
	zerodowntime.ModeSDK:      "keyring SDK (storesource, polling)",
	zerodowntime.ModePush:     "keyring SDK (rotor serve watch stream, push; rotated through the API)",
	zerodowntime.ModePushCLI:  "keyring SDK (rotor serve watch stream, push; rotated by the rotor CLI)",
	zerodowntime.ModeNode:     "Next.js on @rotor-dev/keyring, rotor run --mode signal (env file on SIGHUP, polling)",
	zerodowntime.ModeNodePush: "Next.js on @rotor-dev/keyring (rotor serve watch stream, push)",
	zerodowntime.ModePostgres: "PostgreSQL: pgx pool via keyring/pgxkeyring (storesource, polling); requests are queries",
}

func report(w io.Writer, rows []row, store string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "consumer\tstore\trequests\tfailures\trotations\trevoked\tadoption p50\tp99\tmax\tidle store req/s\telapsed")
	for _, r := range rows {
		a := r.res.Adoption
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", modeName[r.mode], store, r.res.Requests, r.res.Failures,
			r.res.Rotations, r.res.Revoked, ms(zerodowntime.Percentile(a, 50)), ms(zerodowntime.Percentile(a, 99)),
			ms(zerodowntime.Percentile(a, 100)), idleRate(r.res), r.res.Elapsed.Round(time.Second))
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

// idleRate is the store's requests per second while idle (one watched
// secret) for each number of watchers, or "-" when they were not counted.
func idleRate(r zerodowntime.Result) string {
	if len(r.Idle) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range r.Idle {
		w := "watchers"
		if c.Watchers == 1 {
			w = "watcher"
		}
		parts = append(parts, fmt.Sprintf("%.2f (%d %s)", c.PerSecond(), c.Watchers, w))
	}
	return strings.Join(parts, ", ")
}

func appendMarkdown(path string, rows []row, c benchConfig) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Zero-downtime run, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	modes := make([]string, len(rows))
	for i, r := range rows {
		modes[i] = r.mode
	}
	load := "unknown"
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	storeFlags := ""
	if c.store != storeFile {
		storeFlags = fmt.Sprintf(" -store %s -idle %s -idle-watchers %d", c.store, c.idle, c.idleWatchers)
	}
	fmt.Fprintf(&b, "`go run ./cmd/rotor-bench zero-downtime -rotations %d -requests %d -workers %d -poll %s -modes %s%s` on %d CPUs (%s/%s, %s), load average %s at the end.\n\n",
		c.rotations, c.requests, c.workers, c.poll, strings.Join(modes, ","), storeFlags, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
	if usesNode(modes) {
		if v, err := exec.Command("node", "--version").Output(); err == nil {
			fmt.Fprintf(&b, "Node modes: Node %s, Next.js 16 (`next start`), load on `/api/users` (a Backend API call through `@rotor-dev/keyring/clerk`).\n\n", strings.TrimSpace(string(v)))
		}
	}
	b.WriteString("| consumer | store | requests | failures | rotations (verified) | previous keys revoked | adoption p50 | p99 | max | store requests/s while idle (1 watched secret) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		a := r.res.Adoption
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %s | %s | %s |\n", modeName[r.mode], c.store, r.res.Requests, r.res.Failures,
			r.res.Rotations, r.res.Revoked, ms(zerodowntime.Percentile(a, 50)), ms(zerodowntime.Percentile(a, 99)), ms(zerodowntime.Percentile(a, 100)), idleRate(r.res))
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
