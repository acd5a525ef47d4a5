// Package config loads and validates rotor.yaml.
//
// Decoding is strict: an unknown key is an error naming the key and its
// line. Validation collects every problem, each with its location
// (secrets[1].grace, line 14), and [Load] returns either a fully valid
// [Config] or an error; nothing is half-applied. Relative paths are resolved
// against the directory of the config file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/schedule"
	"github.com/rotor-dev/rotor/store"
)

// Default values applied where the config is silent.
const (
	DefaultEvery = 720 * time.Hour // 30 days
	DefaultGrace = 24 * time.Hour
	DefaultLease = 15 * time.Minute
)

// Config is a validated rotor.yaml.
type Config struct {
	// Path is the file the config was loaded from; Dir is its directory.
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`

	Store    StoreConfig  `yaml:"store"`
	Audit    AuditConfig  `yaml:"audit"`
	Defaults Defaults     `yaml:"defaults"`
	Secrets  []Secret     `yaml:"secrets"`
	Server   ServerConfig `yaml:"server"`
}

// StoreConfig selects and configures the secret store.
type StoreConfig struct {
	Type  string      `yaml:"type"` // file (default), vault, awssm
	File  *FileStore  `yaml:"file"`
	Vault *VaultStore `yaml:"vault"`
	AWSSM *AWSSMStore `yaml:"awssm"`
}

// FileStore configures the embedded age-encrypted file store.
type FileStore struct {
	Dir      string `yaml:"dir"`      // default .rotor/store
	Identity string `yaml:"identity"` // age identity file, default .rotor/identity.txt
}

// AuditConfig configures the audit log.
type AuditConfig struct {
	Path     string `yaml:"path"`      // default .rotor/audit.log
	SaltFile string `yaml:"salt_file"` // default .rotor/audit.salt
	// Anchor is where the chain head is kept, apart from the log, so a
	// truncated tail is detected. Default: audit.head in the file store's
	// directory, else .rotor/audit.head.
	Anchor string `yaml:"anchor"`
}

// Defaults apply to every secret that does not override them.
type Defaults struct {
	Every   Duration `yaml:"every"`
	Grace   Duration `yaml:"grace"`
	Lease   Duration `yaml:"lease"`
	Jitter  Duration `yaml:"jitter"`
	Windows []Window `yaml:"windows"`
}

// Window is a weekly range during which rotations may start, e.g.
// {days: [mon, tue, wed, thu, fri], start: "09:00", end: "16:00", timezone: UTC}.
type Window struct {
	Days     []string `yaml:"days"` // empty: every day
	Start    string   `yaml:"start"`
	End      string   `yaml:"end"`
	Timezone string   `yaml:"timezone"` // default UTC
}

// Secret configures one managed secret.
type Secret struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"` // random, clerk, clerk-machine, exec

	Random       *RandomProvider       `yaml:"random"`
	Clerk        *ClerkProvider        `yaml:"clerk"`
	ClerkMachine *ClerkMachineProvider `yaml:"clerk_machine"`
	Exec         *ExecProvider         `yaml:"exec"`

	// Every, Grace and Lease override Defaults; zero means "use default".
	Every Duration `yaml:"every"`
	Grace Duration `yaml:"grace"`
	Lease Duration `yaml:"lease"`
	// Cron, when set, replaces every: a standard five-field expression.
	Cron string `yaml:"cron"`
	// Jitter and Windows override Defaults.
	Jitter  Duration `yaml:"jitter"`
	Windows []Window `yaml:"windows"`

	// Env is the base name of the environment variables `rotor run`
	// injects (Env, Env_PRIMARY, Env_SECONDARY). Default: the name in
	// upper case with '-' and '.' as '_'.
	Env string `yaml:"env"`

	// KeepFailedAsPrevious keeps a rolled-back key valid as previous
	// instead of setting it aside for revocation.
	KeepFailedAsPrevious bool `yaml:"keep_failed_as_previous"`

	// Reload runs after promote; Verify after reload. Failing verification
	// rolls the rotation back.
	Reload []Hook `yaml:"reload"`
	Verify []Hook `yaml:"verify"`

	// Consumers are health URLs of the applications using the secret
	// (keyring.HealthHandler). Verify waits until all report the new key
	// id (for up to ConsumerTimeout, default 2m), and revoke refuses a key
	// any of them still reports.
	Consumers       []string `yaml:"consumers"`
	ConsumerTimeout Duration `yaml:"consumer_timeout"`
}

