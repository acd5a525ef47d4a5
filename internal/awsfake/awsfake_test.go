package awsfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotor-dev/rotor/internal/awsfake"
)

// API reference pages the tests follow.
const (
	refCreateSecret   = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"
	refPutSecretValue = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html"
	refUpdateStage    = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html"
	refGetSecretValue = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html"
	refDescribeSecret = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html"
	refListVersionIds = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecretVersionIds.html"
	refListSecrets    = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html"
	refFilter         = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Filter.html"
)

// token returns a valid ClientRequestToken (32-64 characters) for n.
func token(n string) string { return fmt.Sprintf("%-32s", "tok-"+n)[:32] }

func setup(t *testing.T) (*awsfake.Server, *sm.Client) {
	t.Helper()
	srv := awsfake.Start(t, awsfake.Options{})
	return srv, srv.Client()
}

func create(t *testing.T, c *sm.Client, name, tok, value string) {
	t.Helper()
	_, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
}

func put(t *testing.T, c *sm.Client, name, tok, value string, stages ...string) *sm.PutSecretValueOutput {
	t.Helper()
	out, err := c.PutSecretValue(t.Context(), &sm.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String(value), VersionStages: stages})
	if err != nil {
		t.Fatalf("PutSecretValue %s %s: %v", name, tok, err)
	}
	return out
}

func move(ctx context.Context, c *sm.Client, name, label, to, from string) error {
	in := &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := c.UpdateSecretVersionStage(ctx, in)
	return err
}

// labels returns DescribeSecret's version id → sorted labels.
func labels(t *testing.T, c *sm.Client, name string) map[string][]string {
	t.Helper()
	out, err := c.DescribeSecret(t.Context(), &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", name, err)
	}
	m := map[string][]string{}
	for id, st := range out.VersionIdsToStages {
		m[id] = slices.Sorted(slices.Values(st))
	}
	return m
}

func wantLabels(t *testing.T, c *sm.Client, name string, want map[string][]string) {
	t.Helper()
	got := labels(t, c, name)
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("labels of %s = %v, want %v", name, got, want)
	}
}

func value(t *testing.T, c *sm.Client, name, stage string) string {
	t.Helper()
	out, err := c.GetSecretValue(t.Context(), &sm.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetSecretValue %s %s: %v", name, stage, err)
	}
	return aws.ToString(out.SecretString)
}

