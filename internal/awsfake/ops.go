package awsfake

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The staging labels Secrets Manager itself gives meaning to.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

// Limits from the API reference.
const (
	maxVersions      = 100            // deprecated versions beyond this are removed...
	keepRecent       = 24 * time.Hour // ...unless they are younger than this
	maxSecretSize    = 65536          // SecretString / SecretBinary bytes
	maxStagesPerCall = 20             // VersionStages items
	maxLabelLen      = 256
	minTokenLen      = 32
	maxTokenLen      = 64
	maxNameLen       = 512
)

type secret struct {
	name, arn   string
	description *string
	kmsKeyID    *string
	tags        []tag
	created     time.Time
	changed     time.Time
	seq         int

	versions map[string]*version
	order    []*version        // creation order
	labels   map[string]string // staging label → version id: one version per label
}

type version struct {
	id      string
	value   value
	created time.Time
}

// value is the protected content of a version: a string or binary.
type value struct {
	str *string
	bin []byte
}

func (v value) equal(o value) bool {
	if (v.str == nil) != (o.str == nil) || (v.bin == nil) != (o.bin == nil) {
		return false
	}
	return (v.str == nil || *v.str == *o.str) && bytes.Equal(v.bin, o.bin)
}

type tag struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// stages returns the labels attached to version id, sorted.
func (sec *secret) stages(id string) []string {
	var ss []string
	for l, v := range sec.labels {
		if v == id {
			ss = append(ss, l)
		}
	}
	slices.Sort(ss)
	return ss
}

// attach moves label to version id. Moving AWSCURRENT moves AWSPREVIOUS to
// the version AWSCURRENT left (API_UpdateSecretVersionStage, "Whenever you
// move AWSCURRENT, Secrets Manager automatically moves the label
// AWSPREVIOUS to the version that AWSCURRENT was removed from").
func (sec *secret) attach(label, id string) {
	old := sec.labels[label]
	sec.labels[label] = id
	if label == stageCurrent && old != "" && old != id {
		sec.labels[stagePrevious] = old
	}
}

// mapping returns version id → labels for the versions that have labels.
func (sec *secret) mapping() map[string][]string {
	m := map[string][]string{}
	for _, id := range slices.Sorted(maps.Values(sec.labels)) {
		if _, done := m[id]; !done {
			m[id] = sec.stages(id)
		}
	}
	return m
}

// prune removes deprecated versions once the secret has more than
// maxVersions, oldest first, but never one created in the last 24 hours
// (API_PutSecretValue: "Secrets Manager removes outdated versions when
// there are more than 100, but it does not remove versions created less
// than 24 hours ago").
func (s *Server) prune(sec *secret) {
	now := s.now()
	for i := 0; len(sec.versions) > maxVersions && i < len(sec.order); {
		v := sec.order[i]
		if len(sec.stages(v.id)) == 0 && now.Sub(v.created) >= keepRecent {
			delete(sec.versions, v.id)
			sec.order = slices.Delete(sec.order, i, i+1)
			continue
		}
		i++
	}
}

// find resolves a SecretId, a name or a complete ARN.
func (s *Server) find(id *string) (*secret, *apiError) {
	if id == nil || *id == "" {
		return nil, errorf(errInvalidParam, "SecretId is required")
	}
	if sec, ok := s.secrets[*id]; ok {
		return sec, nil
	}
	for _, sec := range s.secrets {
		if sec.arn == *id {
			return sec, nil
		}
	}
	return nil, errorf(errNotFound, "Secrets Manager can't find the specified secret.")
}

func nameOf(id *string) string {
	if id == nil {
		return ""
	}
	return *id
}

func validName(n string) bool {
	if n == "" || len(n) > maxNameLen {
		return false
	}
	for _, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-", r)
		if !ok {
			return false
		}
	}
	return true
}