// Hook is a reload trigger or a verification check: exactly one of
// Command, HTTP, Signal or Kubernetes.
type Hook struct {
	// Command is run without a shell. Its environment carries
	// ROTOR_SECRET, ROTOR_STEP and ROTOR_KEY_ID, never a value.
	Command    []string        `yaml:"command"`
	HTTP       *HTTPHook       `yaml:"http"`
	Signal     *SignalHook     `yaml:"signal"`
	Kubernetes *KubernetesHook `yaml:"kubernetes"`
	Timeout    Duration        `yaml:"timeout"` // default 30s (http verify: 60s)
}

// HTTPHook is a POST (reload) or a health check polled until it passes
// (verify).
type HTTPHook struct {
	URL string `yaml:"url"`
	// TokenEnv names an environment variable holding a bearer token for
	// reload requests; the token never goes in this file.
	TokenEnv string `yaml:"token_env"`
	// RequireKeyID (verify) also requires the answer's key_ids.current to
	// be the new key id.
	RequireKeyID bool     `yaml:"require_key_id"`
	Interval     Duration `yaml:"interval"` // verify polling, default 1s
}

// SignalHook signals the process whose pid is in PIDFile (reload only).
type SignalHook struct {
	PIDFile string `yaml:"pid_file"`
	Signal  string `yaml:"signal"` // HUP (default), USR1, USR2
}

// KubernetesHook restarts a Deployment the way `kubectl rollout restart`
// does and waits for the rollout (reload only).
type KubernetesHook struct {
	Namespace  string `yaml:"namespace"` // default "default"
	Deployment string `yaml:"deployment"`
	Kubeconfig string `yaml:"kubeconfig"` // default: in-cluster, else $KUBECONFIG / ~/.kube/config
}

// RandomProvider configures app-owned random keys.
type RandomProvider struct {
	Bytes    int    `yaml:"bytes"`    // default 32
	Encoding string `yaml:"encoding"` // hex, base64, base64url (default)
	Prefix   string `yaml:"prefix"`
}

// Duration is a time.Duration written as "720h", "90m" or "30d".
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 720h or 30d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ParseDuration accepts Go durations plus a whole number of days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30d, 720h or 90m", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30d, 720h or 90m", s)
	}
	return v, nil
}

// Schedule returns the effective rotation schedule of s (validated at load).
func (c *Config) Schedule(s *Secret) schedule.Schedule {
	sch, _ := c.buildSchedule(s)
	return sch
}

func (c *Config) buildSchedule(s *Secret) (schedule.Schedule, error) {
	sch := schedule.Schedule{Every: c.Policy(s).Every, Jitter: time.Duration(c.Defaults.Jitter)}
	if s.Jitter != 0 {
		sch.Jitter = time.Duration(s.Jitter)
	}
	if s.Cron != "" {
		cs, err := schedule.ParseCron(s.Cron)
		if err != nil {
			return sch, err
		}
		sch.Cron = cs
	}
	windows := c.Defaults.Windows
	if len(s.Windows) > 0 {
		windows = s.Windows
	}
	for _, w := range windows {
		pw, err := schedule.ParseWindow(w.Days, w.Start, w.End, w.Timezone)
		if err != nil {
			return sch, err
		}
		sch.Windows = append(sch.Windows, pw)
	}
	return sch, nil
}

// Policy is the effective schedule of one secret.
type Policy struct {
	Every, Grace, Lease time.Duration
}

