package awssm

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store"
)

// allowed reports whether doc lets action on resource, the way IAM
// evaluates it: an explicit Deny wins over any Allow.
func allowed(t *testing.T, doc policyDocument, action, resource string) bool {
	t.Helper()
	allow := false
	for _, st := range doc.Statement {
		if !slices.Contains(st.Action, action) || !slices.ContainsFunc(st.Resource, func(p string) bool { return globMatch(p, resource) }) {
			continue
		}
		if st.Effect == "Deny" {
			return false
		}
		allow = true
	}
	return allow
}

// globMatch matches an IAM resource pattern: * is any run of characters
// and ? any one character.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

func parsePolicy(t *testing.T, role authz.Role, o PolicyOptions) policyDocument {
	t.Helper()
	s, err := Policy(role, o)
	if err != nil {
		t.Fatalf("Policy(%s): %v", role, err)
	}
	var doc policyDocument
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("Policy(%s) is not JSON: %v", role, err)
	}
	if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
		t.Fatalf("Policy(%s) = %s", role, s)
	}
	return doc
}

// storeActions lists the IAM actions of every call the store makes.
func storeActions() []string {
	var as []string
	typ := reflect.TypeFor[api]()
	for i := range typ.NumMethod() {
		as = append(as, "secretsmanager:"+typ.Method(i).Name)
	}
	return as
}

// TestPolicy checks each role's policy against the ARNs Secrets Manager
// gives the store's own secrets.
func TestPolicy(t *testing.T) {
	st, srv := newTestStore(t)
	mustSave(t, st, &store.Secret{Name: "app-key", Current: key("c0")}, store.NoVersion)
	arns := map[string]string{}
	out, err := srv.Client().ListSecrets(t.Context(), &sm.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out.SecretList {
		arns[aws.ToString(e.Name)] = aws.ToString(e.ARN)
	}
	secret, state := arns[st.SecretName("app-key")], arns[st.StateName("app-key")]
	other := strings.Replace(secret, ":secret:rotor/", ":secret:payments/", 1)
	if secret == "" || state == "" {
		t.Fatalf("ARNs = %v", arns)
	}

	tests := []struct {
		role authz.Role
		// action → resource → allowed
		want map[string]map[string]bool
	}{
		{authz.RoleApp, map[string]map[string]bool{
			"secretsmanager:GetSecretValue": {secret: true, state: false, other: false},
			"secretsmanager:DescribeSecret": {secret: true},
			"secretsmanager:PutSecretValue": {secret: false},
			"secretsmanager:ListSecrets":    {"*": false},
		}},
		{authz.RoleViewer, map[string]map[string]bool{
			"secretsmanager:GetSecretValue":           {secret: false, state: false},
			"secretsmanager:DescribeSecret":           {secret: true, state: true},
			"secretsmanager:ListSecretVersionIds":     {secret: true},
			"secretsmanager:UpdateSecretVersionStage": {secret: false},
		}},
		{authz.RoleCI, map[string]map[string]bool{
			"secretsmanager:GetSecretValue": {secret: true, state: true, other: false},
			"secretsmanager:PutSecretValue": {secret: true, state: true},
			"secretsmanager:DeleteSecret":   {secret: false},
			"secretsmanager:TagResource":    {secret: false},
		}},
		{authz.RoleAdmin, map[string]map[string]bool{
			"secretsmanager:DeleteSecret":  {secret: true, state: true, other: false},
			"secretsmanager:RestoreSecret": {secret: true},
			"secretsmanager:TagResource":   {secret: true},
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			doc := parsePolicy(t, tc.role, PolicyOptions{})
			for action, byResource := range tc.want {
				for res, want := range byResource {
					if got := allowed(t, doc, action, res); got != want {
						t.Errorf("%s on %s: allowed = %v, want %v", action, res, got, want)
					}
				}
			}
			if tc.role == authz.RoleCI || tc.role == authz.RoleAdmin {
				// Every call the store makes, on both of its secrets.
				for _, a := range storeActions() {
					res := []string{secret, state}
					if a == "secretsmanager:ListSecrets" {
						res = []string{"*"}
					}
					for _, r := range res {
						if !allowed(t, doc, a, r) {
							t.Errorf("%s on %s is not allowed, but the store calls it", a, r)
						}
					}
				}
			}
		})
	}
}

func TestPolicyOptions(t *testing.T) {
	const key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	doc := parsePolicy(t, authz.RoleCI, PolicyOptions{Prefix: "team/", Region: "eu-west-1", Account: "111122223333", KMSKeyARN: key})
	if !allowed(t, doc, "secretsmanager:PutSecretValue", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:team/k-AbCdEf") {
		t.Error("ci cannot write its secrets under the prefix")
	}
	if allowed(t, doc, "secretsmanager:PutSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:team/k-AbCdEf") {
		t.Error("ci can write secrets in another region")
	}
	if !allowed(t, doc, "kms:GenerateDataKey", key) || !allowed(t, doc, "kms:Decrypt", key) {
		t.Error("ci cannot use the KMS key")
	}
	app := parsePolicy(t, authz.RoleApp, PolicyOptions{KMSKeyARN: key})
	if !allowed(t, app, "kms:Decrypt", key) || allowed(t, app, "kms:GenerateDataKey", key) {
		t.Error("app must decrypt with the KMS key and nothing more")
	}

	for name, call := range map[string]func() (string, error){
		"unknown role":        func() (string, error) { return Policy("root", PolicyOptions{}) },
		"wildcard in prefix":  func() (string, error) { return Policy(authz.RoleApp, PolicyOptions{Prefix: "*"}) },
		"quote in the prefix": func() (string, error) { return Policy(authz.RoleApp, PolicyOptions{Prefix: `a"b`}) },
	} {
		if _, err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
