package api

import _ "embed"

// openAPIDocument is the OpenAPI 3.1 description of every route (served at
// GET /v1/openapi.json): the contract of the API. TestOpenAPIMatchesRoutes
// keeps it and the routes in step, TestOpenAPIErrorCodes it and the error
// codes, and every exchange of the API tests, the client's end-to-end tests
// and the command tests is checked against it (server/api/apitest).
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns a copy of the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }
