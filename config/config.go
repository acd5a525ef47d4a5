// Package config loads and validates rotor.yaml.
//
// Decoding is strict: an unknown key is an error naming the key and its
// line. Validation collects every problem, each with its location
// (secrets[1].grace, line 14), and [Load] returns either a fully valid
// [Config] or an error; nothing is half-applied. Relative paths are resolved
// against the directory of the config file.
//
// # Backends own their options
//
// config owns the shape of rotor.yaml and nothing else. The blocks of a
// store (store.vault), a provider (secrets[i].clerk) or a Kubernetes hook
// are decoded into the backend package's own Options type; the backend
// defines their defaults and checks them in its Validate, reporting
// problems by field path ([field.List]), which config turns into the YAML
// path and line (line 7: secrets[1].clerk.timeout: …). A block's keys are
// the Options fields' names in snake_case (see decodeOptions). The
// providers a secret can name are one table, in providers.go.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/serviceurl"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/notify"
	"github.com/rotor-dev/rotor/schedule"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/awssm"
	"github.com/rotor-dev/rotor/store/vault"
	"github.com/rotor-dev/rotor/trigger"
	"github.com/rotor-dev/rotor/trigger/kubernetes"
)

// Default values applied where the config is silent.
const (
	DefaultEvery = 720 * time.Hour // 30 days
	DefaultGrace = 24 * time.Hour
	DefaultLease = 15 * time.Minute
)

// Floors of the schedule. A secret rotated more often than hourly (every,
// or the shortest gap of its cron expression) or whose previous key stays
// valid for less than a minute is a typo outside tests (every: 30m for
// 30d), and it would revoke keys consumers have not reloaded yet;
// defaults.allow_short_intervals: true lifts both floors, for tests.
const (
	MinEvery = time.Hour
	MinGrace = time.Minute
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

	// Notify configures notifications (Slack, webhooks): the notify block
	// decoded into the notify package's Options, with defaults applied;
	// NotifyBlock is the block as written.
	Notify      notify.Options `yaml:"-"`
	NotifyBlock yaml.Node      `yaml:"notify"`
}

// StoreConfig selects and configures the secret store.
type StoreConfig struct {
	Type string     `yaml:"type"` // file (default), vault, awssm
	File *FileStore `yaml:"file"`
	// Vault and AWSSM are the vault and awssm blocks, with the store's
	// defaults applied; set for the store Type names.
	Vault *vault.Options `yaml:"-"`
	AWSSM *awssm.Options `yaml:"-"`
	// Blocks catches the vault and awssm blocks as written; Parse decodes
	// them and reports any other key as unknown.
	Blocks map[string]yaml.Node `yaml:",inline"`
}

// FileStore configures the embedded age-encrypted file store.
type FileStore struct {
	Dir      string `yaml:"dir"`      // default .rotor/store
	Identity string `yaml:"identity"` // age identity file, default .rotor/identity.txt
}

// AuditConfig configures the audit log.
type AuditConfig struct {
	// Chain is where the audit chain lives: "store" (the shared chain in
	// the store's trust domain, the default with a Vault or AWS store) or
	// "file" (the local log at Path, the default with the file store).
	Chain string `yaml:"chain"`
	// Table is the DynamoDB table of the shared chain with an AWS store
	// (partition key "pk", a string); default "rotor-audit".
	Table string `yaml:"table"`
	// Endpoint overrides the DynamoDB endpoint, for local emulators.
	Endpoint string `yaml:"endpoint"`
	// Local also writes every event to the local log at Path when the
	// chain lives in the store: an extra copy on this machine.
	Local bool `yaml:"local"`
	// Sinks receive every record as it is written (shipping); a sink
	// that is down never blocks or fails an operation.
	Sinks    []AuditSink `yaml:"sinks"`
	Path     string      `yaml:"path"`      // default .rotor/audit.log
	SaltFile string      `yaml:"salt_file"` // default .rotor/audit.salt
	// Anchor is where the chain head is kept, apart from the log, so a
	// truncated tail is detected. Default: audit.head in the file store's
	// directory, else .rotor/audit.head.
	Anchor string `yaml:"anchor"`
}

