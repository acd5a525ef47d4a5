package awssm

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/authz"
)

// PolicyOptions says which secrets a policy covers.
type PolicyOptions struct {
	// Prefix is the store's name prefix; default [DefaultPrefix].
	Prefix string
	// Partition, Region and Account narrow the secrets' ARNs; defaults
	// "aws", "*" and "*".
	Partition, Region, Account string
	// KMSKeyARN is the customer managed KMS key the secrets are encrypted
	// with, if any; the policy then allows using it through Secrets
	// Manager. Secrets encrypted with aws/secretsmanager need nothing.
	KMSKeyARN string
	// AuditTable is the DynamoDB table of the shared audit chain
	// (audit/dynamochain); default "rotor-audit".
	AuditTable string
}

// Actions rotor's store calls, by role.
var (
	appActions    = []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
	viewerActions = []string{"secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"}
	ciActions     = []string{
		"secretsmanager:CreateSecret",
		"secretsmanager:DescribeSecret",
		"secretsmanager:GetSecretValue",
		"secretsmanager:ListSecretVersionIds",
		"secretsmanager:PutSecretValue",
		"secretsmanager:UpdateSecretVersionStage",
	}
	adminActions = append(append([]string(nil), ciActions...),
		"secretsmanager:DeleteSecret",
		"secretsmanager:RestoreSecret",
		"secretsmanager:TagResource",
		"secretsmanager:UntagResource",
	)
)

type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// Policy returns a least-privilege IAM policy (JSON) for one of rotor's
// roles ([authz.Roles]) over the secrets under the prefix:
//
//   - app reads secret values and nothing else: GetSecretValue, plus
//     DescribeSecret, which the AWS caching clients call to notice a new
//     AWSCURRENT. It is denied the state secrets, which hold retired and
//     staged keys.
//   - viewer sees which version holds which label (DescribeSecret,
//     ListSecretVersionIds), never a value. Rotor's own status reads the
//     state secret and so needs the ci role or rotor's API.
//   - ci does everything rotor's store does: create secrets, read and write
//     values and labels, list versions and secrets (ListSecrets cannot be
//     limited to a prefix, so it is granted on "*"). It cannot delete a
//     secret or change its tags.
//   - admin can also delete and restore secrets and manage their tags.
//
// For the shared audit chain in the DynamoDB table AuditTable, ci and
// admin may read and put items, viewer may read them, app has no access,
// and nobody may delete or update one; every grant on items is limited to
// the items under the prefix (dynamodb:LeadingKeys). Admin may also
// describe and create the table, for the one-off `rotor audit init`
// (Backend.CreateTable in audit/dynamochain). IAM cannot require a
// conditional PutItem, so a ci principal could overwrite a record: the
// chain detects that without the salt, and the table's point-in-time
// recovery keeps what was there.
func Policy(role authz.Role, o PolicyOptions) (string, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "*?\"\\ ") {
		return "", fmt.Errorf("policy: prefix %q: must not contain wildcards, quotes, '\\' or spaces", o.Prefix)
	}
	o.Partition = cmp.Or(o.Partition, "aws")
	o.Region = cmp.Or(o.Region, "*")
	o.Account = cmp.Or(o.Account, "*")
	base := fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:", o.Partition, o.Region, o.Account)
	// Secrets Manager appends "-" and six random characters to names in
	// ARNs; rotor's names have no '/', so only state secrets match the
	// second pattern.
	secrets := base + o.Prefix + "*"
	table := fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", o.Partition, o.Region, o.Account, cmp.Or(o.AuditTable, "rotor-audit"))
	chainItems := map[string]map[string]string{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": strings.TrimSuffix(o.Prefix, "/") + "/*"}}
	states := base + o.Prefix + "*" + StateSuffix + "-??????"

	var sts []statement
	writer := false
	switch role {
	case authz.RoleApp:
		sts = []statement{
			{Sid: "ReadSecretValues", Effect: "Allow", Action: appActions, Resource: []string{secrets}},
			{Sid: "DenyRotorState", Effect: "Deny", Action: []string{"secretsmanager:GetSecretValue"}, Resource: []string{states}},
		}
	case authz.RoleViewer:
		sts = []statement{
			{Sid: "ReadLabels", Effect: "Allow", Action: viewerActions, Resource: []string{secrets}},
			{Sid: "ReadAuditChain", Effect: "Allow", Action: []string{"dynamodb:GetItem"}, Resource: []string{table}, Condition: chainItems},
		}
	case authz.RoleCI, authz.RoleAdmin:
		actions := ciActions
		if role == authz.RoleAdmin {
			actions = adminActions
		}
		sts = []statement{
			{Sid: "ManageSecrets", Effect: "Allow", Action: actions, Resource: []string{secrets}},
			{Sid: "ListSecrets", Effect: "Allow", Action: []string{"secretsmanager:ListSecrets"}, Resource: []string{"*"}},
			{Sid: "AppendAuditChain", Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:PutItem"}, Resource: []string{table}, Condition: chainItems},
		}
		if role == authz.RoleAdmin {
			sts = append(sts, statement{Sid: "CreateAuditTable", Effect: "Allow", Action: []string{"dynamodb:CreateTable", "dynamodb:DescribeTable"}, Resource: []string{table}})
		}
		writer = true
	default:
		_, err := authz.ParseRole(string(role))
		return "", fmt.Errorf("policy: %w", err)
	}
	if o.KMSKeyARN != "" && role != authz.RoleViewer {
		kms := []string{"kms:Decrypt"}
		if writer {
			kms = append(kms, "kms:GenerateDataKey")
		}
		sts = append(sts, statement{
			Sid: "UseKMSKeyThroughSecretsManager", Effect: "Allow", Action: kms, Resource: []string{o.KMSKeyARN},
			Condition: map[string]map[string]string{"StringLike": {"kms:ViaService": "secretsmanager." + o.Region + ".amazonaws.com"}},
		})
	}
	b, err := json.MarshalIndent(policyDocument{Version: "2012-10-17", Statement: sts}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("policy: %w", err)
	}
	return string(b) + "\n", nil
}
