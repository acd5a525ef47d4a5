package awssm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/serviceurl"
	"github.com/rotor-dev/rotor/store"
)

// DefaultPrefix is prepended to every secret name unless [Options] says
// otherwise.
const DefaultPrefix = "rotor/"

// StateSuffix is appended to a secret's name to name its state secret.
const StateSuffix = "/rotor-state"

// SourceExternal is the [store.Key] Source of a value rotor found in the
// secret but did not write (a console edit, an AWS rotation Lambda).
const SourceExternal = "external"

// Initiator and Holder of a rotation rotor did not start (see the package
// documentation).
const (
	ExternalInitiator = "aws-secrets-manager"
	ExternalHolder    = "external (AWSPENDING set outside rotor)"
)

// externalLease is the lease of a rotation rotor did not start: it never
// expires, so rotor never takes such a rotation over.
var externalLease = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)

// maxName is Secrets Manager's limit on secret names.
const maxName = 512

// maxRecord is Secrets Manager's limit on a SecretString, in bytes.
const maxRecord = 65536

// api lists the Secrets Manager calls the store makes, so that tests can
// wrap or fake the client.
type api interface {
	CreateSecret(context.Context, *sm.CreateSecretInput, ...func(*sm.Options)) (*sm.CreateSecretOutput, error)
	DescribeSecret(context.Context, *sm.DescribeSecretInput, ...func(*sm.Options)) (*sm.DescribeSecretOutput, error)
	GetSecretValue(context.Context, *sm.GetSecretValueInput, ...func(*sm.Options)) (*sm.GetSecretValueOutput, error)
	ListSecrets(context.Context, *sm.ListSecretsInput, ...func(*sm.Options)) (*sm.ListSecretsOutput, error)
	ListSecretVersionIds(context.Context, *sm.ListSecretVersionIdsInput, ...func(*sm.Options)) (*sm.ListSecretVersionIdsOutput, error)
	PutSecretValue(context.Context, *sm.PutSecretValueInput, ...func(*sm.Options)) (*sm.PutSecretValueOutput, error)
	UpdateSecretVersionStage(context.Context, *sm.UpdateSecretVersionStageInput, ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error)
}

var _ api = (*sm.Client)(nil)

// Store keeps secrets in AWS Secrets Manager. It is safe for concurrent
// use.
type Store struct {
	api      api
	prefix   string
	kmsKeyID string
	heads    heads // what Version needs of the state documents read or written
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Lister = (*Store)(nil)
)

// Options says where the store keeps its secrets. Credentials always come
// from the AWS SDK's default chain (environment, shared files, SSO, web
// identity, container or instance role), never from Options.
type Options struct {
	// Region overrides the region of the SDK's chain (AWS_REGION,
	// ~/.aws/config), e.g. eu-west-1.
	Region string
	// Endpoint overrides the Secrets Manager endpoint, for LocalStack and
	// tests (http://localhost:4566). Plain http is accepted for loopback
	// addresses only: secret values travel in request bodies.
	Endpoint string
	// Prefix is prepended to every secret name; default [DefaultPrefix]. A
	// secret NAME lives in <prefix>NAME, its rotor state in
	// <prefix>NAME/rotor-state.
	Prefix string
	// KMSKeyID is the KMS key (id, ARN or alias) that encrypts the secrets
	// the store creates; default the AWS managed key aws/secretsmanager.
	KMSKeyID string
}

var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// maxPrefix leaves room in Secrets Manager's 512-character names for a
// 128-character secret name and the state suffix.
const maxPrefix = maxName - 128 - len(StateSuffix)

// ConsumedEnv lists the environment variables the AWS SDK's default
// credential chain reads for credentials, which rotor keeps from the
// processes it starts (hooks, `rotor run` children) unless told to pass
// them: keys, session tokens, the web identity and container credential
// variables, and the profile and credential file that select them.
// Region and endpoint settings are not credentials and pass.
func (o Options) ConsumedEnv() []string {
	return []string{
		"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
	}
}

// WithDefaults returns o with its empty fields set to their defaults and
// trailing slashes dropped from Endpoint.
func (o Options) WithDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	return o
}