// Policy returns the effective schedule of s under c's defaults.
func (c *Config) Policy(s *Secret) Policy {
	pick := func(v, def Duration, fallback time.Duration) time.Duration {
		switch {
		case v != 0:
			return time.Duration(v)
		case def != 0:
			return time.Duration(def)
		}
		return fallback
	}
	return Policy{
		Every: pick(s.Every, c.Defaults.Every, DefaultEvery),
		Grace: pick(s.Grace, c.Defaults.Grace, DefaultGrace),
		Lease: pick(s.Lease, c.Defaults.Lease, DefaultLease),
	}
}

// Secret returns the secret called name.
func (c *Config) Secret(name string) (*Secret, error) {
	for i := range c.Secrets {
		if c.Secrets[i].Name == name {
			return &c.Secrets[i], nil
		}
	}
	names := make([]string, len(c.Secrets))
	for i, s := range c.Secrets {
		names[i] = s.Name
	}
	return nil, fmt.Errorf("no secret %q in %s (configured: %s)", name, c.Path, strings.Join(names, ", "))
}

// Load reads, decodes and validates the config file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config %s not found (run `rotor init` or pass --config)", path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Parse decodes and validates a config document. Relative paths in it are
// resolved against dir.
func Parse(b []byte, dir string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	v := &validator{root: &root}
	c.Dir = dir
	c.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	c.resolvePaths()
	return &c, nil
}

func (c *Config) validate(v *validator) {
	switch c.Store.Type {
	case "", "file":
		if c.Store.Vault != nil || c.Store.AWSSM != nil {
			v.addf(path{"store"}, "store type is file but a vault or awssm block is set")
		}
	case "vault":
		if c.Store.Vault == nil {
			c.Store.Vault = &VaultStore{}
		}
		c.Store.Vault.validate(v, path{"store", "vault"})
	case "awssm":
		if c.Store.AWSSM == nil {
			c.Store.AWSSM = &AWSSMStore{}
		}
		c.Store.AWSSM.validate(v, path{"store", "awssm"})
	default:
		v.addf(path{"store", "type"}, "unknown store type %q (want file, vault or awssm)", c.Store.Type)
	}
	for _, d := range []struct {
		name string
		val  Duration
	}{{"every", c.Defaults.Every}, {"grace", c.Defaults.Grace}, {"lease", c.Defaults.Lease}} {
		if d.val < 0 {
			v.addf(path{"defaults", d.name}, "must not be negative")
		}
	}
	if len(c.Secrets) == 0 {
		v.addf(path{"secrets"}, "no secrets configured")
	}
	c.Server.validate(v, path{"server"})
	seen := map[string]int{}
	for i := range c.Secrets {
		s := &c.Secrets[i]
		p := path{"secrets", i}
		if err := store.ValidateName(s.Name); err != nil {
			v.addf(p.with("name"), "%v", err)
		} else if j, dup := seen[s.Name]; dup {
			v.addf(p.with("name"), "secret %q is already defined at secrets[%d]", s.Name, j)
		}
		seen[s.Name] = i
		s.validate(v, p)
		pol := c.Policy(s)
		if s.Cron == "" && pol.Grace >= pol.Every {
			v.addf(p.with("grace"), "grace (%s) must be shorter than every (%s), or two rotations would overlap", pol.Grace, pol.Every)
		}
		if s.Cron != "" && s.Every != 0 {
			v.addf(p.with("cron"), "set either every or cron, not both")
		}
		if _, err := c.buildSchedule(s); err != nil {
			switch {
			case s.Cron != "":
				if _, cerr := schedule.ParseCron(s.Cron); cerr != nil {
					v.addf(p.with("cron"), "%v", cerr)
					break
				}
				fallthrough
			default:
				v.addf(p.with("windows"), "%v", err)
			}
		}
		if s.Jitter < 0 {
			v.addf(p.with("jitter"), "must not be negative")
		}
		if pol.Lease < time.Second {
			v.addf(p.with("lease"), "lease (%s) must be at least 1s", pol.Lease)
		}
	}
}

