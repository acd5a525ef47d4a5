package awssm

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/authz"
)

// TestPolicyAuditChain checks the DynamoDB grants of each role for the
// shared audit chain: ci and admin read and put, viewer reads, app has
// nothing, nobody deletes or updates, always limited to the prefix's items;
// admin alone may create the table (rotor audit init).
func TestPolicyAuditChain(t *testing.T) {
	tests := []struct {
		role authz.Role
		want []string
	}{
		{authz.RoleAdmin, []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:CreateTable", "dynamodb:DescribeTable"}},
		{authz.RoleCI, []string{"dynamodb:GetItem", "dynamodb:PutItem"}},
		{authz.RoleViewer, []string{"dynamodb:GetItem"}},
		{authz.RoleApp, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			p, err := Policy(tt.role, PolicyOptions{Prefix: "team/", Region: "eu-west-1", Account: "123456789012", AuditTable: "audit"})
			if err != nil {
				t.Fatal(err)
			}
			var doc policyDocument
			if err := json.Unmarshal([]byte(p), &doc); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range doc.Statement {
				for _, a := range st.Action {
					if len(a) < 9 || a[:9] != "dynamodb:" {
						continue
					}
					got = append(got, a)
					if !slices.Equal(st.Resource, []string{"arn:aws:dynamodb:eu-west-1:123456789012:table/audit"}) {
						t.Errorf("%s granted on %v, want the audit table only", a, st.Resource)
					}
					if strings.HasSuffix(a, "Table") {
						continue // table actions have no items to limit
					}
					if st.Condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] != "team/*" {
						t.Errorf("%s not limited to the prefix's items: %v", a, st.Condition)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s may %v on the audit table, want %v", tt.role, got, tt.want)
			}
		})
	}
}
