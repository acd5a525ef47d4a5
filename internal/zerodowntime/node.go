package zerodowntime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// nextListening is what `next start` prints once it accepts connections.
var nextListening = regexp.MustCompile(`- Local:\s+http://(localhost:\d+)`)

// startNodeApp starts the built Next.js example under
// `rotor run --mode signal` and waits for its address. next listens on
// localhost: its proxy forwards requests to localhost, which a
// 127.0.0.1-only listener may not answer.
func (h *harness) startNodeApp(ctx context.Context) (*process, string, error) {
	node, next, dir, err := h.nextCommand()
	if err != nil {
		return nil, "", err
	}
	envFile := filepath.Join(h.o.Dir, "app.env")
	// next itself is the child, not npm: rotor run signals its direct child.
	cmd := exec.Command(h.o.RotorBin, "run", "--mode", "signal", "--env-file", envFile,
		"--poll", h.o.Poll.String(), "--", node, next, "start", dir, "-p", "0", "-H", "localhost")
	cmd.Env = append(h.nodeEnv(), "CLERK_ENV_FILE="+envFile)
	return h.startNext(ctx, cmd)
}

// startNodePushApp starts the built Next.js example with the first key in
// its environment (as a deployment platform would set it) and the watch
// stream of rotor serve as its source of every later key set.
func (h *harness) startNodePushApp(ctx context.Context) (*process, string, error) {
	node, next, dir, err := h.nextCommand()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(node, next, "start", dir, "-p", "0", "-H", "localhost")
	cmd.Env = append(h.nodeEnv(), "CLERK_SECRET_KEY="+h.current,
		"ROTOR_WATCH_URL="+h.apiURL+"/v1/watch/"+secretName, "ROTOR_APP_TOKEN="+h.appToken)
	return h.startNext(ctx, cmd)
}

// nextCommand finds node, Next.js's CLI in the npm workspace and the built
// app.
func (h *harness) nextCommand() (node, next, dir string, err error) {
	if dir, err = filepath.Abs(h.o.NodeAppDir); err != nil {
		return "", "", "", err
	}
	next = filepath.Join(dir, "..", "..", "node_modules", "next", "dist", "bin", "next")
	if _, err := os.Stat(filepath.Join(dir, ".next", "BUILD_ID")); err != nil {
		return "", "", "", fmt.Errorf("zerodowntime: %s is not built (npm ci, npm run build -w @rotor-dev/keyring, next build): %w", dir, err)
	}
	if node, err = exec.LookPath("node"); err != nil {
		return "", "", "", err
	}
	return node, next, dir, nil
}

// nodeEnv is the Next.js app's environment: the emulator, no telemetry.
func (h *harness) nodeEnv() []string {
	return append(os.Environ(), "CLERK_API_URL="+h.fake.URL(), "CLERK_PUBLISHABLE_KEY="+h.fake.PublishableKey(),
		"NEXT_TELEMETRY_DISABLED=1", "CLERK_TELEMETRY_DISABLED=1")
}

// startNext starts a `next start` command with its output in app.log and
// waits for the address it announces.
func (h *harness) startNext(ctx context.Context, cmd *exec.Cmd) (*process, string, error) {
	return h.startLogged(ctx, cmd, "app", func(log []byte) string {
		if m := nextListening.FindSubmatch(log); m != nil {
			return string(m[1])
		}
		return ""
	}, 2*time.Minute)
}

// startLogged starts cmd in the scratch directory with its output in
// <name>.log, and waits until addr finds its listen address in that log.
func (h *harness) startLogged(ctx context.Context, cmd *exec.Cmd, name string, addr func(log []byte) string, timeout time.Duration) (*process, string, error) {
	cmd.Dir = h.o.Dir
	logPath := filepath.Join(h.o.Dir, name+".log")
	logs, err := os.Create(logPath)
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
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(logPath); err == nil {
			if a := addr(b); a != "" {
				return p, a, nil
			}
		}
		select {
		case <-p.done:
			return nil, "", fmt.Errorf("%s exited before it was ready (see %s)", name, logPath)
		case <-ctx.Done():
			p.stop()
			return nil, "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", errors.New(name + " not ready in time (see " + logPath + ")")
		}
	}
}
