//go:build tools

// Package vault pins the HashiCorp Vault server that rotor's integration
// tests run. It is a separate module so that Vault's large dependency graph
// never enters rotor's own go.mod.
//
// Pairing: Vault v1.21.0 with the sdk (v0.20.0) and api (v1.22.0) versions
// that `go mod tidy` selects for it. This combination builds from the Go
// module proxy; v1.21.4 does not, because its in-tree sdk matches no
// published sdk release. See build.sh.
//
// The client side matches: rotor's root go.mod requires
// github.com/hashicorp/vault/api v1.22.0, the api this server release was
// built and tested with, and store/vault is tested against this server
// through internal/vaulttest, whose Version constant must equal the require
// line here (TestVersionMatchesToolsModule checks it). Plugins used by the
// tests come with the server: KV v2 (vault-plugin-secrets-kv v0.25.0) and
// the approle, jwt (vault-plugin-auth-jwt v0.25.0) and kubernetes
// (vault-plugin-auth-kubernetes v0.23.0) auth methods.
//
// Build with ./build.sh; it prints the binary's path and is idempotent.
package vault

import _ "github.com/hashicorp/vault"
