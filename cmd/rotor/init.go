package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

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
	var existOK bool
	cmd := &cobra.Command{
		Use:   "init [--dir DIR] [--exist-ok]",
		Short: "Create rotor.yaml, the local encrypted store, its age identity and the audit salt",
		Long: `Init writes a working rotor.yaml into DIR (default: the current directory)
managing one example secret, demo (provider random), and creates the embedded
file store under DIR/.rotor: an age identity (0600) that encrypts the store,
and the salt that keys key ids and the audit chain. It never overwrites an
existing config, identity or salt; with --exist-ok an existing rotor.yaml is
left as it is and init succeeds, so scripts can run it every time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				dir = filepath.Dir(g.config)
			}
			path := filepath.Join(dir, "rotor.yaml")
			if _, err := os.Stat(path); err == nil {
				if existOK {
					fmt.Fprintf(cmd.OutOrStdout(), "%s exists; leaving it as it is\n", path)
					return nil
				}
				return fmt.Errorf("init: %s already exists; not overwriting it", path)
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
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s\n", path)
			fmt.Fprintf(out, "created store %s (age identity %s, 0600)\n", rel(abs, cfg.Store.File.Dir), rel(abs, cfg.Store.File.Identity))
			fmt.Fprintf(out, "created audit log %s\n", rel(abs, cfg.Audit.Path))
			flag := ""
			if path != "rotor.yaml" {
				flag = " --config " + path
			}
			fmt.Fprintf(out, "next: rotor%s rotate demo && rotor%s status\n", flag, flag)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to initialise (default: the directory of --config)")
	cmd.Flags().BoolVar(&existOK, "exist-ok", false, "succeed without changes when rotor.yaml already exists")
	return cmd
}

func rel(base, path string) string {
	if r, err := filepath.Rel(base, path); err == nil {
		return r
	}
	return path
}
