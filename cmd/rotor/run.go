package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/storesource"
	"github.com/rotor-dev/rotor/supervisor"
)

// childExit carries a child's exit code out of `rotor run` unprinted.
type childExit struct{ code int }

func (e childExit) Error() string { return fmt.Sprintf("child exited with status %d", e.code) }

func newRunCmd(g *globals) *cobra.Command {
	var secrets, passEnv []string
	var mode, sig, envFile string
	var poll, stopTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARGS...]",
		Short: "Run an application with its keys in the environment, updating it when they rotate",
		Long: `Run starts CMD with, for each secret, the variables NAME (current key),
NAME_PRIMARY (current), NAME_SECONDARY (previous while it is within its grace
period, else empty), and NAME_KEY_ID and NAME_SECONDARY_KEY_ID (their key ids,
for the application's health endpoint to report). NAME is the secret's env
setting, by default its name in upper case with - and . as _
(clerk-secret-key → CLERK_SECRET_KEY). The format is specified in the Go
SDK's documentation (go doc github.com/rotor-dev/rotor/keyring, section
"Environment variables"); keyring.EnvSource reads it.

It polls the store and, when a key set changes, either restarts CMD
gracefully (--mode restart: SIGTERM, then SIGKILL after --stop-timeout) or
rewrites --env-file and sends --signal (--mode signal) for applications that
re-read their keys. Signals rotor receives are forwarded to CMD; rotor exits
with CMD's exit status.

CMD inherits rotor's environment except the variables rotor consumed for
itself: its own ROTOR_* settings, the store's credentials (VAULT_*, the AWS
credential variables), a provider's key (clerk-machine's instance_key_env)
and HTTP hooks' token_env. --pass-env NAME passes one of them on anyway;
everything else (PATH, PORT, NODE_ENV, KUBECONFIG…) passes through.

An application that tries NAME_PRIMARY and, on a 401, NAME_SECONDARY keeps
working through every rotation: its old key stays valid until it has the new
one. A restart still takes a single process down for as long as it needs to
start; run several instances behind a load balancer, or use signal mode, when
that gap matters.`,
		Example: `  rotor run -- node server.js
  rotor run --secret clerk-secret-key --mode signal --env-file .env.rotor -- ./app`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 {
				return usagef("run: put the command after --, e.g. rotor run -- ./app")
			}
			cfg := supervisor.Config{Argv: args, StopTimeout: stopTimeout, EnvFile: envFile}
			switch mode {
			case "restart":
				cfg.Mode = supervisor.Restart
			case "signal":
				cfg.Mode = supervisor.Signal
				s, err := supervisor.ParseSignal(sig)
				if err != nil {
					return usageError{err}
				}
				cfg.Signal = s
				if envFile == "" {
					return usagef("run: --mode signal needs --env-file for the application to re-read")
				}
			default:
				return usagef("run: --mode must be restart or signal")
			}
			if poll < 100*time.Millisecond {
				return usagef("run: --poll must be at least 100ms")
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			cfg.Env = a.childEnv(passEnv)
			names := a.names()
			if len(secrets) > 0 {
				for _, s := range secrets {
					if _, err := a.cfg.Secret(s); err != nil {
						return err
					}
				}
				names = secrets
			}
			vars, err := a.envVars(cmd.Context(), names)
			if err != nil {
				return err
			}
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			sup, err := supervisor.New(cfg)
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			updates := make(chan []string)
			go a.watchEnv(ctx, names, vars, poll, updates, cfg.Log)
			code, err := sup.Run(context.WithoutCancel(ctx), vars, updates)
			if err != nil {
				return err
			}
			if code != 0 {
				return childExit{code}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&secrets, "secret", nil, "secrets to inject (repeatable; default: all)")
	cmd.Flags().StringSliceVar(&passEnv, "pass-env", nil, "a variable rotor consumed itself that CMD gets anyway, e.g. AWS_PROFILE (repeatable)")
	cmd.Flags().StringVar(&mode, "mode", "restart", "how a new key reaches the app: restart or signal")
	cmd.Flags().StringVar(&sig, "signal", "HUP", "signal sent in signal mode: HUP, USR1 or USR2")
	cmd.Flags().StringVar(&envFile, "env-file", "", "dotenv file (0600) rewritten with the keys before each start and signal")
	cmd.Flags().DurationVar(&poll, "poll", 5*time.Second, "how often to check the store for a new key set")
	cmd.Flags().DurationVar(&stopTimeout, "stop-timeout", 10*time.Second, "how long a restart waits after SIGTERM before SIGKILL")
	return cmd
}

// envVars returns the environment variables of each secret's key set, as
// keyring.EnvVars writes them.
func (a *app) envVars(ctx context.Context, names []string) ([]string, error) {
	var vars []string
	now := a.now()
	for _, name := range names {
		sc, err := a.cfg.Secret(name)
		if err != nil {
			return nil, err
		}
		s, ver, err := a.engine.Load(ctx, name)
		if err != nil {
			return nil, err
		}
		set, err := storesource.SetOf(s, ver, now)
		if errors.Is(err, keyring.ErrNoCurrentKey) {
			return nil, fmt.Errorf("%s has no current key yet; %s", name, firstKeyHint(sc))
		}
		if err != nil {
			return nil, err
		}
		vars = append(vars, keyring.EnvVars(sc.EnvName(), set)...)
	}
	return vars, nil
}

// firstKeyHint says how sc gets its first key: by rotation, or, for a
// Clerk secret key that rotor cannot mint (manual mode, no mint hook), by
// staging a key created in the Dashboard and then rotating to it.
func firstKeyHint(sc *config.Secret) string {
	if o, ok := sc.ProviderOptions.(clerk.Options); ok && o.Platform == nil && o.Mint == nil {
		return fmt.Sprintf("create a secret key in the Clerk Dashboard, stage it with `rotor stage %s --from-stdin`, then run `rotor rotate %s`", sc.Name, sc.Name)
	}
	return fmt.Sprintf("run `rotor rotate %s` first", sc.Name)
}

// watchEnv polls the store and sends each changed variable set. A failed
// poll keeps the last set and is logged (without values).
func (a *app) watchEnv(ctx context.Context, names []string, last []string, every time.Duration, out chan<- []string, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		vars, err := a.envVars(ctx, names)
		if err != nil {
			log.Warn("keys not refreshed; keeping the last set", "err", err)
			continue
		}
		if slices.Equal(vars, last) {
			continue
		}
		select {
		case out <- vars:
			last = vars
		case <-ctx.Done():
			return
		}
	}
}