// AuditSink is one place audit records are shipped to.
type AuditSink struct {
	// Type is stdout (JSON lines), syslog (RFC 5424) or otlp
	// (OpenTelemetry logs over OTLP/HTTP).
	Type string `yaml:"type"`
	// Network is tcp (default) or udp, and Address host:port, for syslog.
	Network string `yaml:"network"`
	Address string `yaml:"address"`
	// Endpoint is the OTLP/HTTP logs URL, for otlp; empty: the standard
	// OTEL_EXPORTER_OTLP_* environment (see sinks.OTLPOptions).
	Endpoint string `yaml:"endpoint"`
	// Buffer is how many records may wait for the sink (default 10000).
	Buffer int `yaml:"buffer"`
}

// Defaults apply to every secret that does not override them.
type Defaults struct {
	Every   Duration `yaml:"every"`
	Grace   Duration `yaml:"grace"`
	Lease   Duration `yaml:"lease"`
	Jitter  Duration `yaml:"jitter"`
	Windows []Window `yaml:"windows"`
	// AllowShortIntervals lifts the floors MinEvery and MinGrace, for
	// tests and drills.
	AllowShortIntervals bool `yaml:"allow_short_intervals"`
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

	// ProviderOptions are the provider's options: its block (named like
	// the provider with '-' as '_': clerk_machine) decoded into the
	// provider package's Options (random.Options, clerk.Options…), with
	// defaults applied. [Secret.NewProvider] builds the provider from them.
	ProviderOptions any `yaml:"-"`
	// Blocks catches the provider's block as written; Parse decodes it
	// and reports any other key as unknown.
	Blocks map[string]yaml.Node `yaml:",inline"`

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
	// id (for up to ConsumerTimeout, default 2m, or longer for a consumer
	// reporting a longer refresh interval; see trigger.Consumers), and
	// revoke refuses a key any of them still reports.
	Consumers       []string `yaml:"consumers"`
	ConsumerTimeout Duration `yaml:"consumer_timeout"`
}

// Hook is a reload trigger or a verification check: exactly one of
// Command, HTTP, Signal or Kubernetes.
type Hook struct {
	// Command is run without a shell. Its environment carries
	// ROTOR_SECRET, ROTOR_STEP and ROTOR_KEY_ID, never a value.
	Command []string    `yaml:"command"`
	HTTP    *HTTPHook   `yaml:"http"`
	Signal  *SignalHook `yaml:"signal"`
	// Kubernetes restarts a Deployment the way `kubectl rollout restart`
	// does and waits for the rollout (reload only): the kubernetes block,
	// with the trigger's defaults applied.
	Kubernetes *kubernetes.Options `yaml:"-"`
	Timeout    Duration            `yaml:"timeout"` // default 30s (http verify: 60s)
	// PassEnv names variables of those rotor consumed itself (see
	// [Config.ConsumedEnv]) that a command hook still gets, e.g.
	// [VAULT_ADDR, VAULT_TOKEN] for a hook running the vault CLI.
	PassEnv []string `yaml:"pass_env"`
	// Blocks catches the kubernetes block as written; Parse decodes it and
	// reports any other key as unknown.
	Blocks map[string]yaml.Node `yaml:",inline"`
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

// Secret returns the secret called name, or an [*UnknownSecretError]
// when the config has none of that name.
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
	return nil, &UnknownSecretError{Name: name, Path: c.Path, Configured: names}
}

// UnknownSecretError is the error of [Config.Secret] for a name the config
// does not list. It matches [store.ErrNotFound] (errors.Is): to a caller,
// a secret rotor is not configured for does not exist, whatever the store
// holds under that name.
type UnknownSecretError struct {
	// Name is the name asked for.
	Name string
	// Path is the config file.
	Path string
	// Configured are the names the config lists, in its order.
	Configured []string
}

// maxNamesShown bounds the configured names an [UnknownSecretError]
// message lists: a config of thousands of secrets must not make one
// typo a page of output.
const maxNamesShown = 10

func (e *UnknownSecretError) Error() string {
	names := e.Configured
	more := ""
	if len(names) > maxNamesShown {
		names, more = names[:maxNamesShown], fmt.Sprintf(" and %d more", len(e.Configured)-maxNamesShown)
	}
	return fmt.Sprintf("no secret %q in %s (configured: %s%s)", e.Name, e.Path, strings.Join(names, ", "), more)
}

