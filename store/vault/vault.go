package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/store"
)

// Field names of a stored version; see the package documentation.
const (
	fieldCurrent           = "current"
	fieldCurrentKeyID      = "current_key_id"
	fieldPrevious          = "previous"
	fieldPreviousKeyID     = "previous_key_id"
	fieldPreviousExpiresAt = "previous_expires_at"
	fieldWrittenBy         = "written_by"
	fieldFormat            = "rotor_format"
	fieldRotor             = "rotor"

	formatV1 = "1"
)

var (
	_ store.Store  = (*Store)(nil)
	_ store.Lister = (*Store)(nil)
)

// Store keeps rotor's secrets in a Vault KV v2 mount. It is safe for
// concurrent use. Close it to stop renewing its token.
type Store struct {
	client *api.Client
	addr   string
	mount  string
	prefix string
	// maxVersions is the KV max_versions set on every secret written.
	maxVersions int
	// writer overrides written_by; identity is the fallback learnt at login.
	writer   string
	identity string
	log      *slog.Logger
	metaWarn sync.Once // logs the first failed metadata patch
	// desc holds the descriptions of versions written during an
	// operation and not yet patched into the metadata (metadata.go).
	desc describer

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	revoke    bool // revoke the token on Close: rotor obtained it by logging in
}

// IdleConns is how many connections to Vault the store's client keeps
// open between requests. The Vault client's default keeps GOMAXPROCS+1,
// while `rotor rotate --due` runs 16 rotations at once by default: every
// request past the idle pool opened a new TCP connection and closed it
// after, costing rotor and Vault a handshake and the closer a TIME_WAIT
// socket each time. The pool only holds connections the parallelism
// opened, so a larger bound costs nothing when it is not used.
const IdleConns = 64

// Option adjusts how [New] wires the store into a program (logging,
// identity, test doubles). What the operator configures is in [Options].
type Option func(*options)

type options struct {
	logger    *slog.Logger
	writer    string
	getenv    func(string) string
	http      *http.Client
	apiConfig func(*api.Config)
}

// WithLogger sets the logger for token renewal and re-login events.
// The default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithWriter sets the identity recorded as written_by in every version the
// store writes (for example "ci:github.com/org/app" or "user:alice").
func WithWriter(identity string) Option { return func(o *options) { o.writer = identity } }

// WithGetenv replaces os.Getenv for the variables rotor reads itself:
// VAULT_TOKEN, VAULT_SECRET_ID, ACTIONS_ID_TOKEN_REQUEST_URL,
// ACTIONS_ID_TOKEN_REQUEST_TOKEN, and HOME (or USERPROFILE) to find
// ~/.vault-token. (The Vault client still reads its own
// settings such as VAULT_ADDR and VAULT_CACERT from the process
// environment.)
func WithGetenv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// WithHTTPClient sets the HTTP client used to request GitHub Actions ID
// tokens. It is not used to talk to Vault; see [WithAPIConfig].
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// WithAPIConfig lets the caller adjust the Vault client configuration
// (TLS, timeouts, retries) after rotor has applied its [Options].
func WithAPIConfig(f func(*api.Config)) Option { return func(o *options) { o.apiConfig = f } }

// New builds a Vault client as cfg says, logs in and returns the store.
// Empty fields of cfg take their defaults. The token is renewed in the
// background until [Store.Close].
func New(ctx context.Context, cfg Options, opts ...Option) (*Store, error) {
	o := options{
		logger: slog.New(slog.DiscardHandler),
		getenv: os.Getenv,
		http:   &http.Client{Timeout: 30 * time.Second},
	}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}

	apiCfg := api.DefaultConfig()
	if apiCfg.Error != nil {
		return nil, fmt.Errorf("vault client config: %w", apiCfg.Error)
	}
	if cfg.Address != "" {
		apiCfg.Address = cfg.Address
	}
	if t, ok := apiCfg.HttpClient.Transport.(*http.Transport); ok {
		t.MaxIdleConns = max(t.MaxIdleConns, IdleConns)
		t.MaxIdleConnsPerHost = IdleConns
	}
	if o.apiConfig != nil {
		o.apiConfig(apiCfg)
	}
	client, err := api.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", apiCfg.Address, err)
	}
	client.ClearToken() // set from VAULT_TOKEN by NewClient; the auth method decides
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}

	a, err := newAuthenticator(cfg.Auth, o.getenv, o.http)
	if err != nil {
		return nil, err
	}
	s := &Store{
		client: client,
		addr:   client.Address(),
		mount:  cfg.Mount,
		prefix: cfg.Prefix,
		writer: o.writer,

		maxVersions: cfg.MaxVersions,
		log:         o.logger,
		done:        make(chan struct{}),
		revoke:      a.method != AuthToken,
	}
	secret, err := a.login(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("log in to vault %s (auth method %s): %w", s.addr, a.method, err)
	}
	s.identity = s.lookupIdentity(ctx, a.method)

	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	go s.keepAlive(kctx, a, secret)
	return s, nil
}

