package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rotor-dev/rotor/internal/vaulttest"
)

// scaleRow is one measured size.
type scaleRow struct {
	n       int
	elapsed time.Duration
	// versions is the KV versions the timed run wrote per rotation
	// (Vault only; 0 when not measured): the store writes of one rotation.
	versions float64
	// rotorCPU and vaultCPU are the CPU time (user + system) the timed
	// run cost rotor and the Vault server: a figure the machine's load
	// changes far less than the wall clock.
	rotorCPU, vaultCPU time.Duration
}

// cpuText is the CPU time per secret, rotor's and (with Vault) the server's.
func (r scaleRow) cpuText() string {
	per := func(d time.Duration) string { return (d / time.Duration(r.n)).Round(10 * time.Microsecond).String() }
	if r.vaultCPU == 0 {
		return per(r.rotorCPU)
	}
	return per(r.rotorCPU) + " + " + per(r.vaultCPU)
}

func (r scaleRow) perSecret() time.Duration { return r.elapsed / time.Duration(r.n) }

func (r scaleRow) versionsText() string {
	if r.versions == 0 {
		return "-"
	}
	return strconv.FormatFloat(r.versions, 'f', 2, 64)
}

// scaleMain runs `rotor-bench scale`: for each size n it configures n
// secrets (provider random) on the chosen store, issues their first keys,
// then moves rotor's clock past the rotation interval and times one
// `rotor rotate --due` that rotates all of them, exactly as a cron run
// would (audit log included).
func scaleMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	storeType := fs.String("store", "file", "store: file, or vault (a Vault dev server from the cached binary, see internal/tools/vault/build.sh)")
	sizes := fs.String("n", "100,1000,10000", "numbers of due secrets, comma-separated")
	parallel := fs.Int("parallel", 0, "rotor rotate --parallel (0: rotor's default for the store)")
	write := fs.String("write", "", "append the results to this markdown file")
	rotorPath := fs.String("rotor", "", "a rotor binary to measure instead of building ./cmd/rotor (compare two builds, or keep the binary for a profiler's symbols)")
	cost := fs.Int("cost", 0, "vault: before the runs, send this many requests of each kind rotor sends (KV data write, metadata patch, reads, audit chain batch and head) and print the Vault server's CPU time per request")
	requests := fs.Bool("requests", false, "vault: send rotor's requests through a counting proxy and print them per rotation, by kind (the timings of such a run include the proxy)")
	fs.Parse(args)
	var ns []int
	for f := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-n %q: want positive numbers, comma-separated", *sizes)
		}
		ns = append(ns, n)
	}
	if *storeType != "file" && *storeType != "vault" {
		return fmt.Errorf("-store %q: want file or vault", *storeType)
	}
	if *requests && *storeType != "vault" {
		return fmt.Errorf("-requests counts requests to Vault: use it with -store vault")
	}

	bin, err := os.MkdirTemp("", "rotor-bench-bin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	rotorBin := *rotorPath
	if rotorBin == "" {
		if rotorBin, err = build(bin, ".", "./cmd/rotor"); err != nil {
			return err
		}
	}
	var vault *vaulttest.Server
	if *storeType == "vault" {
		s, stop, err := vaulttest.StartMain()
		if err != nil {
			return err
		}
		defer stop()
		vault = s
		fmt.Fprintf(os.Stderr, "== vault dev server at %s\n", s.Addr)
		if *cost > 0 {
			rows, err := vaultCost(ctx, s, *cost)
			if err != nil {
				return err
			}
			reportCost(os.Stdout, rows)
		}
	}
	var rows []scaleRow
	for _, n := range ns {
		fmt.Fprintf(os.Stderr, "== %s store, %d secrets\n", *storeType, n)
		r, err := scaleOnce(ctx, rotorBin, vault, n, *parallel, *requests)
		if err != nil {
			return fmt.Errorf("%d secrets: %w", n, err)
		}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "   %d rotations in %s (%s per secret)\n", n, r.elapsed.Round(time.Millisecond), r.perSecret().Round(10*time.Microsecond))
	}
	reportScale(os.Stdout, rows)
	if *write != "" {
		return appendScaleMarkdown(*write, *storeType, *sizes, *parallel, rows)
	}
	return nil
}