func checkToken(t *string) *apiError {
	// SDKs fill the token in; a raw request "must generate a
	// ClientRequestToken and include it" (API_PutSecretValue).
	if t == nil {
		return errorf(errInvalidParam, "ClientRequestToken is required")
	}
	if n := len(*t); n < minTokenLen || n > maxTokenLen {
		return errorf(errInvalidParam, "ClientRequestToken must be %d to %d characters long", minTokenLen, maxTokenLen)
	}
	return nil
}

func checkValue(str *string, bin []byte, required bool) (value, *apiError) {
	v := value{str: str, bin: bin}
	switch {
	case str != nil && bin != nil:
		return v, errorf(errInvalidParam, "you can't specify both SecretString and SecretBinary")
	case str == nil && bin == nil && required:
		return v, errorf(errInvalidParam, "you must specify SecretString or SecretBinary")
	case str != nil && len(*str) > maxSecretSize, len(bin) > maxSecretSize:
		return v, errorf(errInvalidParam, "the secret value is larger than %d bytes", maxSecretSize)
	}
	return v, nil
}

func checkLabel(l string) *apiError {
	if l == "" || len(l) > maxLabelLen {
		return errorf(errInvalidParam, "a staging label must be 1 to %d characters long", maxLabelLen)
	}
	return nil
}

// addVersion creates version id of sec and attaches its labels: stages, or
// AWSCURRENT when stages is nil, plus AWSCURRENT when it is the first
// version (API_PutSecretValue).
func (s *Server) addVersion(sec *secret, id string, v value, stages []string) {
	now := s.now()
	sec.versions[id] = &version{id: id, value: v, created: now}
	sec.order = append(sec.order, sec.versions[id])
	if stages == nil || len(sec.versions) == 1 {
		stages = append([]string{stageCurrent}, stages...)
	}
	// AWSCURRENT first, so that an explicit AWSPREVIOUS in the same call
	// wins over the automatic move (the reference does not say; rotor never
	// asks for both).
	slices.SortStableFunc(stages, func(a, b string) int {
		return cmp.Compare(boolInt(b == stageCurrent), boolInt(a == stageCurrent))
	})
	for _, l := range stages {
		sec.attach(l, id)
	}
	sec.changed = now
	s.prune(sec)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// --- CreateSecret ---

type createSecretIn struct {
	Name               *string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
	Tags               []tag
}

type createSecretOut struct {
	ARN       string
	Name      string
	VersionId *string `json:",omitempty"`
}

// createSecret follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
func (s *Server) createSecret(body []byte) (string, any, *apiError) {
	var in createSecretIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	name := nameOf(in.Name)
	if !validName(name) {
		return name, nil, errorf(errInvalidParam, "invalid name %q: use 1-%d of A-Z a-z 0-9 /_+=.@-", name, maxNameLen)
	}
	v, err := checkValue(in.SecretString, in.SecretBinary, false)
	if err != nil {
		return name, nil, err
	}
	hasValue := in.SecretString != nil || in.SecretBinary != nil
	if hasValue {
		if err := checkToken(in.ClientRequestToken); err != nil {
			return name, nil, err
		}
	}
	if sec, exists := s.secrets[name]; exists {
		// A repeated request (same token, same value) is ignored; anything
		// else names an existing secret.
		if hasValue {
			if old, ok := sec.versions[*in.ClientRequestToken]; ok && old.value.equal(v) {
				return name, createSecretOut{ARN: sec.arn, Name: name, VersionId: in.ClientRequestToken}, nil
			}
		}
		return name, nil, errorf(errExists, "The operation failed because the secret %s already exists.", name)
	}
	now := s.now()
	s.seq++
	sec := &secret{
		name: name, arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.region, s.account, name, arnSuffix()),
		description: in.Description, kmsKeyID: in.KmsKeyId, tags: in.Tags,
		created: now, changed: now, seq: s.seq,
		versions: map[string]*version{}, labels: map[string]string{},
	}
	s.secrets[name] = sec
	out := createSecretOut{ARN: sec.arn, Name: name}
	if hasValue {
		s.addVersion(sec, *in.ClientRequestToken, v, []string{stageCurrent})
		out.VersionId = in.ClientRequestToken
	}
	return name, out, nil
}

