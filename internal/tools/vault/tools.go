//go:build tools

// Package vault pins the HashiCorp Vault server that rotor's integration
// tests run. It is a separate module so that Vault's large dependency graph
// never enters rotor's own go.mod.
//
// Pairing: Vault v1.21.0 with the sdk (v0.20.0) and api (v1.22.0) versions
// that `go mod tidy` selects for it. This combination builds from the Go
// module proxy; v1.21.4 does not, because its in-tree sdk matches no
// published sdk release. See build.sh.
package vault

import _ "github.com/hashicorp/vault"
