// Package serviceurl checks the URL of a service rotor sends credentials
// to (Clerk's Backend API, a Secrets Manager endpoint): one rule for every
// backend, so that no option lets a secret travel in clear text.
package serviceurl

import (
	"fmt"
	"net"
	"net/url"
)

// Check returns why raw is not an acceptable service URL, or nil. It must
// be an absolute https URL without user info, query or fragment; plain
// http is accepted only to a loopback address (a local emulator), because
// what crosses it, named by carries ("the secret key"), would travel in
// clear text. example is a valid URL to show in the message.
func Check(raw, example, carries string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid URL %q (want e.g. %s)", raw, example)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("plain http is only allowed to a loopback address: %s would travel in clear text", carries)
		}
	default:
		return fmt.Errorf("invalid URL %q: scheme must be https", raw)
	}
	return nil
}