// Is reports whether target is [store.ErrNotFound].
func (e *UnknownSecretError) Is(target error) bool { return target == store.ErrNotFound }

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
	if unknown := c.unknownKeys(v); len(unknown) > 0 {
		// Reported like the decoder's own unknown fields.
		return nil, fmt.Errorf("unmarshal errors:\n  %s", strings.Join(unknown, "\n  "))
	}
	c.Dir = dir
	c.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	c.resolvePaths()
	return &c, nil
}

// storeBlocks are the store types whose options are a backend's Options.
var storeBlocks = []string{"vault", "awssm"}

// unknownKeys reports the keys the inline Blocks maps caught that are no
// backend's block, as the decoder reports unknown fields.
func (c *Config) unknownKeys(v *validator) []string {
	var msgs []string
	check := func(p field.Path, blocks map[string]yaml.Node, typ string, known func(string) bool) {
		for _, key := range slices.Sorted(maps.Keys(blocks)) {
			if !known(key) {
				msgs = append(msgs, fmt.Sprintf("line %d: field %s not found in type %s", v.line(p.Child(key)), key, typ))
			}
		}
	}
	check(field.NewPath("store"), c.Store.Blocks, "config.StoreConfig", func(k string) bool { return slices.Contains(storeBlocks, k) })
	for i := range c.Secrets {
		s := &c.Secrets[i]
		p := field.NewPath("secrets", i)
		check(p, s.Blocks, "config.Secret", func(k string) bool { _, ok := providerBlock(k); return ok })
		for _, hs := range []struct {
			kind  string
			hooks []Hook
		}{{"reload", s.Reload}, {"verify", s.Verify}} {
			for j := range hs.hooks {
				check(p.Child(hs.kind, j), hs.hooks[j].Blocks, "config.Hook", func(k string) bool { return k == "kubernetes" })
			}
		}
	}
	return msgs
}

func (c *Config) validate(v *validator) {
	st := &c.Store
	p := field.NewPath("store")
	vaultBlock, hasVault := st.Blocks["vault"]
	awssmBlock, hasAWSSM := st.Blocks["awssm"]
	var errs field.List
	switch st.Type {
	case "", "file":
		if hasVault || hasAWSSM {
			v.addf(p, "store type is file but a vault or awssm block is set")
		}
	case "vault":
		if o, ok := decodeBlock[vault.Options](nodeOrNil(vaultBlock, hasVault), p.Child("vault"), c.Dir, &errs); ok {
			st.Vault = &o
		}
	case "awssm":
		if o, ok := decodeBlock[awssm.Options](nodeOrNil(awssmBlock, hasAWSSM), p.Child("awssm"), c.Dir, &errs); ok {
			st.AWSSM = &o
		}
	default:
		v.addf(p.Child("type"), "unknown store type %q (want file, vault or awssm)", st.Type)
	}
	if c.NotifyBlock.Kind != 0 {
		if o, ok := decodeBlock[notify.Options](&c.NotifyBlock, field.NewPath("notify"), c.Dir, &errs); ok {
			c.Notify = o
		}
	}
	v.addList(errs)
	switch {
	case c.Audit.Chain != "" && c.Audit.Chain != "store" && c.Audit.Chain != "file":
		v.addf(field.NewPath("audit", "chain"), "unknown audit chain %q (want store or file)", c.Audit.Chain)
	case c.Audit.Chain == "store" && c.Store.Type == "file":
		v.addf(field.NewPath("audit", "chain"), "the file store keeps the audit chain in a local file (chain: file)")
	}
	if c.Audit.Endpoint != "" {
		if err := serviceurl.Check(c.Audit.Endpoint, "http://localhost:8000", "audit records"); err != nil {
			v.addf(field.NewPath("audit", "endpoint"), "%v", err)
		}
	}
	for i, sk := range c.Audit.Sinks {
		p := field.NewPath("audit", "sinks", i)
		switch {
		case sk.Type != "stdout" && sk.Type != "syslog" && sk.Type != "otlp":
			v.addf(p, "unknown sink type %q (want stdout, syslog or otlp)", sk.Type)
		case sk.Type == "syslog" && sk.Address == "":
			v.addf(p, "a syslog sink needs an address (host:port)")
		case sk.Endpoint != "" && sk.Type != "otlp":
			v.addf(p.Child("endpoint"), "only an otlp sink has an endpoint")
		case sk.Endpoint != "" && !httpURL(sk.Endpoint):
			v.addf(p.Child("endpoint"), "invalid URL %q (want e.g. https://collector.example.com:4318/v1/logs)", sk.Endpoint)
		case sk.Network != "" && sk.Network != "tcp" && sk.Network != "udp":
			v.addf(p, "network %q: want tcp or udp", sk.Network)
		case sk.Buffer < 0:
			v.addf(p, "buffer must not be negative")
		}
	}
	for _, d := range []struct {
		name string
		val  Duration
	}{{"every", c.Defaults.Every}, {"grace", c.Defaults.Grace}, {"lease", c.Defaults.Lease}} {
		if d.val < 0 {
			v.addf(field.NewPath("defaults", d.name), "must not be negative")
		}
	}
	if len(c.Secrets) == 0 {
		v.addf(field.NewPath("secrets"), "no secrets configured")
	}
	c.Server.validate(v, field.NewPath("server"))
	seen := map[string]int{}
	envVars := map[string]int{} // variable name → the secret that writes it
	for i := range c.Secrets {
		s := &c.Secrets[i]
		p := field.NewPath("secrets", i)
		for _, name := range s.EnvVarNames() {
			if j, dup := envVars[name]; dup && j != i {
				v.addf(p.Child("env"), "`rotor run` would write %s for this secret and for secrets[%d] (%s); set env on one of them", name, j, c.Secrets[j].Name)
				break
			}
			envVars[name] = i
		}
		if err := store.ValidateName(s.Name); err != nil {
			v.addf(p.Child("name"), "%v", err)
		} else if j, dup := seen[s.Name]; dup {
			v.addf(p.Child("name"), "secret %q is already defined at secrets[%d]", s.Name, j)
		}
		seen[s.Name] = i
		s.validate(v, p, c.Dir)
		pol := c.Policy(s)
		if s.Cron == "" && pol.Grace >= pol.Every {
			v.addf(p.Child("grace"), "grace (%s) must be shorter than every (%s), or two rotations would overlap", pol.Grace, pol.Every)
		}
		if s.Cron != "" && s.Every != 0 {
			v.addf(p.Child("cron"), "set either every or cron, not both")
		}
		if !c.Defaults.AllowShortIntervals {
			c.checkFloors(v, s, p)
		}
		if _, err := c.buildSchedule(s); err != nil {
			switch {
			case s.Cron != "":
				if _, cerr := schedule.ParseCron(s.Cron); cerr != nil {
					v.addf(p.Child("cron"), "%v", cerr)
					break
				}
				fallthrough
			default:
				v.addf(p.Child("windows"), "%v", err)
			}
		}
		if s.Jitter < 0 {
			v.addf(p.Child("jitter"), "must not be negative")
		}
		if pol.Lease < time.Second {
			v.addf(p.Child("lease"), "lease (%s) must be at least 1s", pol.Lease)
		}
	}
}