// Validate reports every problem of o (after defaults) as a [field.List].
func (o Options) Validate() error {
	o = o.WithDefaults()
	var errs field.List
	if o.Region != "" && !awsRegion.MatchString(o.Region) {
		errs.Addf(field.NewPath("region"), "invalid region %q (want e.g. us-east-1)", o.Region)
	}
	if o.Endpoint != "" {
		errs.Add(field.NewPath("endpoint"), serviceurl.Check(o.Endpoint, "https://secretsmanager.us-east-1.amazonaws.com or http://localhost:4566", "secret values"))
	}
	switch {
	case len(o.Prefix) > maxPrefix:
		errs.Addf(field.NewPath("prefix"), "prefix is %d characters long, at most %d", len(o.Prefix), maxPrefix)
	case strings.Trim(o.Prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-") != "":
		errs.Addf(field.NewPath("prefix"), "invalid prefix %q: Secrets Manager names allow only letters, digits and /_+=.@-", o.Prefix)
	}
	if strings.ContainsAny(o.KMSKeyID, " \t\n") {
		errs.Addf(field.NewPath("kms_key_id"), "invalid KMS key %q: want a key id, key ARN or alias/NAME", o.KMSKeyID)
	}
	return errs.Err()
}

// New returns a store as o says, with credentials and, unless o sets one,
// the region from the SDK's default chain. Empty fields of o take their
// defaults.
func New(ctx context.Context, o Options) (*Store, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("awssm: %w", err)
	}
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("awssm: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("awssm: no AWS region: set store.awssm.region, AWS_REGION or a region in ~/.aws/config")
	}
	client := sm.NewFromConfig(awsCfg, func(so *sm.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return newStore(client, o), nil
}

// NewFromClient returns a store using client, for tests and for callers
// that build their own SDK client. The client's own configuration wins:
// o's Region and Endpoint are not used.
func NewFromClient(client *sm.Client, o Options) *Store {
	return newStore(client, o)
}

func newStore(a api, o Options) *Store {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return &Store{api: a, prefix: o.Prefix, kmsKeyID: o.KMSKeyID}
}

// SecretName returns the name in Secrets Manager of the secret applications
// read for the managed secret name.
func (s *Store) SecretName(name string) string { return s.prefix + name }

// StateName returns the name in Secrets Manager of name's state secret.
func (s *Store) StateName(name string) string { return s.prefix + name + StateSuffix }

func (s *Store) checkName(name string) error {
	if err := store.ValidateName(name); err != nil {
		return err
	}
	if n := len(s.StateName(name)); n > maxName {
		return fmt.Errorf("secret name %q is too long for Secrets Manager with prefix %q (%d characters, at most %d)", name, s.prefix, n, maxName)
	}
	return nil
}

// snapshot is what one read of a managed secret found.
type snapshot struct {
	mExists  bool
	actual   layout          // raw label holders on the secret
	labelled map[string]bool // versions of the secret that have labels
	sExists  bool
	svid     string // the state secret's AWSCURRENT version id
	rec      record // zero when !sExists
}

// read reads the secret, then its state. In this order, a save that
// commits in between looks like a save whose labels are not applied yet,
// which view handles, rather than like a change made outside rotor.
func (s *Store) read(ctx context.Context, name string) (*snapshot, error) {
	snap, err := s.describe(ctx, name)
	if err != nil {
		return nil, err
	}
	sName := s.StateName(name)
	g, err := s.api.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(sName), VersionStage: aws.String(LabelCurrent)})
	switch {
	case isNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", sName, err)
	default:
		rec, err := decodeRecord([]byte(aws.ToString(g.SecretString)), name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", sName, err)
		}
		snap.sExists, snap.svid, snap.rec = true, aws.ToString(g.VersionId), *rec
		s.heads.remember(name, snap.svid, rec)
	}
	return snap, nil
}

// describe starts a snapshot with the staging labels of the secret
// applications read.
func (s *Store) describe(ctx context.Context, name string) (*snapshot, error) {
	snap := &snapshot{labelled: map[string]bool{}}
	mName := s.SecretName(name)
	d, err := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(mName)})
	switch {
	case isNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("describe %s: %w", mName, err)
	case d.DeletedDate != nil:
		return nil, fmt.Errorf("secret %s is scheduled for deletion; restore it (aws secretsmanager restore-secret) to use it", mName)
	default:
		snap.mExists = true
		for vid, stages := range d.VersionIdsToStages {
			snap.labelled[vid] = len(stages) > 0
			for _, st := range stages {
				if _, ok := slotOf[st]; ok {
					*snap.actual.at(st) = vid
				}
			}
		}
	}
	return snap, nil
}