func (s *Secret) validate(v *validator, p path) {
	blocks := map[string]bool{
		"random":        s.Random != nil,
		"clerk":         s.Clerk != nil,
		"clerk-machine": s.ClerkMachine != nil,
		"exec":          s.Exec != nil,
	}
	for name, set := range blocks {
		if set && name != s.Provider {
			v.addf(p.with(strings.ReplaceAll(name, "-", "_")), "block %s does not match provider %q", strings.ReplaceAll(name, "-", "_"), s.Provider)
		}
	}
	switch s.Provider {
	case "random":
		if s.Random == nil {
			s.Random = &RandomProvider{}
		}
		s.Random.validate(v, p.with("random"))
	case "clerk":
		if s.Clerk == nil {
			s.Clerk = &ClerkProvider{}
		}
		s.Clerk.validate(v, p.with("clerk"))
	case "clerk-machine":
		if s.ClerkMachine == nil {
			v.addf(p.with("provider"), "provider clerk-machine needs a clerk_machine block")
			break
		}
		s.ClerkMachine.validate(v, p.with("clerk_machine"))
	case "exec":
		if s.Exec == nil {
			v.addf(p.with("provider"), "provider exec needs an exec block")
			break
		}
		s.Exec.validate(v, p.with("exec"))
	case "":
		v.addf(p, "secret %q has no provider (want random, clerk, clerk-machine or exec)", s.Name)
	default:
		v.addf(p.with("provider"), "unknown provider %q (want random, clerk, clerk-machine or exec)", s.Provider)
	}
	for _, d := range []struct {
		name string
		val  Duration
	}{{"every", s.Every}, {"grace", s.Grace}, {"lease", s.Lease}} {
		if d.val < 0 {
			v.addf(p.with(d.name), "must not be negative")
		}
	}
	if s.Env != "" && !envName.MatchString(s.Env) {
		v.addf(p.with("env"), "%q is not an environment variable name", s.Env)
	} else if s.Env == "" && s.Name != "" && !envName.MatchString(s.EnvName()) {
		v.addf(p.with("name"), "%q does not make an environment variable name; set env", s.Name)
	}
	for kind, hooks := range map[string][]Hook{"reload": s.Reload, "verify": s.Verify} {
		for i := range hooks {
			hooks[i].validate(v, p.with(kind, i), kind)
		}
	}
	for i, u := range s.Consumers {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			v.addf(p.with("consumers", i), "consumer %q is not an http(s) URL", u)
		}
	}
	if s.ConsumerTimeout < 0 {
		v.addf(p.with("consumer_timeout"), "must not be negative")
	}
}

func (h *Hook) validate(v *validator, p path, kind string) {
	n := 0
	if len(h.Command) > 0 {
		n++
		if h.Command[0] == "" {
			v.addf(p.with("command"), "empty program name")
		}
	}
	if h.HTTP != nil {
		n++
		if !strings.HasPrefix(h.HTTP.URL, "http://") && !strings.HasPrefix(h.HTTP.URL, "https://") {
			v.addf(p.with("http", "url"), "want an http(s) URL")
		}
		if h.HTTP.TokenEnv != "" && !envName.MatchString(h.HTTP.TokenEnv) {
			v.addf(p.with("http", "token_env"), "%q is not an environment variable name", h.HTTP.TokenEnv)
		}
	}
	if h.Signal != nil {
		n++
		if kind != "reload" {
			v.addf(p.with("signal"), "a signal hook can only reload")
		}
		if h.Signal.PIDFile == "" {
			v.addf(p.with("signal", "pid_file"), "pid_file is required")
		}
		switch strings.TrimPrefix(strings.ToUpper(h.Signal.Signal), "SIG") {
		case "", "HUP", "USR1", "USR2":
		default:
			v.addf(p.with("signal", "signal"), "unsupported signal %q (want HUP, USR1 or USR2)", h.Signal.Signal)
		}
	}
	if h.Kubernetes != nil {
		n++
		if kind != "reload" {
			v.addf(p.with("kubernetes"), "a kubernetes hook can only reload")
		}
		if h.Kubernetes.Deployment == "" {
			v.addf(p.with("kubernetes", "deployment"), "deployment is required")
		}
		if h.Kubernetes.Namespace == "" {
			h.Kubernetes.Namespace = "default"
		}
	}
	if n != 1 {
		v.addf(p, "hook needs exactly one of command, http, signal or kubernetes")
	}
	if h.Timeout < 0 {
		v.addf(p.with("timeout"), "must not be negative")
	}
}