// checkFloors reports an every, a cron expression or a grace below the
// floors, at the key that set it (the secret's own, else the default's).
func (c *Config) checkFloors(v *validator, s *Secret, p field.Path) {
	pol := c.Policy(s)
	at := func(own Duration, key string) field.Path {
		if own != 0 {
			return p.Child(key)
		}
		return field.NewPath("defaults", key)
	}
	const lift = "set defaults.allow_short_intervals: true only for tests"
	if s.Cron == "" && pol.Every < MinEvery {
		v.addf(at(s.Every, "every"), "every (%s) is below the floor of %s: rotating more often than hourly is a mistake outside tests (%s)", pol.Every, MinEvery, lift)
	}
	if s.Cron != "" {
		if gap, ok := cronGap(s.Cron); ok && gap < MinEvery {
			v.addf(p.Child("cron"), "cron %q fires %s apart, below the floor of %s (%s)", s.Cron, gap, MinEvery, lift)
		}
	}
	if pol.Grace < MinGrace {
		v.addf(at(s.Grace, "grace"), "grace (%s) is below the floor of %s: consumers could not reload before the previous key is revoked (%s)", pol.Grace, MinGrace, lift)
	}
}

// cronGap returns the shortest time between two firings of the cron
// expression over a year of firings (at most 1000), or false when it
// does not parse (reported elsewhere).
func cronGap(expr string) (time.Duration, bool) {
	cs, err := schedule.ParseCron(expr)
	if err != nil {
		return 0, false
	}
	t := cs.Next(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	end := t.AddDate(1, 0, 0)
	gap := time.Duration(1<<63 - 1)
	for i := 0; i < 1000 && t.Before(end); i++ {
		next := cs.Next(t)
		gap = min(gap, next.Sub(t))
		t = next
	}
	return gap, true
}

// nodeOrNil returns &n when ok, else nil.
func nodeOrNil(n yaml.Node, ok bool) *yaml.Node {
	if !ok {
		return nil
	}
	return &n
}

func (s *Secret) validate(v *validator, p field.Path, dir string) {
	kind, known := providerNamed(s.Provider)
	for _, key := range slices.Sorted(maps.Keys(s.Blocks)) {
		if k, ok := providerBlock(key); ok && (!known || k.name != kind.name) {
			v.addf(p.Child(key), "block %s does not match provider %q", key, s.Provider)
		}
	}
	switch {
	case known:
		block, ok := s.Blocks[kind.block()]
		var errs field.List
		if o, ok := kind.options(nodeOrNil(block, ok), p.Child(kind.block()), dir, &errs); ok {
			s.ProviderOptions = o
		}
		v.addList(errs)
	case s.Provider == "":
		v.addf(p, "secret %q has no provider (want %s)", s.Name, providerNames())
	default:
		v.addf(p.Child("provider"), "unknown provider %q (want %s)", s.Provider, providerNames())
	}
	for _, d := range []struct {
		name string
		val  Duration
	}{{"every", s.Every}, {"grace", s.Grace}, {"lease", s.Lease}} {
		if d.val < 0 {
			v.addf(p.Child(d.name), "must not be negative")
		}
	}
	if s.Env != "" && !envName.MatchString(s.Env) {
		v.addf(p.Child("env"), "%q is not an environment variable name", s.Env)
	} else if s.Env == "" && s.Name != "" && !envName.MatchString(s.EnvName()) {
		v.addf(p.Child("name"), "%q does not make an environment variable name; set env", s.Name)
	}
	for kind, hooks := range map[string][]Hook{"reload": s.Reload, "verify": s.Verify} {
		for i := range hooks {
			hooks[i].validate(v, p.Child(kind, i), kind, dir)
		}
	}
	for i, u := range s.Consumers {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			v.addf(p.Child("consumers", i), "consumer %q is not an http(s) URL", u)
		}
	}
	if s.ConsumerTimeout < 0 {
		v.addf(p.Child("consumer_timeout"), "must not be negative")
	}
}