// view returns the secret snap describes and the layout its version is
// based on: the record's, or, after a change outside rotor, the labels'.
func (s *Store) view(ctx context.Context, name string, snap *snapshot) (*state, layout, error) {
	st := snap.rec.state()
	b, outside := basisOf(snap.actual, &snap.rec)
	if !outside {
		return st, b, nil
	}
	if err := s.overlay(ctx, name, snap, st); err != nil {
		return nil, layout{}, err
	}
	return st, b, nil
}

// basisOf returns the layout a secret's version is based on, given its
// raw labels and its state document: the document's, or the labels' when
// they were changed outside rotor (outside is then true).
func basisOf(actual layout, rec *record) (basis layout, outside bool) {
	a, target := actual.normal(), rec.Labels
	if a == target || interrupted(actual, rec.Prior, target) {
		return target, false
	}
	return a, true
}

// interrupted reports whether the labels a lie between prior and target,
// label by label: a save committed target and stopped applying it.
func interrupted(a, prior, target layout) bool {
	an, pn := a.normal(), prior.normal()
	for _, l := range labels {
		v := an.get(l)
		ok := v == target.get(l) || v == prior.get(l) || v == pn.get(l) ||
			l == LabelPrevious && v == prior.Current // moved along with AWSCURRENT
		if !ok {
			return false
		}
	}
	return true
}

// overlay replaces the slots whose labels were moved outside rotor with
// what the labels say (see "Interrupted saves and changes made outside
// rotor" in the package documentation).
func (s *Store) overlay(ctx context.Context, name string, snap *snapshot, st *state) error {
	a, target := snap.actual.normal(), snap.rec.Labels
	known := map[string]entry{}
	retired := map[string]bool{}
	for _, e := range st.retired {
		if e.vid != "" {
			known[e.vid], retired[e.vid] = e, true
		}
	}
	for _, e := range st.slots {
		if e != nil && e.vid != "" {
			known[e.vid] = *e
		}
	}
	var displaced []entry
	for _, l := range labels {
		av := a.get(l)
		_, isKnown := known[av]
		if av == target.get(l) || (l == LabelPending || l == LabelNext) && isKnown {
			// Rotor's own labels on rotor's own keys are strays: a promote
			// leaves AWSPENDING on the new current, where it stays when
			// AWSCURRENT is moved by hand. The next save removes them.
			continue
		}
		sl := slotOf[l]
		if old := st.slots[sl]; old != nil {
			displaced = append(displaced, *old)
		}
		if av == "" {
			delete(st.slots, sl)
			continue
		}
		e, ok := known[av]
		if !ok {
			ext, created, err := s.external(ctx, name, av)
			if err != nil {
				return err
			}
			e = ext
			if l == LabelPending && st.rotation == nil {
				st.rotation = &store.Rotation{
					ID: av, Step: store.StepCreate, StartedAt: created,
					Initiator: ExternalInitiator, Holder: ExternalHolder, LeaseExpiresAt: externalLease,
				}
			}
		}
		e.key.Meta = maps.Clone(e.key.Meta)
		st.slots[sl] = &e
	}
	held := map[string]bool{}
	for _, e := range st.slots {
		held[e.vid] = true
	}
	// A retired key moved back into a slot by hand is no longer retired.
	st.retired = slices.DeleteFunc(st.retired, func(e entry) bool { return e.vid != "" && held[e.vid] })
	for _, d := range displaced {
		if d.vid != "" && (held[d.vid] || retired[d.vid]) {
			continue
		}
		st.retired = append(st.retired, d)
		retired[d.vid] = true
	}
	return nil
}

// external reads a version rotor did not write.
func (s *Store) external(ctx context.Context, name, vid string) (entry, time.Time, error) {
	mName := s.SecretName(name)
	g, err := s.api.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(mName), VersionId: aws.String(vid)})
	if err != nil {
		return entry{}, time.Time{}, fmt.Errorf("read version %s of %s: %w", vid, mName, err)
	}
	if g.SecretString == nil || *g.SecretString == "" {
		return entry{}, time.Time{}, fmt.Errorf("version %s of %s holds no SecretString (binary secrets are not supported)", vid, mName)
	}
	created := aws.ToTime(g.CreatedDate).UTC()
	return entry{vid: vid, key: store.Key{Value: *g.SecretString, CreatedAt: created, Source: SourceExternal}}, created, nil
}