// scaleOnce measures one rotor rotate --due over n due secrets.
func scaleOnce(ctx context.Context, rotorBin string, vault *vaulttest.Server, n, parallel int, requests bool) (scaleRow, error) {
	dir, err := os.MkdirTemp("", "rotor-bench-scale")
	if err != nil {
		return scaleRow{}, err
	}
	defer os.RemoveAll(dir)
	var lastCPU time.Duration
	run := func(env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, rotorBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append([]string{"ROTOR_INITIATOR=system:rotor-bench"}, env...)...)
		var errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("rotor %s: %w: %s", strings.Join(args, " "), err, lastLines(errb.String(), 5))
		}
		lastCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return nil
	}
	if err := run(nil, "init"); err != nil {
		return scaleRow{}, err
	}
	var (
		b       strings.Builder
		counted *counter // with requests: the proxy counting them
	)
	prefix := fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())
	if vault != nil {
		token := filepath.Join(dir, "vault-token")
		if err := os.WriteFile(token, []byte(vault.Token), 0o600); err != nil {
			return scaleRow{}, err
		}
		addr := vault.Addr
		if requests {
			counted = newCounter(prefix)
			a, stop, err := counted.serve(vault.Addr)
			if err != nil {
				return scaleRow{}, err
			}
			defer stop()
			addr = a
		}
		fmt.Fprintf(&b, "store:\n  type: vault\n  vault:\n    address: %s\n    prefix: %s\n    auth: {method: token, token_file: %q}\n",
			addr, prefix, token)
	} else {
		b.WriteString("store:\n  type: file\n  file: {dir: .rotor/store, identity: .rotor/identity.txt}\n")
	}
	b.WriteString("audit:\n  path: .rotor/audit.log\n  salt_file: .rotor/audit.salt\n  anchor: .rotor/store/audit.head\nsecrets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: s%05d, provider: random}\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(b.String()), 0o644); err != nil {
		return scaleRow{}, err
	}
	args := []string{"rotate", "--due"}
	if parallel > 0 {
		args = append(args, "--parallel", strconv.Itoa(parallel))
	}
	// First keys (not timed), then every secret due again a month later.
	if err := run(nil, args...); err != nil {
		return scaleRow{}, err
	}
	before, err := kvVersions(ctx, vault, prefix, n)
	if err != nil {
		return scaleRow{}, err
	}
	vaultBefore, err := vaultCPU(vault)
	if err != nil {
		return scaleRow{}, err
	}
	if counted != nil {
		counted.reset()
	}
	start := time.Now()
	if err := run([]string{"ROTOR_CLOCK_SKEW=721h"}, args...); err != nil {
		return scaleRow{}, err
	}
	if counted != nil {
		counted.report(os.Stdout, n)
	}
	row := scaleRow{n: n, elapsed: time.Since(start), rotorCPU: lastCPU}
	vaultAfter, err := vaultCPU(vault)
	if err != nil {
		return scaleRow{}, err
	}
	row.vaultCPU = vaultAfter - vaultBefore
	after, err := kvVersions(ctx, vault, prefix, n)
	if err != nil {
		return scaleRow{}, err
	}
	row.versions = float64(after-before) / float64(n)
	return row, nil
}

// kvVersions sums the current KV versions of the n secrets under prefix
// in the default KV mount (0 without Vault), read outside the timed run.
func kvVersions(ctx context.Context, vault *vaulttest.Server, prefix string, n int) (uint64, error) {
	if vault == nil {
		return 0, nil
	}
	var sum uint64
	for i := range n {
		p := fmt.Sprintf("secret/metadata/%s/s%05d", prefix, i)
		res, err := vault.Client.Logical().ReadWithContext(ctx, p)
		if err != nil || res == nil {
			return 0, fmt.Errorf("read %s: %v", p, err)
		}
		v, err := strconv.ParseUint(fmt.Sprint(res.Data["current_version"]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: current_version: %w", p, err)
		}
		sum += v
	}
	return sum, nil
}

// vaultCPU is the CPU time (user + system) the Vault server has used so
// far, from /proc (0 without Vault).
func vaultCPU(vault *vaulttest.Server) (time.Duration, error) {
	if vault == nil {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", vault.Pid()))
	if err != nil {
		return 0, fmt.Errorf("vault server CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; count fields after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("vault server CPU time: short /proc stat")
	}
	var ticks uint64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		t, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("vault server CPU time: %w", err)
		}
		ticks += t
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// growth is per-secret time at r relative to the first row.
func growth(rows []scaleRow, r scaleRow) float64 {
	return float64(r.perSecret()) / float64(rows[0].perSecret())
}

func reportScale(w io.Writer, rows []scaleRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "due secrets\telapsed\tper secret\tgrowth (per secret, vs first)\tCPU per secret (rotor + vault)\tKV versions per rotation")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.2fx\t%s\t%s\n", r.n, r.elapsed.Round(time.Millisecond), r.perSecret().Round(10*time.Microsecond), growth(rows, r), r.cpuText(), r.versionsText())
	}
	tw.Flush()
}

func appendScaleMarkdown(path, storeType, sizes string, parallel int, rows []scaleRow) error {
	var b strings.Builder
	load := "unknown"
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	fmt.Fprintf(&b, "\n### Scale run, %s store, %s\n\n", storeType, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	flags := ""
	if parallel > 0 {
		flags = fmt.Sprintf(" -parallel %d", parallel)
	}
	fmt.Fprintf(&b, "`go run ./cmd/rotor-bench scale -store %s -n %s%s` on %d CPUs (%s/%s, %s), load average %s at the end.\n\n",
		storeType, sizes, flags, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
	b.WriteString("| due secrets | `rotor rotate --due` | per secret | growth per secret | CPU per secret (rotor + vault) | KV versions per rotation |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %s | %.2fx | %s | %s |\n", r.n, r.elapsed.Round(time.Millisecond), r.perSecret().Round(10*time.Microsecond), growth(rows, r), r.cpuText(), r.versionsText())
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
