// Package openapi embeds the service's OpenAPI 3.1 document, served at
// GET /openapi.yaml and checked against real responses by the tests.
package openapi

import _ "embed"

// Spec is openapi.yaml.
//
//go:embed openapi.yaml
var Spec []byte
