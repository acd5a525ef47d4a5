// Package api defines the JSON documents rotor prints with -o json, shared
// by the command line and, as they move here, the HTTP API of `rotor serve`
// and `rotor daemon`. So far it holds [Version], the document of
// `rotor version -o json`, and [Doctor], that of `rotor doctor -o json`.
//
// # The contract
//
// Every field is snake_case. Times are RFC 3339 in UTC; a time that is not
// set is null, never the zero time. Lists are never null: an empty list is
// []. Key values never appear in any document: keys are named by their key
// ids (package keyring/keyid). Fields are only added, never renamed or
// removed, within a major version.
package api
