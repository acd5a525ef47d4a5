package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store/file"
)

// defaultConfig is what `rotor init` writes. It must stay a valid config:
// TestInitConfigIsValid loads it.
const defaultConfig = `# rotor.yaml, written by rotor init. Reference: README.md, "Configuration".
store:
  type: file                     # embedded default: age-encrypted files
  file:
    dir: .rotor/store
    identity: .rotor/identity.txt  # age identity (0600); back it up
audit:
  path: .rotor/audit.log
  salt_file: .rotor/audit.salt     # keys the key ids and the audit chain
  anchor: .rotor/store/audit.head  # chain head, kept apart from the log
defaults:
  every: 720h   # rotate every 30 days
  grace: 24h    # the previous key stays valid this long after a rotation
secrets:
  - name: demo
    provider: random   # app-owned key: 32 random bytes
    random:
      bytes: 32
      encoding: base64url
`

func newInitCmd(g *globals) *cobra.Command {
	var dir string
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "init [--dir DIR]",
		Short: "Create rotor.yaml, the local encrypted store, its age identity and the audit salt",
		Long: `Init writes a working rotor.yaml into DIR (default: the current directory)
managing one example secret, demo (provider random), and creates the embedded
file store under DIR/.rotor: an age identity (0600) that encrypts the store,
and the salt that keys key ids and the audit chain.

When DIR/rotor.yaml already exists, init leaves it as it is and creates
only what that config names and is missing: the file store directory, its
age identity and the audit salt, saying what it created. It never
overwrites a config, identity or salt, and refuses to create an identity
for a store that already holds secrets, or a salt for an audit log or
chain head that already exists (both would be unreadable): restore those from a
backup. So scripts can run init every time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			if dir == "" {
				dir = filepath.Dir(g.config)
			}
			path := filepath.Join(dir, "rotor.yaml")
			if _, err := os.Stat(path); err == nil {
				created, err := completeSetup(path)
				if err != nil {
					return err
				}
				return out.print(cmd.OutOrStdout(), api.Init{Config: path, Created: created}, func(w io.Writer) error {
					if len(created) == 0 {
						_, err := fmt.Fprintf(w, "%s exists and nothing it names is missing; leaving it as it is\n", path)
						return err
					}
					fmt.Fprintf(w, "%s exists; leaving it as it is\n", path)
					for _, c := range created {
						fmt.Fprintf(w, "created %s\n", c)
					}
					return nil
				})
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			cfg, err := config.Parse([]byte(defaultConfig), abs)
			if err != nil {
				return fmt.Errorf("init: built-in config: %w", err)
			}
			if err := os.MkdirAll(cfg.Store.File.Dir, 0o700); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if err := file.GenerateIdentity(cfg.Store.File.Identity); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("init: %w", err)
			}
			salt, err := audit.LoadOrCreateSalt(cfg.Audit.SaltFile)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if _, err := file.New(cfg.Store.File.Dir, cfg.Store.File.Identity); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			log, err := audit.Open(cfg.Audit.Path, cfg.Audit.Anchor, salt)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if _, err := log.Append(cmd.Context(), audit.Event{Initiator: g.initiatorName(), Action: "init", Status: audit.StatusSucceeded, Detail: "created " + path}); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			// Written last, so a failed init leaves no config pointing at
			// a half-made store.
			if err := os.WriteFile(path, []byte(defaultConfig), 0o644); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			doc := api.Init{Config: path, WroteConfig: true, Created: []string{
				"store " + rel(abs, cfg.Store.File.Dir),
				"age identity " + rel(abs, cfg.Store.File.Identity) + " (0600)",
				"audit salt " + rel(abs, cfg.Audit.SaltFile) + " (0600)",
				"audit log " + rel(abs, cfg.Audit.Path),
			}}
			return out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
				fmt.Fprintf(w, "wrote %s\n", path)
				fmt.Fprintf(w, "created store %s (age identity %s, 0600)\n", rel(abs, cfg.Store.File.Dir), rel(abs, cfg.Store.File.Identity))
				fmt.Fprintf(w, "created audit log %s\n", rel(abs, cfg.Audit.Path))
				flag := ""
				if path != "rotor.yaml" {
					flag = " --config " + path
				}
				_, err := fmt.Fprintf(w, "next: rotor%s rotate demo && rotor%s status\n", flag, flag)
				return err
			})
		},
	}
	out.register(cmd, "text")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to initialise (default: the directory of --config)")
	// --exist-ok was needed before init completed an existing setup; it
	// is accepted, with a warning, so scripts that pass it keep working.
	cmd.Flags().Bool("exist-ok", false, "")
	_ = cmd.Flags().MarkDeprecated("exist-ok", "init now always accepts an existing rotor.yaml")
	return cmd
}

// completeSetup creates what the existing config at path names and is
// missing: the file store directory, its age identity and the audit salt.
// It never overwrites, and refuses where a new identity or salt would
// orphan existing data. It returns what it created, one phrase each.
func completeSetup(path string) ([]string, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	base := cfg.Dir
	created := []string{}
	if cfg.Store.Type == "file" {
		fc := cfg.Store.File
		if _, err := os.Stat(fc.Dir); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(fc.Dir, 0o700); err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
			created = append(created, "store "+rel(base, fc.Dir))
		}
		if _, err := os.Stat(fc.Identity); errors.Is(err, fs.ErrNotExist) {
			if held, _ := filepath.Glob(filepath.Join(fc.Dir, "*.age")); len(held) > 0 {
				return nil, fmt.Errorf("init: age identity %s is missing but store %s holds %d secret(s) encrypted to it; restore the identity from its backup (a new one could not read them)",
					rel(base, fc.Identity), rel(base, fc.Dir), len(held))
			}
			if err := file.GenerateIdentity(fc.Identity); err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
			created = append(created, "age identity "+rel(base, fc.Identity)+" (0600)")
		}
	}
	if _, err := os.Stat(cfg.Audit.SaltFile); errors.Is(err, fs.ErrNotExist) {
		if st, err := os.Stat(cfg.Audit.Path); err == nil && st.Size() > 0 {
			return nil, fmt.Errorf("init: audit salt %s is missing but audit log %s has records keyed by it; restore the salt from its backup (a new one would break the chain)",
				rel(base, cfg.Audit.SaltFile), rel(base, cfg.Audit.Path))
		}
		if _, err := os.Stat(cfg.Audit.Anchor); err == nil {
			return nil, fmt.Errorf("init: audit salt %s is missing but the chain head %s is keyed by it; restore the salt from its backup (a new one would break the chain)",
				rel(base, cfg.Audit.SaltFile), rel(base, cfg.Audit.Anchor))
		}
		if _, err := audit.LoadOrCreateSalt(cfg.Audit.SaltFile); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		created = append(created, "audit salt "+rel(base, cfg.Audit.SaltFile)+" (0600)")
	}
	return created, nil
}

func rel(base, path string) string {
	if r, err := filepath.Rel(base, path); err == nil {
		return r
	}
	return path
}