// EnvName is the base name of the secret's environment variables.
func (s *Secret) EnvName() string {
	if s.Env != "" {
		return s.Env
	}
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s.Name))
}

func (r *RandomProvider) validate(v *validator, p path) {
	if r.Bytes == 0 {
		r.Bytes = 32
	}
	if r.Bytes < 16 || r.Bytes > 1024 {
		v.addf(p.with("bytes"), "bytes must be between 16 and 1024, got %d", r.Bytes)
	}
	switch r.Encoding {
	case "":
		r.Encoding = "base64url"
	case "hex", "base64", "base64url":
	default:
		v.addf(p.with("encoding"), "unknown encoding %q (want hex, base64 or base64url)", r.Encoding)
	}
}

func (c *Config) resolvePaths() {
	abs := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(c.Dir, *p)
		}
	}
	if c.Store.Type == "" {
		c.Store.Type = "file"
	}
	if c.Store.Type == "file" {
		if c.Store.File == nil {
			c.Store.File = &FileStore{}
		}
		abs(&c.Store.File.Dir, ".rotor/store")
		abs(&c.Store.File.Identity, ".rotor/identity.txt")
	}
	if c.Store.Type == "vault" && c.Store.Vault != nil {
		c.Store.Vault.resolvePaths(c.Dir)
	}
	if c.Server.TLS.CertFile != "" {
		abs(&c.Server.TLS.CertFile, "")
		abs(&c.Server.TLS.KeyFile, "")
	}
	abs(&c.Audit.Path, ".rotor/audit.log")
	abs(&c.Audit.SaltFile, ".rotor/audit.salt")
	// The anchor lives with the store by default, apart from the log.
	anchor := ".rotor/audit.head"
	if c.Store.Type == "file" {
		anchor = filepath.Join(c.Store.File.Dir, "audit.head")
	}
	abs(&c.Audit.Anchor, anchor)
	for i := range c.Secrets {
		c.Secrets[i].resolvePaths(c.Dir)
	}
}

func (s *Secret) resolvePaths(dir string) {
	if s.Exec != nil {
		s.Exec.resolvePaths(dir)
	}
	if s.Clerk != nil {
		for _, h := range []*Hook{s.Clerk.Mint, s.Clerk.Revoke} {
			if h != nil {
				resolveCommand(dir, h.Command)
			}
		}
	}
	for _, hs := range [][]Hook{s.Reload, s.Verify} {
		for i := range hs {
			if sg := hs[i].Signal; sg != nil && !filepath.IsAbs(sg.PIDFile) {
				sg.PIDFile = filepath.Join(dir, sg.PIDFile)
			}
			if k := hs[i].Kubernetes; k != nil && k.Kubeconfig != "" && !filepath.IsAbs(k.Kubeconfig) {
				k.Kubeconfig = filepath.Join(dir, k.Kubeconfig)
			}
		}
	}
}

// resolveCommand makes a relative program path with a directory part
// (./bin/mint) relative to dir; bare names are looked up in PATH.
func resolveCommand(dir string, argv []string) {
	if len(argv) == 0 {
		return
	}
	if prog := argv[0]; !filepath.IsAbs(prog) && strings.ContainsRune(prog, filepath.Separator) {
		argv[0] = filepath.Join(dir, prog)
	}
}