// Close patches the descriptions still held back into the metadata (see
// [Store.FlushDescriptions]), stops the token renewal and, when the store
// logged in itself, revokes its token. A token supplied by the operator is left alone. Close
// is idempotent; the store must not be used after it.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.FlushDescriptions(context.Background())
		s.stop()
		<-s.done
		if !s.revoke {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := s.client.Auth().Token().RevokeSelfWithContext(ctx, ""); e != nil {
			err = fmt.Errorf("revoke vault token: %w", s.describe(e))
		}
		s.client.ClearToken()
	})
	return err
}

// Address returns the address of the Vault server.
func (s *Store) Address() string { return s.addr }

// KV returns the store's authenticated client, KV mount and path prefix,
// for data kept next to the secrets: the shared audit chain
// (audit/vaultchain) lives under <prefix>/_audit.
func (s *Store) KV() (client *api.Client, mount, prefix string) { return s.client, s.mount, s.prefix }

// Load implements [store.Store].
func (s *Store) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, store.NoVersion, err
	}
	kv, err := s.client.Logical().ReadWithContext(ctx, s.dataPath(name))
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, s.describe(err))
	}
	data, version, err := kvData(kv)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("load %s: %s: %w", name, s.dataPath(name), err)
	}
	if data == nil {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, store.ErrNotFound)
	}
	sec, err := s.decode(name, data)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, err)
	}
	return sec, formatVersion(version), nil
}

// Save implements [store.Store].
func (s *Store) Save(ctx context.Context, sec *store.Secret, expected store.Version) (store.Version, error) {
	if sec == nil {
		return store.NoVersion, errors.New("save: nil secret")
	}
	if err := sec.Validate(); err != nil {
		return store.NoVersion, fmt.Errorf("save: %w", err)
	}
	cas, err := parseVersion(expected)
	if err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", sec.Name, err)
	}
	data, err := s.encode(sec)
	if err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", sec.Name, err)
	}
	v, err := s.write(ctx, sec.Name, data, cas)
	if errors.Is(err, errCASMismatch) && cas == 0 {
		// cas=0 only matches a path without versions. A secret whose
		// latest version is deleted or destroyed does not exist for Load,
		// so creating it again means cas=<that version>: still atomic,
		// since any write in between changes the version.
		deleted, derr := s.deletedLatest(ctx, sec.Name)
		if derr != nil {
			return store.NoVersion, fmt.Errorf("save %s: %w", sec.Name, derr)
		}
		if deleted != 0 {
			v, err = s.write(ctx, sec.Name, data, deleted)
		}
	}
	switch {
	case errors.Is(err, errCASMismatch) && cas == 0:
		return store.NoVersion, fmt.Errorf("save %s: secret already exists: %w", sec.Name, store.ErrConflict)
	case errors.Is(err, errCASMismatch):
		return store.NoVersion, fmt.Errorf("save %s: version %s is no longer current: %w", sec.Name, expected, store.ErrConflict)
	case err != nil:
		return store.NoVersion, fmt.Errorf("save %s: %w", sec.Name, err)
	}
	s.describeVersion(ctx, sec, v, data[fieldWrittenBy].(string))
	return formatVersion(v), nil
}