// version returns the store.Version of snap viewed on basis.
func version(snap *snapshot, basis layout) store.Version {
	if !snap.mExists && !snap.sExists {
		return store.NoVersion
	}
	return versionOf(snap.rec.Serial, snap.svid, basis)
}

func versionOf(serial uint64, svid string, basis layout) store.Version {
	if svid == "" {
		svid = "-"
	}
	return store.Version(fmt.Sprintf("%d.%s.%s", serial, svid, basis.hash()))
}

// Load returns the secret called name and its version. It wraps
// store.ErrNotFound when neither the secret nor its state exists.
func (s *Store) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	if err := s.checkName(name); err != nil {
		return nil, store.NoVersion, fmt.Errorf("awssm: load: %w", err)
	}
	snap, err := s.read(ctx, name)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("awssm: load %s: %w", name, err)
	}
	if !snap.mExists && !snap.sExists {
		return nil, store.NoVersion, fmt.Errorf("awssm: load %s: %w", name, store.ErrNotFound)
	}
	st, basis, err := s.view(ctx, name, snap)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("awssm: load %s: %w", name, err)
	}
	return st.secret(name), version(snap, basis), nil
}

// LoadLabels returns what an application holding the [Policy] for role app
// can read of the secret called name: the values under AWSCURRENT and
// AWSPREVIOUS, without rotor's metadata (no key ids, no expiry: previous is
// valid for as long as it holds the label), and a version that changes
// when either label moves. It never reads the state secret. It wraps
// store.ErrNotFound when the secret does not exist or has no current value.
func (s *Store) LoadLabels(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	if err := s.checkName(name); err != nil {
		return nil, store.NoVersion, fmt.Errorf("awssm: load labels: %w", err)
	}
	cur, prev, err := s.labelHolders(ctx, name)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("awssm: load labels of %s: %w", name, err)
	}
	sec := &store.Secret{Name: name}
	for _, v := range []struct {
		vid  string
		slot **store.Key
	}{{cur, &sec.Current}, {prev, &sec.Previous}} {
		if v.vid == "" {
			continue
		}
		e, _, err := s.external(ctx, name, v.vid)
		if err != nil {
			return nil, store.NoVersion, fmt.Errorf("awssm: load labels of %s: %w", name, err)
		}
		e.key.Source = ""
		*v.slot = &e.key
	}
	return sec, labelsVersion(cur, prev), nil
}

// labelHolders returns the versions of the secret called name that hold
// AWSCURRENT and AWSPREVIOUS, from one DescribeSecret. It wraps
// store.ErrNotFound when the secret does not exist or has no current
// version.
func (s *Store) labelHolders(ctx context.Context, name string) (cur, prev string, err error) {
	mName := s.SecretName(name)
	d, err := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(mName)})
	if isNotFound(err) {
		return "", "", store.ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("describe %s: %w", mName, err)
	}
	cur, prev = holder(d.VersionIdsToStages, LabelCurrent), holder(d.VersionIdsToStages, LabelPrevious)
	if cur == "" {
		return "", "", fmt.Errorf("%w: no version is %s", store.ErrNotFound, LabelCurrent)
	}
	return cur, prev, nil
}

// labelsVersion is the version of what LoadLabels reads.
func labelsVersion(cur, prev string) store.Version {
	return versionOf(0, "labels", layout{Current: cur, Previous: prev})
}

// Save writes sec if expected is still its stored version; see "Compare
// and swap" in the package documentation.
func (s *Store) Save(ctx context.Context, sec *store.Secret, expected store.Version) (store.Version, error) {
	if err := sec.Validate(); err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save: %w", err)
	}
	if err := s.checkName(sec.Name); err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save: %w", err)
	}
	name := sec.Name
	desired := sec.Clone()
	snap, err := s.read(ctx, name)
	if err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save %s: %w", name, err)
	}
	cur, basis, err := s.view(ctx, name, snap)
	if err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save %s: %w", name, err)
	}
	if v := version(snap, basis); v != expected {
		if expected == store.NoVersion {
			return store.NoVersion, fmt.Errorf("awssm: create %s: %w: it already exists", name, store.ErrConflict)
		}
		return store.NoVersion, fmt.Errorf("awssm: save %s: %w: stored version is %s, not %s", name, store.ErrConflict, v, expected)
	}
	commit := newToken()
	if snap.sExists {
		commit = derive("successor", snap.svid)
	}
	p, err := s.plan(ctx, name, snap, cur, desired, commit)
	if err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save %s: %w", name, err)
	}
	if err := s.commit(ctx, name, snap, &p.rec, commit); err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save %s: %w", name, err)
	}
	s.heads.remember(name, commit, &p.rec)
	if err := s.apply(ctx, name, snap, p); err != nil {
		return store.NoVersion, fmt.Errorf("awssm: save %s: saved, but updating the staging labels of %s failed (the next save completes it): %w", name, s.SecretName(name), err)
	}
	return versionOf(p.rec.Serial, commit, p.rec.Labels), nil
}

