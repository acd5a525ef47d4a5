package api

import (
	_ "embed"
	"slices"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the HTTP API (openapi.json in
// this package), which `rotor serve` and `rotor daemon` serve at
// GET /v1/openapi.json. Its schemas are the types of this package; the
// server's tests check every response they get against it.
func OpenAPI() []byte { return slices.Clone(openAPI) }
