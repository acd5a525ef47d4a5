package vault

import (
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/authz"
)

// rule grants capabilities on one path pattern, relative to the mount:
// <mount>/<path>/<prefix>/<sub>, where sub is "*" when empty, with, when
// params is set, only those request parameters allowed.
type rule struct {
	path, comment string
	caps          []string
	sub           string
	params        []string
}

// Policy returns a least-privilege Vault ACL policy (HCL) for one of rotor's
// roles ([authz.Roles]) over the secrets under prefix in the KV v2 mount:
//
//   - app reads secret values (data) and each secret's metadata (so that a
//     refresh of an unchanged secret is one metadata read), nothing else;
//   - viewer lists secrets and reads their metadata, which holds their key
//     ids, times and history (see [Store.Describe]), never a value;
//   - ci reads and writes values (rotate, roll back, stage, revoke), reads
//     metadata, and patches it with the description of each version and
//     max_versions, but cannot delete, destroy or change other settings;
//   - admin can also delete, undelete and destroy versions and change or
//     delete metadata.
//
// The shared audit chain under <prefix>/_audit (package audit/vaultchain)
// has rules of its own, more specific than the ones above and so taking
// precedence in Vault: ci and admin may create records and read them, move
// the head and write the checkpoint of the chain's saves (see
// [audit.Saves]); viewer reads the chain (key ids, never values); app has
// no access; and no role may change, delete or destroy a record.
//
// Vault grants reads per path, not per version or field: a role that reads
// values reads every slot and the older versions Vault keeps. Tokens also
// need Vault's default policy, which rotor uses to look up and renew its
// own token.
func Policy(role authz.Role, mount, prefix string) (string, error) {
	mount, prefix = strings.Trim(mount, "/"), strings.Trim(prefix, "/")
	if err := checkPathPart(mount); err != nil {
		return "", fmt.Errorf("policy: mount %q: %w", mount, err)
	}
	if err := checkPathPart(prefix); err != nil {
		return "", fmt.Errorf("policy: prefix %q: %w", prefix, err)
	}
	var (
		readData   = rule{"data", "read secret values", []string{"read"}, "", nil}
		writeData  = rule{"data", "read and write secret values (rotate, roll back, stage, revoke)", []string{"create", "read", "update"}, "", nil}
		adminData  = rule{"data", "read and write secret values; soft-delete the latest version", []string{"create", "read", "update", "delete"}, "", nil}
		appMeta    = rule{"metadata", "read a secret's current version, to refresh only when it moved", []string{"read"}, "", nil}
		readMeta   = rule{"metadata", "list secrets and read their versions, key ids and history, never their values", []string{"read", "list"}, "", nil}
		ciMeta     = rule{"metadata", "list secrets, read their metadata, and describe each version written (key ids, history) and keep max_versions; no other setting", []string{"read", "list", "patch"}, "", []string{"custom_metadata", "max_versions"}}
		adminMeta  = rule{"metadata", "list, read, change and delete metadata (max_versions, cas_required, custom metadata)", []string{"create", "read", "update", "patch", "delete", "list"}, "", nil}
		deleteVers = rule{"delete", "soft-delete versions", []string{"update"}, "", nil}
		undelete   = rule{"undelete", "restore soft-deleted versions", []string{"update"}, "", nil}
		destroy    = rule{"destroy", "destroy versions permanently", []string{"update"}, "", nil}
	)
	var (
		noAudit       = rule{"data", "no access to the audit chain", []string{"deny"}, "_audit/*", nil}
		noAuditMeta   = rule{"metadata", "no access to the audit chain's metadata", []string{"deny"}, "_audit/*", nil}
		readAudit     = rule{"data", "read the audit chain (key ids, never values)", []string{"read"}, "_audit/*", nil}
		appendRecords = rule{"data", "append audit records; never change one", []string{"create", "read"}, "_audit/records/*", nil}
		moveHead      = rule{"data", "move the audit chain head (compare-and-swap)", []string{"create", "read", "update"}, "_audit/head", nil}
		checkpoint    = rule{"data", "write the checkpoint of the chain's saves (an optimisation, never the source of truth)", []string{"create", "read", "update"}, "_audit/checkpoint/*", nil}
		auditMeta     = rule{"metadata", "read the audit chain's versions; never change or delete them", []string{"read", "list"}, "_audit/*", nil}
		auditDelete   = rule{"delete", "audit records cannot be deleted", []string{"deny"}, "_audit/*", nil}
		auditUndelete = rule{"undelete", "audit records cannot be undeleted", []string{"deny"}, "_audit/*", nil}
		auditDestroy  = rule{"destroy", "audit records cannot be destroyed", []string{"deny"}, "_audit/*", nil}
	)
	var rules []rule
	switch role {
	case authz.RoleApp:
		rules = []rule{readData, appMeta, noAudit, noAuditMeta}
	case authz.RoleViewer:
		rules = []rule{readMeta, readAudit}
	case authz.RoleCI:
		rules = []rule{writeData, ciMeta, readAudit, appendRecords, moveHead, checkpoint, auditMeta}
	case authz.RoleAdmin:
		rules = []rule{adminData, adminMeta, deleteVers, undelete, destroy,
			readAudit, appendRecords, moveHead, checkpoint, auditMeta, auditDelete, auditUndelete, auditDestroy}
	default:
		_, err := authz.ParseRole(string(role))
		return "", fmt.Errorf("policy: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# rotor %s policy for the secrets under %s/%s (KV v2).\n", role, mount, prefix)
	for _, r := range rules {
		sub := r.sub
		if sub == "" {
			sub = "*"
		}
		fmt.Fprintf(&b, "\n# %s\npath \"%s/%s/%s/%s\" {\n  capabilities = [%s]\n",
			r.comment, mount, r.path, prefix, sub, quoteAll(r.caps))
		if len(r.params) > 0 {
			b.WriteString("  allowed_parameters = {\n")
			for _, p := range r.params {
				fmt.Fprintf(&b, "    %q = []\n", p)
			}
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = `"` + s + `"`
	}
	return strings.Join(q, ", ")
}