// commit writes rec as the new AWSCURRENT version of the state secret,
// with ClientRequestToken commit. It is the compare-and-swap.
func (s *Store) commit(ctx context.Context, name string, snap *snapshot, rec *record, commit string) error {
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	sName := s.StateName(name)
	if !snap.sExists {
		in := &sm.CreateSecretInput{
			Name:               aws.String(sName),
			ClientRequestToken: aws.String(commit),
			SecretString:       aws.String(string(b)),
			Description:        aws.String(fmt.Sprintf("rotor state of %s: key metadata, rotation lease and retired keys, values included. Do not give applications access.", s.SecretName(name))),
		}
		if s.kmsKeyID != "" {
			in.KmsKeyId = aws.String(s.kmsKeyID)
		}
		_, err := s.api.CreateSecret(ctx, in)
		if isExists(err) {
			return fmt.Errorf("%w: %s was created concurrently", store.ErrConflict, sName)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", sName, err)
		}
		return nil
	}
	out, err := s.api.PutSecretValue(ctx, &sm.PutSecretValueInput{
		SecretId:           aws.String(sName),
		ClientRequestToken: aws.String(commit),
		SecretString:       aws.String(string(b)),
	})
	if isExists(err) {
		return fmt.Errorf("%w: another save replaced version %s of %s first", store.ErrConflict, snap.svid, sName)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", sName, err)
	}
	if !slices.Contains(out.VersionStages, LabelCurrent) {
		return fmt.Errorf("%w: version %s of %s is no longer current", store.ErrConflict, commit, sName)
	}
	return nil
}

func encodeRecord(rec *record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if len(b) > maxRecord {
		return nil, fmt.Errorf("state document is %d bytes, more than the %d Secrets Manager stores: revoke retired keys", len(b), maxRecord)
	}
	return b, nil
}

// List returns the names of the managed secrets under the store's prefix,
// sorted: secrets with a state secret, and secrets without one that Load
// would adopt. ListSecrets may lag behind recent changes by minutes.
func (s *Store) List(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	p := sm.NewListSecretsPaginator(s.api, &sm.ListSecretsInput{
		Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{s.prefix}}},
		MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("awssm: list %s*: %w", s.prefix, err)
		}
		for _, e := range out.SecretList {
			rest, ok := strings.CutPrefix(aws.ToString(e.Name), s.prefix)
			if !ok {
				continue
			}
			rest = strings.TrimSuffix(rest, StateSuffix)
			if store.ValidateName(rest) == nil {
				seen[rest] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// derive returns a deterministic UUID-shaped token (36 characters, a valid
// ClientRequestToken) for parts.
func derive(parts ...string) string {
	h := sha256.New()
	h.Write([]byte("rotor/awssm"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return uuidString(h.Sum(nil))
}

// newToken returns a random UUID.
func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return uuidString(b)
}

// uuidString formats the first 16 bytes of b as an RFC 9562 UUID of
// version 8 (custom) with the RFC variant.
func uuidString(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

func isNotFound(err error) bool {
	_, ok := errors.AsType[*types.ResourceNotFoundException](err)
	return ok
}

func isExists(err error) bool {
	_, ok := errors.AsType[*types.ResourceExistsException](err)
	return ok
}

func isInvalidParameter(err error) bool {
	_, ok := errors.AsType[*types.InvalidParameterException](err)
	return ok
}

// LabelReader is the read-only view of the store that an application
// holding the [Policy] for role app can use: its Load is [Store.LoadLabels].
// Pass it to storesource.New to follow AWSCURRENT and AWSPREVIOUS from a
// Go application.
type LabelReader struct{ s *Store }

// Labels returns the application's read-only view of s.
func (s *Store) Labels() LabelReader { return LabelReader{s: s} }

// Load returns the secret's AWSCURRENT and AWSPREVIOUS values.
func (r LabelReader) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	return r.s.LoadLabels(ctx, name)
}
