// Package api defines rotor's JSON contract: the documents every command
// prints with -o json, and the request and response bodies of the HTTP
// API of `rotor serve` and `rotor daemon`. The command line and the
// server use these same types, so `rotor status demo -o json` and
// GET /v1/secrets/demo answer the same [Status].
//
// # The contract
//
// Every field is snake_case. Times are RFC 3339 in UTC; a time that is not
// set is null, never the zero time. Lists are never null: an empty list is
// []. Key values never appear in any document: keys are named by their key
// ids (package keyring/keyid). The exceptions say so: [Get] with --reveal,
// and [Token], a new API token shown once. Fields are only added, never
// renamed or removed, within a major version.
//
// A command that fails with -o json prints nothing on stdout and ends
// stderr with one line holding an [ErrorBody], with the code of the
// failure and the exit code (warnings may come before it). rotate and
// revoke over several secrets print their document, with each secret's
// error, before it. The API answers the same document (without
// exit_code) with an HTTP status.
//
// # The OpenAPI document
//
// [OpenAPI] returns the OpenAPI 3 document of the HTTP API (openapi.json
// here, served at GET /v1/openapi.json). Its schemas describe the types of
// this package field for field (a test compares them), and the server's
// tests check every response they get against it (see
// server/servertest.Validate).
package api