// --- PutSecretValue ---

type putSecretValueIn struct {
	SecretId           *string
	ClientRequestToken *string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
}

type putSecretValueOut struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

// putSecretValue follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
func (s *Server) putSecretValue(body []byte) (string, any, *apiError) {
	var in putSecretValueIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	sec, err := s.find(in.SecretId)
	if err != nil {
		return nameOf(in.SecretId), nil, err
	}
	v, err := checkValue(in.SecretString, in.SecretBinary, true)
	if err != nil {
		return sec.name, nil, err
	}
	if err := checkToken(in.ClientRequestToken); err != nil {
		return sec.name, nil, err
	}
	if in.VersionStages != nil && (len(in.VersionStages) == 0 || len(in.VersionStages) > maxStagesPerCall) {
		return sec.name, nil, errorf(errInvalidParam, "VersionStages must list 1 to %d labels", maxStagesPerCall)
	}
	for _, l := range in.VersionStages {
		if err := checkLabel(l); err != nil {
			return sec.name, nil, err
		}
	}
	id := *in.ClientRequestToken
	if old, ok := sec.versions[id]; ok {
		if !old.value.equal(v) {
			return sec.name, nil, errorf(errExists, "You can't modify an existing version, you can only create new versions.")
		}
		// Same token, same value: "the operation succeeds but does nothing".
	} else {
		s.addVersion(sec, id, v, slices.Clone(in.VersionStages))
	}
	return sec.name, putSecretValueOut{ARN: sec.arn, Name: sec.name, VersionId: id, VersionStages: sec.stages(id)}, nil
}

// --- GetSecretValue ---

type getSecretValueIn struct {
	SecretId     *string
	VersionId    *string
	VersionStage *string
}

type getSecretValueOut struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch
}

