// Package childenv builds the environment of the processes rotor starts
// (reload and verify hooks, the application under `rotor run`): rotor's
// own environment without the variables rotor consumed for itself (store
// and auth credentials, a provider's API key, rotor's own ROTOR_*
// settings), so that a hook that prints its environment, or an app that
// dumps process.env on an error page, cannot leak what only rotor needed.
// Everything else passes through (PATH, HOME, PORT, NODE_ENV,
// KUBECONFIG…), and a consumed variable passes when the configuration
// names it explicitly.
package childenv

import "strings"

// Filter returns the entries of environ ("NAME=value") except those whose
// name matches drop, unless it is in keep. A drop entry ending in '*'
// matches every name with that prefix; other entries match one name
// exactly. The order of environ is kept.
func Filter(environ, drop, keep []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if matches(name, drop) && !contains(keep, name) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func matches(name string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