func versionIDs(t *testing.T, c *sm.Client, name string, deprecated bool) []string {
	t.Helper()
	var ids []string
	p := sm.NewListSecretVersionIdsPaginator(c, &sm.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(deprecated)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListSecretVersionIds %s: %v", name, err)
		}
		for _, v := range out.Versions {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	return ids
}

// TestCreateSecretAttachesAWSCURRENT follows refCreateSecret: "If you
// include SecretString or SecretBinary then Secrets Manager creates an
// initial secret version and automatically attaches the staging label
// AWSCURRENT to it", and the ClientRequestToken "becomes the VersionId".
func TestCreateSecretAttachesAWSCURRENT(t *testing.T) {
	_, c := setup(t)
	out, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String("app/db"), ClientRequestToken: aws.String(token("v1")), SecretString: aws.String("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.VersionId); got != token("v1") {
		t.Fatalf("VersionId = %q, want the ClientRequestToken", got)
	}
	if !strings.HasPrefix(aws.ToString(out.ARN), "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-") {
		t.Fatalf("ARN = %q", aws.ToString(out.ARN))
	}
	wantLabels(t, c, "app/db", map[string][]string{token("v1"): {"AWSCURRENT"}})
	if got := value(t, c, "app/db", "AWSCURRENT"); got != "s3cret" {
		t.Fatalf("AWSCURRENT value = %q", got)
	}
}

// TestCreateSecretWithoutValueHasNoVersion follows refCreateSecret: only "If
// you include SecretString or SecretBinary" is an initial version created.
func TestCreateSecretWithoutValueHasNoVersion(t *testing.T) {
	_, c := setup(t)
	if _, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	if ids := versionIDs(t, c, "empty", true); len(ids) != 0 {
		t.Fatalf("versions = %v, want none", ids)
	}
}

// TestCreateSecretTwice follows refCreateSecret: a repeated request with the
// same ClientRequestToken and value "is ignored"; another request for an
// existing name fails with ResourceExistsException.
func TestCreateSecretTwice(t *testing.T) {
	_, c := setup(t)
	create(t, c, "dup", token("v1"), "one")
	create(t, c, "dup", token("v1"), "one") // idempotent retry

	for name, in := range map[string]*sm.CreateSecretInput{
		"same token, other value": {Name: aws.String("dup"), ClientRequestToken: aws.String(token("v1")), SecretString: aws.String("two")},
		"other token":             {Name: aws.String("dup"), ClientRequestToken: aws.String(token("v2")), SecretString: aws.String("one")},
		"no value":                {Name: aws.String("dup")},
	} {
		_, err := c.CreateSecret(t.Context(), in)
		if _, ok := errors.AsType[*types.ResourceExistsException](err); !ok {
			t.Errorf("%s: err = %v, want ResourceExistsException", name, err)
		}
	}
	if ids := versionIDs(t, c, "dup", true); len(ids) != 1 {
		t.Fatalf("versions = %v, want the first one only", ids)
	}
}

// TestPutSecretValueWithoutStagesMakesCurrent follows refPutSecretValue: "If
// you don't include VersionStages, then Secrets Manager automatically moves
// the staging label AWSCURRENT to this version", and "If this operation
// moves the staging label AWSCURRENT from another version to this version,
// then Secrets Manager also automatically moves the staging label
// AWSPREVIOUS to the version that AWSCURRENT was removed from."
func TestPutSecretValueWithoutStagesMakesCurrent(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	out := put(t, c, "k", token("v2"), "two")
	if !slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("VersionStages = %v, want [AWSCURRENT]", out.VersionStages)
	}
	wantLabels(t, c, "k", map[string][]string{token("v1"): {"AWSPREVIOUS"}, token("v2"): {"AWSCURRENT"}})
	put(t, c, "k", token("v3"), "three")
	// v1 lost AWSPREVIOUS to v2: no labels left, so it is deprecated.
	wantLabels(t, c, "k", map[string][]string{token("v2"): {"AWSPREVIOUS"}, token("v3"): {"AWSCURRENT"}})
}

// TestPutSecretValueWithStagesLeavesCurrent follows refPutSecretValue:
// VersionStages are "the staging labels to attach to the new version"; only
// without them does AWSCURRENT move.
func TestPutSecretValueWithStagesLeavesCurrent(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	put(t, c, "k", token("v2"), "two", "AWSPENDING")
	if got := value(t, c, "k", "AWSCURRENT"); got != "one" {
		t.Fatalf("AWSCURRENT = %q, want the first value", got)
	}
	wantLabels(t, c, "k", map[string][]string{token("v1"): {"AWSCURRENT"}, token("v2"): {"AWSPENDING"}})
}

// TestFirstVersionIsAlwaysCurrent follows refPutSecretValue: "If this
// operation creates the first version for the secret, then Secrets Manager
// automatically attaches the staging label AWSCURRENT to it."
func TestFirstVersionIsAlwaysCurrent(t *testing.T) {
	_, c := setup(t)
	if _, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	out := put(t, c, "k", token("v1"), "one", "AWSPENDING")
	if !slices.Equal(slices.Sorted(slices.Values(out.VersionStages)), []string{"AWSCURRENT", "AWSPENDING"}) {
		t.Fatalf("VersionStages = %v, want AWSCURRENT and AWSPENDING", out.VersionStages)
	}
}

