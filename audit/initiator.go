package audit

import (
	"os"
	"os/user"
)

// InitiatorSystem is the initiator of events rotor causes on its own: the
// daemon's scheduled rotations, and the log's own recovery records.
const InitiatorSystem = "system"

// DetectInitiator returns who is running rotor, for the initiator of audit
// events: flag when it is set (an explicit --initiator), else
// $ROTOR_INITIATOR, else, inside GitHub Actions (GITHUB_ACTIONS=true),
// "ci:github:<GITHUB_REPOSITORY>:<GITHUB_WORKFLOW>#<GITHUB_RUN_ID>", else
// "user:<name>" with the name osUser returns ("user:unknown" when it returns
// nothing). A nil getenv means os.Getenv; a nil osUser looks up the current
// operating system user.
//
// The result is a claim, not an authenticated identity: whoever runs rotor
// can set the flag or the environment. Where a caller was authenticated
// (by the API server), record that identity instead.
func DetectInitiator(flag string, getenv func(string) string, osUser func() string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if osUser == nil {
		osUser = currentUser
	}
	if flag != "" {
		return flag
	}
	if v := getenv("ROTOR_INITIATOR"); v != "" {
		return v
	}
	if getenv("GITHUB_ACTIONS") == "true" {
		return "ci:github:" + getenv("GITHUB_REPOSITORY") + ":" + getenv("GITHUB_WORKFLOW") + "#" + getenv("GITHUB_RUN_ID")
	}
	name := osUser()
	if name == "" {
		name = "unknown"
	}
	return "user:" + name
}

// currentUser returns the login name of the current user, or "" when it
// cannot be found (e.g. a container's uid without a passwd entry).
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return os.Getenv("USERNAME")
}
