// Package keyid derives the public identifier of a secret value.
//
// A key id is HMAC-SHA256(salt, value), hex encoded and truncated to 16
// characters. The salt is per deployment, so the same value has different
// ids in different deployments and an id cannot be checked against a guessed
// value without the salt. Key ids are what rotor prints, logs and audits;
// values never are.
//
// The package belongs to the keyring module (which depends on the standard
// library only) so that rotor and every SDK share this one definition;
// the hex digest is lowercase, and an SDK in another language must produce
// the same ids (see the example).
package keyid

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Len is the number of hex characters in a key id.
const Len = 16

// Of returns the key id of value under salt.
func Of(salt []byte, value string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))[:Len]
}