// TestStagingLabelIsOnOneVersion follows refPutSecretValue: "If you specify
// a staging label that's already associated with a different version of the
// same secret, then Secrets Manager removes the label from the other
// version and attaches it to this version", and refUpdateStage: "Each
// staging label can be attached to only one version at a time."
func TestStagingLabelIsOnOneVersion(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	put(t, c, "k", token("v2"), "two", "NEXT", "EXTRA")
	put(t, c, "k", token("v3"), "three", "NEXT")
	wantLabels(t, c, "k", map[string][]string{
		token("v1"): {"AWSCURRENT"},
		token("v2"): {"EXTRA"},
		token("v3"): {"NEXT"},
	})
	if err := move(t.Context(), c, "k", "EXTRA", token("v3"), token("v2")); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, c, "k", map[string][]string{
		token("v1"): {"AWSCURRENT"},
		token("v3"): {"EXTRA", "NEXT"},
	})
}

// TestMovingAnAttachedLabelNeedsItsHolder follows refUpdateStage: "If the
// staging label you are trying to attach to one version is already attached
// to a different version, then you must include this parameter and specify
// the version that the label is to be removed from. If the label is
// attached and you either do not specify this parameter, or the version ID
// does not match, then the operation fails."
func TestMovingAnAttachedLabelNeedsItsHolder(t *testing.T) {
	tests := []struct {
		name, to, from string
		wantErr        bool
		want           map[string][]string
	}{
		{name: "move without RemoveFromVersionId", to: token("v3"), wantErr: true},
		{name: "move from a version that does not hold it", to: token("v3"), from: token("v1"), wantErr: true},
		{name: "remove from a version that does not hold it", from: token("v3"), wantErr: true},
		{
			name: "move from its holder", to: token("v3"), from: token("v2"),
			want: map[string][]string{token("v1"): {"AWSCURRENT"}, token("v3"): {"AWSPENDING", "LABEL"}},
		},
		{
			name: "remove from its holder", from: token("v2"),
			want: map[string][]string{token("v1"): {"AWSCURRENT"}, token("v3"): {"AWSPENDING"}},
		},
		{
			name: "attach where it already is", to: token("v2"),
			want: map[string][]string{token("v1"): {"AWSCURRENT"}, token("v2"): {"LABEL"}, token("v3"): {"AWSPENDING"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := setup(t)
			create(t, c, "k", token("v1"), "one")
			put(t, c, "k", token("v2"), "two", "LABEL")
			put(t, c, "k", token("v3"), "three", "AWSPENDING")
			before := labels(t, c, "k")
			err := move(t.Context(), c, "k", "LABEL", tc.to, tc.from)
			if tc.wantErr {
				if _, ok := errors.AsType[*types.InvalidParameterException](err); !ok {
					t.Fatalf("err = %v, want InvalidParameterException", err)
				}
				wantLabels(t, c, "k", before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantLabels(t, c, "k", tc.want)
		})
	}
}

// TestMovingAWSCURRENTMovesAWSPREVIOUS follows refUpdateStage: "Whenever you
// move AWSCURRENT, Secrets Manager automatically moves the label
// AWSPREVIOUS to the version that AWSCURRENT was removed from." Moving it
// back is how a rollback is done (refGetSecretValue: "To revert to the
// previous version of a secret, call UpdateSecretVersionStage").
func TestMovingAWSCURRENTMovesAWSPREVIOUS(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	put(t, c, "k", token("v2"), "two", "AWSPENDING")
	if err := move(t.Context(), c, "k", "AWSCURRENT", token("v2"), token("v1")); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, c, "k", map[string][]string{token("v1"): {"AWSPREVIOUS"}, token("v2"): {"AWSCURRENT", "AWSPENDING"}})

	// Roll back.
	if err := move(t.Context(), c, "k", "AWSCURRENT", token("v1"), token("v2")); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, c, "k", map[string][]string{token("v1"): {"AWSCURRENT"}, token("v2"): {"AWSPENDING", "AWSPREVIOUS"}})
	if got := value(t, c, "k", "AWSPREVIOUS"); got != "two" {
		t.Fatalf("AWSPREVIOUS = %q", got)
	}
}

// TestClientRequestTokenIsIdempotent follows refPutSecretValue: "If you call
// this operation with a ClientRequestToken that matches an existing
// version's VersionId, and you specify the same secret data, the operation
// succeeds but does nothing. However, if the secret data is different, then
// the operation fails because you can't modify an existing version", and
// the token "becomes the VersionId of the new version".
func TestClientRequestTokenIsIdempotent(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	first := put(t, c, "k", token("v2"), "two", "AWSPENDING")
	if aws.ToString(first.VersionId) != token("v2") {
		t.Fatalf("VersionId = %q, want the token", aws.ToString(first.VersionId))
	}
	// Move AWSPENDING away, then repeat the request: it must not come back.
	if err := move(t.Context(), c, "k", "AWSPENDING", "", token("v2")); err != nil {
		t.Fatal(err)
	}
	again := put(t, c, "k", token("v2"), "two", "AWSPENDING")
	if aws.ToString(again.VersionId) != token("v2") || len(again.VersionStages) != 0 {
		t.Fatalf("repeat: VersionId %q stages %v, want the same version, unchanged", aws.ToString(again.VersionId), again.VersionStages)
	}
	if ids := versionIDs(t, c, "k", true); !slices.Equal(ids, []string{token("v1"), token("v2")}) {
		t.Fatalf("versions = %v, want no new one", ids)
	}

	_, err := c.PutSecretValue(t.Context(), &sm.PutSecretValueInput{SecretId: aws.String("k"), ClientRequestToken: aws.String(token("v2")), SecretString: aws.String("other")})
	if _, ok := errors.AsType[*types.ResourceExistsException](err); !ok {
		t.Fatalf("same token, other value: err = %v, want ResourceExistsException", err)
	}
	_, err = c.PutSecretValue(t.Context(), &sm.PutSecretValueInput{SecretId: aws.String("k"), ClientRequestToken: aws.String("too-short"), SecretString: aws.String("x")})
	if _, ok := errors.AsType[*types.InvalidParameterException](err); !ok {
		t.Fatalf("short token: err = %v, want InvalidParameterException (32 to 64 characters)", err)
	}
}

// TestDeprecatedVersions follows refListVersionIds: "Versions without
// staging labels are considered deprecated and are subject to deletion by
// Secrets Manager. By default, versions without staging labels aren't
// included", and refDescribeSecret: VersionIdsToStages lists "the versions
// of the secret that have staging labels attached".
func TestDeprecatedVersions(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	put(t, c, "k", token("v2"), "two", "NEXT")
	if err := move(t.Context(), c, "k", "NEXT", "", token("v2")); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, c, "k", map[string][]string{token("v1"): {"AWSCURRENT"}})
	if ids := versionIDs(t, c, "k", false); !slices.Equal(ids, []string{token("v1")}) {
		t.Fatalf("versions = %v, want only the labelled one", ids)
	}
	if ids := versionIDs(t, c, "k", true); !slices.Equal(ids, []string{token("v1"), token("v2")}) {
		t.Fatalf("versions with IncludeDeprecated = %v, want both", ids)
	}
	out, err := c.GetSecretValue(t.Context(), &sm.GetSecretValueInput{SecretId: aws.String("k"), VersionId: aws.String(token("v2"))})
	if err != nil || aws.ToString(out.SecretString) != "two" || len(out.VersionStages) != 0 {
		t.Fatalf("GetSecretValue of the deprecated version = %v, %v", out, err)
	}
}