// getSecretValue follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
func (s *Server) getSecretValue(body []byte) (string, any, *apiError) {
	var in getSecretValueIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	sec, err := s.find(in.SecretId)
	if err != nil {
		return nameOf(in.SecretId), nil, err
	}
	var id string
	switch {
	case in.VersionId != nil:
		id = *in.VersionId
		if _, ok := sec.versions[id]; !ok {
			return sec.name, nil, errorf(errNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s", id)
		}
		// "If you include both this parameter and VersionStage, the two
		// parameters must refer to the same secret version."
		if in.VersionStage != nil && sec.labels[*in.VersionStage] != id {
			return sec.name, nil, errorf(errNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s", id, *in.VersionStage)
		}
	default:
		stage := stageCurrent
		if in.VersionStage != nil {
			stage = *in.VersionStage
		}
		var ok bool
		if id, ok = sec.labels[stage]; !ok {
			return sec.name, nil, errorf(errNotFound, "Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	v := sec.versions[id]
	return sec.name, getSecretValueOut{
		ARN: sec.arn, Name: sec.name, VersionId: id,
		SecretString: v.value.str, SecretBinary: v.value.bin,
		VersionStages: sec.stages(id), CreatedDate: ptime(v.created),
	}, nil
}

// --- DescribeSecret ---

type describeSecretIn struct {
	SecretId *string
}

type describeSecretOut struct {
	ARN                string
	Name               string
	Description        *string             `json:",omitempty"`
	KmsKeyId           *string             `json:",omitempty"`
	CreatedDate        *epoch              `json:",omitempty"`
	LastChangedDate    *epoch              `json:",omitempty"`
	Tags               []tag               `json:",omitempty"`
	VersionIdsToStages map[string][]string `json:",omitempty"`
}

// describeSecret follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
// VersionIdsToStages lists "the versions of the secret that have staging
// labels attached".
func (s *Server) describeSecret(body []byte) (string, any, *apiError) {
	var in describeSecretIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	sec, err := s.find(in.SecretId)
	if err != nil {
		return nameOf(in.SecretId), nil, err
	}
	return sec.name, describeSecretOut{
		ARN: sec.arn, Name: sec.name, Description: sec.description, KmsKeyId: sec.kmsKeyID,
		CreatedDate: ptime(sec.created), LastChangedDate: ptime(sec.changed), Tags: sec.tags,
		VersionIdsToStages: sec.mapping(),
	}, nil
}

// --- ListSecretVersionIds ---

type listSecretVersionIdsIn struct {
	SecretId          *string
	IncludeDeprecated *bool
	MaxResults        *int32
	NextToken         *string
}

type versionEntry struct {
	VersionId     string
	VersionStages []string `json:",omitempty"`
	CreatedDate   *epoch
}

type listSecretVersionIdsOut struct {
	ARN       string
	Name      string
	Versions  []versionEntry
	NextToken *string `json:",omitempty"`
}

// listSecretVersionIds follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecretVersionIds.html
// Versions are listed oldest first (the reference names no order).
func (s *Server) listSecretVersionIds(body []byte) (string, any, *apiError) {
	var in listSecretVersionIdsIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	sec, err := s.find(in.SecretId)
	if err != nil {
		return nameOf(in.SecretId), nil, err
	}
	size, err := pageSize(in.MaxResults)
	if err != nil {
		return sec.name, nil, err
	}
	var all []versionEntry
	for _, v := range sec.order {
		st := sec.stages(v.id)
		// "By default, versions without staging labels aren't included."
		if len(st) == 0 && (in.IncludeDeprecated == nil || !*in.IncludeDeprecated) {
			continue
		}
		all = append(all, versionEntry{VersionId: v.id, VersionStages: st, CreatedDate: ptime(v.created)})
	}
	start, err := pageStart(in.NextToken, len(all))
	if err != nil {
		return sec.name, nil, err
	}
	start, end, next := page(start, size, len(all))
	return sec.name, listSecretVersionIdsOut{ARN: sec.arn, Name: sec.name, Versions: all[start:end], NextToken: next}, nil
}

// --- ListSecrets ---

type filter struct {
	Key    string
	Values []string
}

type listSecretsIn struct {
	Filters    []filter
	MaxResults *int32
	NextToken  *string
	SortBy     *string
	SortOrder  *string
}

type secretEntry struct {
	ARN                    string
	Name                   string
	Description            *string             `json:",omitempty"`
	KmsKeyId               *string             `json:",omitempty"`
	CreatedDate            *epoch              `json:",omitempty"`
	LastChangedDate        *epoch              `json:",omitempty"`
	SecretVersionsToStages map[string][]string `json:",omitempty"`
}

type listSecretsOut struct {
	SecretList []secretEntry
	NextToken  *string `json:",omitempty"`
}

// listSecrets follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html
// and, for filters,
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Filter.html
// ("name: Prefix match, case-sensitive"; a value starting with ! negates).
// Only the name key is supported. A secret matches a filter when it matches
// one of its plain values and none of its negated ones, and all filters.
func (s *Server) listSecrets(body []byte) (string, any, *apiError) {
	var in listSecretsIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	size, err := pageSize(in.MaxResults)
	if err != nil {
		return "", nil, err
	}
	for _, f := range in.Filters {
		if f.Key != "name" {
			return "", nil, errorf(errInvalidParam, "awsfake supports only the name filter, not %q", f.Key)
		}
		if len(f.Values) == 0 {
			return "", nil, errorf(errInvalidParam, "a filter needs at least one value")
		}
	}
	var all []*secret
	for _, sec := range s.secrets {
		if matchAll(sec.name, in.Filters) {
			all = append(all, sec)
		}
	}
	byName := in.SortBy != nil && *in.SortBy == "name"
	slices.SortFunc(all, func(a, b *secret) int {
		if byName {
			return strings.Compare(a.name, b.name)
		}
		return cmp.Compare(a.seq, b.seq) // created-date, the default
	})
	if in.SortOrder != nil && *in.SortOrder == "desc" {
		slices.Reverse(all)
	}
	start, err := pageStart(in.NextToken, len(all))
	if err != nil {
		return "", nil, err
	}
	start, end, next := page(start, size, len(all))
	out := listSecretsOut{SecretList: []secretEntry{}, NextToken: next}
	for _, sec := range all[start:end] {
		out.SecretList = append(out.SecretList, secretEntry{
			ARN: sec.arn, Name: sec.name, Description: sec.description, KmsKeyId: sec.kmsKeyID,
			CreatedDate: ptime(sec.created), LastChangedDate: ptime(sec.changed),
			SecretVersionsToStages: sec.mapping(),
		})
	}
	return "", out, nil
}

func matchAll(name string, filters []filter) bool {
	for _, f := range filters {
		plain, matched := false, false
		for _, v := range f.Values {
			if neg, ok := strings.CutPrefix(v, "!"); ok {
				if strings.HasPrefix(name, neg) {
					return false
				}
				continue
			}
			plain = true
			matched = matched || strings.HasPrefix(name, v)
		}
		if plain && !matched {
			return false
		}
	}
	return true
}

// --- UpdateSecretVersionStage ---

type updateSecretVersionStageIn struct {
	SecretId            *string
	VersionStage        *string
	MoveToVersionId     *string
	RemoveFromVersionId *string
}

type updateSecretVersionStageOut struct {
	ARN  string
	Name string
}

// updateSecretVersionStage follows
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html
// "If the staging label you are trying to attach to one version is already
// attached to a different version, then you must include
// [RemoveFromVersionId] and specify the version that the label is to be
// removed from. If the label is attached and you either do not specify this
// parameter, or the version ID does not match, then the operation fails."
// Where the reference is silent, the emulator reads it so that a repeated
// request succeeds: attaching a label to the version that already holds it,
// or removing a label that is attached nowhere, does nothing.
func (s *Server) updateSecretVersionStage(body []byte) (string, any, *apiError) {
	var in updateSecretVersionStageIn
	if err := decode(body, &in); err != nil {
		return "", nil, err
	}
	sec, err := s.find(in.SecretId)
	if err != nil {
		return nameOf(in.SecretId), nil, err
	}
	if in.VersionStage == nil {
		return sec.name, nil, errorf(errInvalidParam, "VersionStage is required")
	}
	label := *in.VersionStage
	if err := checkLabel(label); err != nil {
		return sec.name, nil, err
	}
	for _, id := range []*string{in.MoveToVersionId, in.RemoveFromVersionId} {
		if id == nil {
			continue
		}
		if _, ok := sec.versions[*id]; !ok {
			return sec.name, nil, errorf(errNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s", *id)
		}
	}
	holder, attached := sec.labels[label]
	out := updateSecretVersionStageOut{ARN: sec.arn, Name: sec.name}
	switch {
	case in.MoveToVersionId == nil && in.RemoveFromVersionId == nil:
		return sec.name, nil, errorf(errInvalidParam, "specify MoveToVersionId, RemoveFromVersionId or both")
	case in.MoveToVersionId != nil:
		to := *in.MoveToVersionId
		if attached && holder != to {
			if in.RemoveFromVersionId == nil {
				return sec.name, nil, errorf(errInvalidParam, "The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder)
			}
			if *in.RemoveFromVersionId != holder {
				return sec.name, nil, errorf(errInvalidParam, "The staging label %s is attached to version %s, not to the RemoveFromVersionId %s.", label, holder, *in.RemoveFromVersionId)
			}
		}
		sec.attach(label, to)
	default:
		from := *in.RemoveFromVersionId
		if !attached {
			return sec.name, out, nil
		}
		if holder != from {
			return sec.name, nil, errorf(errInvalidParam, "The staging label %s is attached to version %s, not to the RemoveFromVersionId %s.", label, holder, from)
		}
		delete(sec.labels, label)
	}
	sec.changed = s.now()
	return sec.name, out, nil
}