// List implements [store.Lister]. It lists the secrets under the prefix
// whose latest version is live, consistent with Load.
func (s *Store) List(ctx context.Context) ([]string, error) {
	p := s.mount + "/metadata/" + s.prefix
	res, err := s.client.Logical().ListWithContext(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list: %w", s.describe(err))
	}
	var names []string
	if res == nil {
		return names, nil
	}
	keys, _ := res.Data["keys"].([]any)
	for _, k := range keys {
		name, _ := k.(string)
		if strings.HasSuffix(name, "/") || store.ValidateName(name) != nil {
			continue // a sub-folder or a path rotor did not write
		}
		md, err := s.metadata(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		if md != nil && md.live() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// write stores data at name with the given cas and returns the new version.
func (s *Store) write(ctx context.Context, name string, data map[string]any, cas uint64) (uint64, error) {
	res, err := s.client.Logical().WriteWithContext(ctx, s.dataPath(name), map[string]any{
		"data":    data,
		"options": map[string]any{"cas": cas},
	})
	if err != nil {
		if isCASMismatch(err) {
			return 0, errCASMismatch
		}
		return 0, s.describe(err)
	}
	if res == nil {
		return 0, fmt.Errorf("vault %s: write to %s returned no version: is %s a KV version 2 mount?", s.addr, s.dataPath(name), s.mount)
	}
	v, err := number(res.Data["version"])
	if err != nil {
		return 0, fmt.Errorf("vault %s: write to %s: version: %w", s.addr, s.dataPath(name), err)
	}
	return v, nil
}

// deletedLatest returns the version number of name's latest version if it
// is deleted or destroyed, and 0 if it is live or there is none.
func (s *Store) deletedLatest(ctx context.Context, name string) (uint64, error) {
	kv, err := s.client.Logical().ReadWithContext(ctx, s.dataPath(name))
	if err != nil {
		return 0, s.describe(err)
	}
	data, version, err := kvData(kv)
	if err != nil || data != nil {
		return 0, err
	}
	return version, nil
}

func (s *Store) dataPath(name string) string { return s.mount + "/data/" + s.prefix + "/" + name }

func (s *Store) metadataPath(name string) string {
	return s.mount + "/metadata/" + s.prefix + "/" + name
}

// encode lays s out as the fields of one KV version.
func (s *Store) encode(sec *store.Secret) (map[string]any, error) {
	blob, err := json.Marshal(sec)
	if err != nil {
		// json reports types, not values; keep it that way by not
		// passing err's text through anyway.
		return nil, errors.New("encode secret as JSON")
	}
	data := map[string]any{
		fieldFormat:    formatV1,
		fieldRotor:     string(blob),
		fieldWrittenBy: s.writtenBy(sec),
	}
	if k := sec.Current; k != nil {
		data[fieldCurrent] = k.Value
		data[fieldCurrentKeyID] = k.ID
	}
	if k := sec.Previous; k != nil {
		data[fieldPrevious] = k.Value
		data[fieldPreviousKeyID] = k.ID
		if !k.ExpiresAt.IsZero() {
			data[fieldPreviousExpiresAt] = k.ExpiresAt.UTC().Format(time.RFC3339)
		}
	}
	return data, nil
}

// decode reads the secret called name back from a version's fields.
func (s *Store) decode(name string, data map[string]any) (*store.Secret, error) {
	blob, ok := data[fieldRotor].(string)
	if !ok {
		return nil, fmt.Errorf("%s has no %q field: not written by rotor", s.dataPath(name), fieldRotor)
	}
	if f, _ := data[fieldFormat].(string); f != formatV1 {
		return nil, fmt.Errorf("%s: unsupported %s %q (this rotor reads %q)", s.dataPath(name), fieldFormat, f, formatV1)
	}
	var sec store.Secret
	if err := json.Unmarshal([]byte(blob), &sec); err != nil {
		// The JSON holds key values: report where, never what.
		return nil, fmt.Errorf("%s: field %q is not valid rotor JSON", s.dataPath(name), fieldRotor)
	}
	if sec.Name != name {
		return nil, fmt.Errorf("%s holds secret %q, not %q", s.dataPath(name), sec.Name, name)
	}
	return &sec, nil
}

func (s *Store) writtenBy(sec *store.Secret) string {
	switch {
	case s.writer != "":
		return s.writer
	case sec.Rotation != nil && sec.Rotation.Initiator != "":
		return sec.Rotation.Initiator
	}
	return s.identity
}

// lookupIdentity names the token's owner for written_by. It is best
// effort: a token without the default policy cannot look itself up.
func (s *Store) lookupIdentity(ctx context.Context, method string) string {
	res, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
	if err == nil && res != nil {
		if dn, _ := res.Data["display_name"].(string); dn != "" {
			return "vault:" + dn
		}
	}
	return "vault:" + method
}

// kvMetadata is the part of a KV v2 metadata response rotor uses.
type kvMetadata struct {
	current  uint64
	versions map[uint64]versionMetadata
	custom   map[string]string // custom_metadata
}

type versionMetadata struct {
	created   time.Time
	deleted   time.Time
	destroyed bool
}

// gone reports whether the version's data can no longer be read.
func (v versionMetadata) gone(now time.Time) bool {
	return v.destroyed || !v.deleted.IsZero() && !v.deleted.After(now)
}

// live reports whether the latest version can be read.
func (m *kvMetadata) live() bool {
	v, ok := m.versions[m.current]
	return ok && !v.gone(time.Now())
}

// metadata reads name's KV metadata; nil means the path does not exist.
func (s *Store) metadata(ctx context.Context, name string) (*kvMetadata, error) {
	res, err := s.client.Logical().ReadWithContext(ctx, s.metadataPath(name))
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", name, s.describe(err))
	}
	if res == nil || res.Data == nil {
		return nil, nil
	}
	bad := func(what string, err error) error {
		return fmt.Errorf("vault %s: metadata of %s: %s: %w", s.addr, name, what, err)
	}
	md := &kvMetadata{versions: map[uint64]versionMetadata{}, custom: map[string]string{}}
	if cm, ok := res.Data["custom_metadata"].(map[string]any); ok {
		for k, v := range cm {
			if s, ok := v.(string); ok {
				md.custom[k] = s
			}
		}
	}
	if md.current, err = number(res.Data["current_version"]); err != nil {
		return nil, bad("current_version", err)
	}
	versions, _ := res.Data["versions"].(map[string]any)
	for k, raw := range versions {
		n, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return nil, bad("version "+k, err)
		}
		m, _ := raw.(map[string]any)
		var vm versionMetadata
		if vm.created, err = timeField(m, "created_time"); err != nil {
			return nil, bad("version "+k, err)
		}
		if vm.deleted, err = timeField(m, "deletion_time"); err != nil {
			return nil, bad("version "+k, err)
		}
		vm.destroyed, _ = m["destroyed"].(bool)
		md.versions[n] = vm
	}
	return md, nil
}

// kvData splits a KV v2 data read into the version's fields and number.
// Fields are nil when there is no secret or its version is deleted or
// destroyed (Vault answers 404 with the metadata only).
func kvData(kv *api.Secret) (map[string]any, uint64, error) {
	if kv == nil || kv.Data == nil {
		return nil, 0, nil
	}
	var version uint64
	if md, ok := kv.Data["metadata"].(map[string]any); ok {
		v, err := number(md["version"])
		if err != nil {
			return nil, 0, fmt.Errorf("metadata version: %w", err)
		}
		version = v
	}
	data, _ := kv.Data["data"].(map[string]any)
	if data != nil && version == 0 {
		return nil, 0, errors.New("response has data but no version")
	}
	return data, version, nil
}

func timeField(m map[string]any, key string) (time.Time, error) {
	s, _ := m[key].(string)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", key, err)
	}
	return t, nil
}