// TestDeprecatedVersionsAreRemoved follows refPutSecretValue: "Secrets
// Manager keeps 100 of the most recent versions, but it keeps all secret
// versions created in the last 24 hours."
func TestDeprecatedVersionsAreRemoved(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := awsfake.Start(t, awsfake.Options{Now: clock})
	c := srv.Client()
	create(t, c, "k", token("v000"), "v0")
	for i := 1; i <= 101; i++ {
		put(t, c, "k", token(fmt.Sprintf("v%03d", i)), fmt.Sprint("v", i))
	}
	if n := len(versionIDs(t, c, "k", true)); n != 102 {
		t.Fatalf("%d versions within 24 hours, want all 102 kept", n)
	}
	mu.Lock()
	now = now.Add(25 * time.Hour)
	mu.Unlock()
	put(t, c, "k", token("v102"), "v102")
	ids := versionIDs(t, c, "k", true)
	if len(ids) != 100 {
		t.Fatalf("%d versions after a day, want 100", len(ids))
	}
	// The three oldest, deprecated versions went; the labelled ones stay.
	if ids[0] != token("v003") {
		t.Fatalf("oldest version kept = %s, want v003", ids[0])
	}
	wantLabels(t, c, "k", map[string][]string{token("v101"): {"AWSPREVIOUS"}, token("v102"): {"AWSCURRENT"}})
}