func (h *Hook) validate(v *validator, p field.Path, kind, dir string) {
	n := 0
	if len(h.Command) > 0 {
		n++
		if h.Command[0] == "" {
			v.addf(p.Child("command"), "empty program name")
		}
	}
	if h.HTTP != nil {
		n++
		if !strings.HasPrefix(h.HTTP.URL, "http://") && !strings.HasPrefix(h.HTTP.URL, "https://") {
			v.addf(p.Child("http", "url"), "want an http(s) URL")
		}
		if h.HTTP.TokenEnv != "" && !envName.MatchString(h.HTTP.TokenEnv) {
			v.addf(p.Child("http", "token_env"), "%q is not an environment variable name", h.HTTP.TokenEnv)
		}
	}
	if h.Signal != nil {
		n++
		if kind != "reload" {
			v.addf(p.Child("signal"), "a signal hook can only reload")
		}
		if h.Signal.PIDFile == "" {
			v.addf(p.Child("signal", "pid_file"), "pid_file is required")
		}
		switch strings.TrimPrefix(strings.ToUpper(h.Signal.Signal), "SIG") {
		case "", "HUP", "USR1", "USR2":
		default:
			v.addf(p.Child("signal", "signal"), "unsupported signal %q (want HUP, USR1 or USR2)", h.Signal.Signal)
		}
	}
	if block, ok := h.Blocks["kubernetes"]; ok {
		n++
		if kind != "reload" {
			v.addf(p.Child("kubernetes"), "a kubernetes hook can only reload")
		}
		var errs field.List
		if o, ok := decodeBlock[kubernetes.Options](&block, p.Child("kubernetes"), dir, &errs); ok {
			h.Kubernetes = &o
		}
		v.addList(errs)
	}
	if n != 1 {
		v.addf(p, "hook needs exactly one of command, http, signal or kubernetes")
	}
	if h.Timeout < 0 {
		v.addf(p.Child("timeout"), "must not be negative")
	}
	for i, name := range h.PassEnv {
		if !envName.MatchString(name) {
			v.addf(p.Child("pass_env", i), "%q is not an environment variable name", name)
		}
	}
	if len(h.PassEnv) > 0 && len(h.Command) == 0 {
		v.addf(p.Child("pass_env"), "only a command hook starts a process with an environment")
	}
}

