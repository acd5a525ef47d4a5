// Package serviceurl checks the URL of a service rotor sends credentials
// to (Clerk's Backend API, a Secrets Manager endpoint): one rule for every
// backend, so that no option lets a secret travel in clear text.
package serviceurl

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Check returns why raw is not an acceptable service URL, or nil. It must
// be an absolute https URL without user info, query or fragment; plain
// http is accepted only to a loopback address (a local emulator), because
// what crosses it, named by carries ("the secret key"), would travel in
// clear text. example is a valid URL to show in the message.
func Check(raw, example, carries string) error {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		// Never repeat the user info: it is where a password or token
		// would be.
		u.User = nil
		return fmt.Errorf("invalid URL %q with user info (removed here; want e.g. %s): put credentials in the environment, not in the URL", u.String(), example)
	}
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid URL %s (want e.g. %s)", quoted(raw), example)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("plain http is only allowed to a loopback address: %s would travel in clear text", carries)
		}
	default:
		return fmt.Errorf("invalid URL %s: scheme must be https", quoted(raw))
	}
	return nil
}

// quoted is raw in quotes, or a placeholder when it has an '@' that may
// set off user info url.Parse could not read (a password with a space).
func quoted(raw string) string {
	if strings.Contains(raw, "@") {
		return "(not shown: it contains '@', which may set off a password)"
	}
	return strconv.Quote(raw)
}