// TestNotFound follows the Errors sections of the reference pages:
// ResourceNotFoundException, "Secrets Manager can't find the resource that
// you asked for", for unknown secrets and for GetSecretValue of an unknown
// version or staging label (refGetSecretValue).
func TestNotFound(t *testing.T) {
	_, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	ctx := t.Context()
	missing := aws.String("missing")
	calls := map[string]func() error{
		"GetSecretValue unknown secret": func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: missing})
			return err
		},
		"GetSecretValue unknown stage": func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("k"), VersionStage: aws.String("AWSPENDING")})
			return err
		},
		"GetSecretValue unknown version": func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("k"), VersionId: aws.String(token("nope"))})
			return err
		},
		"GetSecretValue version and stage of different versions": func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("k"), VersionId: aws.String(token("v1")), VersionStage: aws.String("AWSPREVIOUS")})
			return err
		},
		"DescribeSecret": func() error {
			_, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: missing})
			return err
		},
		"PutSecretValue": func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: missing, ClientRequestToken: aws.String(token("x")), SecretString: aws.String("x")})
			return err
		},
		"ListSecretVersionIds": func() error {
			_, err := c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: missing})
			return err
		},
		"UpdateSecretVersionStage unknown secret":  func() error { return move(ctx, c, "missing", "L", token("v1"), "") },
		"UpdateSecretVersionStage unknown version": func() error { return move(ctx, c, "k", "L", token("nope"), "") },
	}
	for name, call := range calls {
		if _, ok := errors.AsType[*types.ResourceNotFoundException](call()); !ok {
			t.Errorf("%s: want ResourceNotFoundException", name)
		}
	}
}

// TestSecretIDIsNameOrARN follows refGetSecretValue: SecretId is "The ARN or
// name of the secret".
func TestSecretIDIsNameOrARN(t *testing.T) {
	_, c := setup(t)
	out, err := c.CreateSecret(t.Context(), &sm.CreateSecretInput{Name: aws.String("k"), ClientRequestToken: aws.String(token("v1")), SecretString: aws.String("one")})
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, c, aws.ToString(out.ARN), "AWSCURRENT"); got != "one" {
		t.Fatalf("value by ARN = %q", got)
	}
}