// number reads a JSON number as the Vault client decodes it.
func number(v any) (uint64, error) {
	switch n := v.(type) {
	case json.Number:
		return strconv.ParseUint(n.String(), 10, 64)
	case float64:
		if n < 0 || n != float64(uint64(n)) {
			return 0, fmt.Errorf("not a version number: %v", n)
		}
		return uint64(n), nil
	case int:
		if n < 0 {
			return 0, fmt.Errorf("not a version number: %d", n)
		}
		return uint64(n), nil
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

func formatVersion(v uint64) store.Version { return store.Version(strconv.FormatUint(v, 10)) }

// parseVersion turns a Version into the cas parameter: 0 for NoVersion.
func parseVersion(v store.Version) (uint64, error) {
	if v == store.NoVersion {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid vault version %q: want a KV version number", string(v))
	}
	return n, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Version returns the version Load would return, from the secret's KV
// metadata alone: a consumer polling for changes (storesource.New)
// reads the values only when this changes, so a refresh of an unchanged
// secret is one metadata read. The app policy grants it; with a token
// that may not read metadata, Version fails and the poller falls back to
// Load. It wraps store.ErrNotFound for a secret that does not exist.
func (s *Store) Version(ctx context.Context, name string) (store.Version, error) {
	md, err := s.metadata(ctx, name)
	if err != nil {
		return store.NoVersion, err
	}
	if md == nil || md.current == 0 {
		return store.NoVersion, fmt.Errorf("vault %s: %s: %w", s.addr, name, store.ErrNotFound)
	}
	return store.Version(strconv.FormatUint(md.current, 10)), nil
}

// ServerTime returns the time Vault's HTTP Date header reports on a
// health request, for measuring clock skew (rotor doctor). The header has
// a resolution of one second.
func (s *Store) ServerTime(ctx context.Context) (time.Time, error) {
	resp, err := s.client.Logical().ReadRawWithContext(ctx, "sys/health")
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp == nil || resp.Response == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return time.Time{}, &UnreachableError{Addr: s.addr, Err: err}
	}
	d := resp.Header.Get("Date")
	if d == "" {
		return time.Time{}, fmt.Errorf("vault %s: health response has no Date header", s.addr)
	}
	t, perr := http.ParseTime(d)
	if perr != nil {
		return time.Time{}, fmt.Errorf("vault %s: Date header %q: %w", s.addr, d, perr)
	}
	return t, nil
}
