package api

import _ "embed"

// openAPIDocument is the OpenAPI 3.1 description of every route (served at
// GET /v1/openapi.json). TestOpenAPIMatchesRoutes keeps it and the routes
// in step.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns a copy of the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }
