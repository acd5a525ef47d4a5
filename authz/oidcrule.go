package authz

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// OIDCRule maps the claims of a verified token to a role. Every non-empty
// field must match the token's claim of the same name exactly (Ref,
// JobWorkflowRef and Subject are [path.Match] patterns, in which '*' does
// not cross '/'); a claim the token lacks matches nothing.
//
// A rule must pin one repository literally, by Repository, RepositoryID or
// a Subject of the form "repo:OWNER/NAME:…" without a wildcard in OWNER or
// NAME (or, for issuers other than GitHub, a Subject without any
// wildcard): any repository on GitHub can obtain a token for any audience,
// so a rule that names only an owner, or a pattern such as
// "repo:*/*:ref:refs/heads/main", would let every repository of that owner,
// or every repository in the world, in. Wildcards are for what comes after
// the repository: the ref, the rest of the subject, the workflow file of a
// pinned workflow repository. [OIDCRule.Validate] enforces this.
type OIDCRule struct {
	// Repository is "owner/name".
	Repository string `yaml:"repository,omitempty" json:"repository,omitempty"`
	// RepositoryID is the repository's numeric id, which, unlike its
	// name, is never reused by another repository.
	RepositoryID string `yaml:"repository_id,omitempty" json:"repository_id,omitempty"`
	// RepositoryOwner is the owning user or organisation. It narrows a
	// rule but does not pin a repository.
	RepositoryOwner string `yaml:"repository_owner,omitempty" json:"repository_owner,omitempty"`
	// RepositoryOwnerID is the owner's numeric id.
	RepositoryOwnerID string `yaml:"repository_owner_id,omitempty" json:"repository_owner_id,omitempty"`
	// Ref is a pattern for the git ref, e.g. "refs/heads/main" or
	// "refs/tags/v*".
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
	// Environment is the deployment environment of the job.
	Environment string `yaml:"environment,omitempty" json:"environment,omitempty"`
	// JobWorkflowRef is a pattern for the workflow file the job runs, e.g.
	// "org/infra/.github/workflows/rotate.yml@refs/heads/main"; its
	// repository part (before /.github/) must be literal.
	JobWorkflowRef string `yaml:"job_workflow_ref,omitempty" json:"job_workflow_ref,omitempty"`
	// Subject is a pattern for the sub claim, e.g.
	// "repo:org/app:environment:production".
	Subject string `yaml:"sub,omitempty" json:"sub,omitempty"`
	// Role is the role a matching token gets.
	Role Role `yaml:"role" json:"role"`
	// Secrets limits the role to these secrets (see [Principal.Secrets]).
	Secrets []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
}

// globChars are the characters that make a path.Match pattern match more
// than itself.
const globChars = `*?[\`

// githubRepository matches "owner/name" as GitHub allows them.
var githubRepository = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$`)

// errUnpinned says why a rule must pin a repository.
var errUnpinned = errors.New("pin one repository: set repository (owner/name), repository_id, or sub as repo:OWNER/NAME:… with no wildcard in OWNER or NAME; any GitHub repository can obtain a token for any audience")

// Validate checks r as it appears in the configuration: that it pins a
// repository literally (see [OIDCRule]), that its patterns are valid, and
// its role and secrets. Errors name the field at fault.
func (r OIDCRule) Validate() error {
	pinned := false
	if r.Repository != "" {
		if !githubRepository.MatchString(r.Repository) {
			return fmt.Errorf("oidc rule: repository %q: want owner/name, literally (no wildcards)", clip(r.Repository))
		}
		pinned = true
	}
	if r.RepositoryID != "" {
		if strings.Trim(r.RepositoryID, "0123456789") != "" {
			return fmt.Errorf("oidc rule: repository_id %q: want the repository's numeric id", clip(r.RepositoryID))
		}
		pinned = true
	}
	for name, v := range map[string]string{"repository_owner": r.RepositoryOwner, "repository_owner_id": r.RepositoryOwnerID, "environment": r.Environment} {
		if strings.ContainsAny(v, globChars) {
			return fmt.Errorf("oidc rule: %s %q is matched literally: remove the wildcard", name, clip(v))
		}
	}
	for name, p := range map[string]string{"ref": r.Ref, "job_workflow_ref": r.JobWorkflowRef, "sub": r.Subject} {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("oidc rule: %s pattern %q: %w", name, clip(p), err)
		}
	}
	if r.Subject != "" {
		if rest, ok := strings.CutPrefix(r.Subject, "repo:"); ok {
			repo, _, _ := strings.Cut(rest, ":")
			if !githubRepository.MatchString(repo) {
				return fmt.Errorf("oidc rule: sub %q: the repository after repo: must be owner/name, literally (a wildcard there lets other repositories in)", clip(r.Subject))
			}
			if r.Repository != "" && repo != r.Repository {
				return fmt.Errorf("oidc rule: sub %q names another repository than repository %q: the rule could never match", clip(r.Subject), r.Repository)
			}
		} else if strings.ContainsAny(r.Subject, globChars) {
			return fmt.Errorf("oidc rule: sub %q: a pattern must start with repo:OWNER/NAME:; other subjects are matched literally", clip(r.Subject))
		}
		pinned = true
	}
	if r.JobWorkflowRef != "" {
		repo, _, ok := strings.Cut(r.JobWorkflowRef, "/.github/")
		if !ok || !githubRepository.MatchString(repo) {
			return fmt.Errorf("oidc rule: job_workflow_ref %q: want OWNER/NAME/.github/workflows/FILE@REF with a literal OWNER/NAME", clip(r.JobWorkflowRef))
		}
	}
	if !pinned {
		return fmt.Errorf("oidc rule: %w", errUnpinned)
	}
	return validateGrant("oidc rule", r.Role, r.Secrets)
}

// clip shortens a configured value for a message.
func clip(s string) string { return truncate(s, 200) }

// match reports whether c satisfies every condition of r.
func (r OIDCRule) match(c *oidcClaims) bool {
	exact := func(want, have string) bool { return want == "" || want == have }
	glob := func(pattern, have string) bool {
		if pattern == "" {
			return true
		}
		ok, err := path.Match(pattern, have)
		return err == nil && ok && have != ""
	}
	return exact(r.Repository, string(c.Repository)) && exact(r.RepositoryID, string(c.RepositoryID)) &&
		exact(r.RepositoryOwner, string(c.RepositoryOwner)) && exact(r.RepositoryOwnerID, string(c.RepositoryOwnerID)) &&
		exact(r.Environment, string(c.Environment)) &&
		glob(r.Ref, string(c.Ref)) && glob(r.JobWorkflowRef, string(c.JobWorkflowRef)) && glob(r.Subject, c.Subject)
}