// TestListSecretsNameFilter follows refListSecrets and refFilter: "name:
// Prefix match, case-sensitive", "You can prefix your search value with an
// exclamation mark (!) in order to perform negation filters", results in
// pages of MaxResults with a NextToken, listed by CreatedDate by default.
func TestListSecretsNameFilter(t *testing.T) {
	_, c := setup(t)
	for i, n := range []string{"rotor/b", "rotor/a", "Rotor/c", "other/d", "rotor/a/rotor-state", "rotor/e"} {
		create(t, c, n, token(fmt.Sprint(i)), "v")
	}
	list := func(values ...string) []string {
		var names []string
		p := sm.NewListSecretsPaginator(c, &sm.ListSecretsInput{
			Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: values}},
			MaxResults: aws.Int32(2),
		})
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(out.SecretList) > 2 {
				t.Fatalf("page of %d secrets, want at most MaxResults", len(out.SecretList))
			}
			for _, e := range out.SecretList {
				names = append(names, aws.ToString(e.Name))
			}
		}
		return names
	}
	if got, want := list("rotor/"), []string{"rotor/b", "rotor/a", "rotor/a/rotor-state", "rotor/e"}; !slices.Equal(got, want) {
		t.Errorf("name rotor/ = %v, want %v", got, want)
	}
	if got, want := list("rotor/", "!rotor/a"), []string{"rotor/b", "rotor/e"}; !slices.Equal(got, want) {
		t.Errorf("name rotor/ and not rotor/a = %v, want %v", got, want)
	}
	_, err := c.ListSecrets(t.Context(), &sm.ListSecretsInput{NextToken: aws.String("bogus")})
	if _, ok := errors.AsType[*types.InvalidNextTokenException](err); !ok {
		t.Errorf("bogus NextToken: err = %v, want InvalidNextTokenException", err)
	}
}

// TestWireProtocol checks the JSON 1.1 envelope itself, which the SDK hides:
// an unknown X-Amz-Target and an unsigned request are answered with an
// error body carrying __type, as
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html
// and the AWS JSON 1.1 protocol describe.
func TestWireProtocol(t *testing.T) {
	srv := awsfake.Start(t, awsfake.Options{})
	tests := []struct {
		name, target, auth, wantType string
	}{
		{"unknown operation", "secretsmanager.RotateSecret", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request", "UnknownOperationException"},
		{"unsigned", "secretsmanager.ListSecrets", "", "IncompleteSignature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Amz-Target", tc.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var body struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.StatusCode != http.StatusBadRequest || body.Type != tc.wantType || body.Message == "" {
				t.Fatalf("got %d %q %q, want 400 %s with a message", resp.StatusCode, body.Type, body.Message, tc.wantType)
			}
		})
	}
}

// TestDescribeSecretHasNoValue follows refDescribeSecret: DescribeSecret
// "does not include the encrypted secret value", only metadata, among
// which VersionIdsToStages (which rotor's version read relies on). The
// raw response is checked, since the SDK's output type has no field that
// could carry a value.
func TestDescribeSecretHasNoValue(t *testing.T) {
	srv, c := setup(t)
	create(t, c, "k", token("v1"), "first-value")
	put(t, c, "k", token("v2"), "second-value", "AWSPENDING")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/", strings.NewReader(`{"SecretId":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "secretsmanager.DescribeSecret")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]json.RawMessage
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil {
		t.Fatalf("DescribeSecret: %d %s", resp.StatusCode, b)
	}
	for _, f := range []string{"SecretString", "SecretBinary"} {
		if _, ok := body[f]; ok {
			t.Errorf("DescribeSecret answered a %s field", f)
		}
	}
	if strings.Contains(string(b), "-value") {
		t.Error("DescribeSecret answered a secret value")
	}
	var stages map[string][]string
	if err := json.Unmarshal(body["VersionIdsToStages"], &stages); err != nil || !slices.Equal(stages[token("v2")], []string{"AWSPENDING"}) || !slices.Equal(stages[token("v1")], []string{"AWSCURRENT"}) {
		t.Fatalf("VersionIdsToStages = %s", body["VersionIdsToStages"])
	}
}

// TestCalls checks the call log tests use to count requests per secret.
func TestCalls(t *testing.T) {
	srv, c := setup(t)
	create(t, c, "k", token("v1"), "one")
	value(t, c, "k", "AWSCURRENT")
	value(t, c, "k", "AWSCURRENT")
	if n := srv.Count("GetSecretValue", "k"); n != 2 {
		t.Fatalf("Count(GetSecretValue, k) = %d, want 2", n)
	}
	srv.ResetCalls()
	if n := len(srv.Calls()); n != 0 {
		t.Fatalf("%d calls after ResetCalls", n)
	}
}