// envConsumer is implemented by the Options of backends that read
// environment variables of their own (credentials, mostly).
type envConsumer interface {
	ConsumedEnv() []string
}

// ConsumedEnv lists the environment variables rotor reads for itself
// under c: its own settings (ROTOR_*), the store's credentials
// (vault.Options.ConsumedEnv, awssm.Options.ConsumedEnv), what providers
// read (a ConsumedEnv method on their Options: clerk-machine's instance
// key) and the tokens of HTTP hooks (token_env). rotor keeps them from
// the processes it starts, hooks and `rotor run` children, unless told to
// pass one (a hook's pass_env, rotor run --pass-env). A name ending in
// '*' is a prefix.
func (c *Config) ConsumedEnv() []string {
	env := []string{"ROTOR_*"}
	if o := c.Store.Vault; o != nil {
		env = append(env, o.ConsumedEnv()...)
	}
	if o := c.Store.AWSSM; o != nil {
		env = append(env, o.ConsumedEnv()...)
	}
	env = append(env, c.Notify.ConsumedEnv()...)
	for i := range c.Secrets {
		s := &c.Secrets[i]
		if ec, ok := s.ProviderOptions.(envConsumer); ok {
			env = append(env, ec.ConsumedEnv()...)
		}
		for _, hs := range [][]Hook{s.Reload, s.Verify} {
			for _, h := range hs {
				if h.HTTP != nil && h.HTTP.TokenEnv != "" {
					env = append(env, h.HTTP.TokenEnv)
				}
			}
		}
	}
	slices.Sort(env)
	return slices.Compact(env)
}

// EnvName is the base name of the secret's environment variables.
func (s *Secret) EnvName() string {
	if s.Env != "" {
		return s.Env
	}
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s.Name))
}

// EnvVarNames lists every environment variable `rotor run` writes for
// the secret (see keyring.EnvVars).
func (s *Secret) EnvVarNames() []string {
	n := s.EnvName()
	return []string{n, n + keyring.EnvPrimary, n + keyring.EnvSecondary, n + keyring.EnvKeyID, n + keyring.EnvSecondaryKeyID}
}

// envName matches environment variable names.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// resolvePaths makes the paths config owns absolute, relative to the
// config file's directory; backends' blocks were resolved as they were
// decoded.
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
	if c.Server.TLS.CertFile != "" {
		abs(&c.Server.TLS.CertFile, "")
		abs(&c.Server.TLS.KeyFile, "")
	}
	if c.Audit.Chain == "" {
		c.Audit.Chain = "file"
		if c.Store.Type == "vault" || c.Store.Type == "awssm" {
			c.Audit.Chain = "store"
		}
	}
	if c.Audit.Table == "" {
		c.Audit.Table = "rotor-audit"
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
		for _, hs := range [][]Hook{c.Secrets[i].Reload, c.Secrets[i].Verify} {
			for j := range hs {
				if sg := hs[j].Signal; sg != nil && !filepath.IsAbs(sg.PIDFile) {
					sg.PIDFile = filepath.Join(c.Dir, sg.PIDFile)
				}
			}
		}
	}
}

// httpURL says whether raw is an absolute http or https URL with a host
// and no user info.
func httpURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// consumerTimeoutWarning explains why s's consumer_timeout may roll back
// rotations that work: it is too short for a consumer on the keyring
// SDK's default polling interval. Rotor waits longer for consumers that
// report their interval (trigger.Consumers), but not for those that do
// not (older SDKs, other health endpoints).
func consumerTimeoutWarning(s *Secret) string {
	need := keyring.DefaultInterval + trigger.AdoptionMargin
	if len(s.Consumers) == 0 || s.ConsumerTimeout == 0 || time.Duration(s.ConsumerTimeout) >= need {
		return ""
	}
	return fmt.Sprintf("consumer_timeout %s cannot cover the keyring SDK's default refresh interval of %s plus a %s margin: "+
		"a consumer that does not report its interval (refresh_interval_seconds) may adopt the new key after rotor gave up, and the rotation is rolled back; "+
		"set consumer_timeout to at least %s", time.Duration(s.ConsumerTimeout), keyring.DefaultInterval, trigger.AdoptionMargin, need)
}
