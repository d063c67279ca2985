package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/service"
)

// loadContract loads and validates the OpenAPI document.
func loadContract(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatal(err)
	}
	return doc
}

// errorCodes returns the codes an error response of the document allows:
// the enum its schema puts on error.code.
func errorCodes(r *openapi3.Response) []string {
	mt := r.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	var codes []string
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		if e := s.Properties["error"]; e != nil {
			if c := e.Value.Properties["code"]; c != nil {
				codes = nil
				for _, v := range c.Value.Enum {
					codes = append(codes, v.(string))
				}
			}
		}
		for _, sub := range s.AllOf {
			walk(sub.Value)
		}
	}
	walk(mt.Schema.Value)
	return codes
}

// codeConstants returns the values of the Code* constants of errors.go.
func codeConstants(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if strings.HasPrefix(n.Name, "Code") {
					v, _ := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
					codes = append(codes, v)
				}
			}
		}
	}
	return codes
}

// Every error code the server has is in the document (the schema's enum
// and the table of the description), and no other.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadContract(t)
	var inDoc []string
	for _, v := range doc.Components.Schemas["Error"].Value.Properties["code"].Value.Enum {
		inDoc = append(inDoc, v.(string))
	}
	inGo := codeConstants(t)
	slices.Sort(inDoc)
	slices.Sort(inGo)
	if !slices.Equal(inDoc, inGo) {
		t.Errorf("error codes differ:\ndocument: %v\nerrors.go: %v", inDoc, inGo)
	}
	for _, c := range inGo {
		if !strings.Contains(doc.Info.Description, "| `"+c+"` |") {
			t.Errorf("the table of error codes lacks %s", c)
		}
	}
	// Every code an operation lists is a known code, and every known code
	// but the ones outside operations is listed by some operation.
	used := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, r := range op.Responses.Map() {
				for _, c := range errorCodes(r.Value) {
					if !slices.Contains(inGo, c) {
						t.Errorf("%s %s %s: unknown code %s", method, path, status, c)
					}
					used[c] = true
				}
			}
		}
	}
	for _, c := range inGo {
		if !used[c] && c != api.CodeMethodNotAllowed {
			t.Errorf("no operation answers %s", c)
		}
	}
}

// Every operation documents the answers every request may get, and the
// headers its error codes carry.
func TestOpenAPIOperationsComplete(t *testing.T) {
	doc := loadContract(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			has := func(status string) *openapi3.Response {
				if r := op.Responses.Value(status); r != nil {
					return r.Value
				}
				return nil
			}
			for _, s := range []string{"400", "500"} {
				if has(s) == nil {
					t.Errorf("%s: no %s", name, s)
				}
			}
			secured := op.Security == nil || len(*op.Security) > 0
			if secured && has("401") == nil {
				t.Errorf("%s: needs a token but documents no 401", name)
			}
			if rb := op.RequestBody; rb != nil {
				for _, s := range []string{"413", "415"} {
					if has(s) == nil {
						t.Errorf("%s: takes a body but documents no %s", name, s)
					}
				}
			}
			for status, r := range op.Responses.Map() {
				codes := errorCodes(r.Value)
				if status[0] >= '4' && len(codes) == 0 {
					t.Errorf("%s %s: no error codes", name, status)
				}
				for _, c := range codes {
					if c == api.CodeRateLimited || c == api.CodeAttemptsInFlight || c == api.CodeBusy {
						if r.Value.Headers["Retry-After"] == nil {
							t.Errorf("%s %s: %s without Retry-After", name, status, c)
						}
					}
				}
			}
		}
	}
}

// The operations that hash a password or PIN document their 503 busy
// answer, with Retry-After.
func TestOpenAPIDocumentsBusy(t *testing.T) {
	doc := loadContract(t)
	for _, op := range []struct{ path, method string }{
		{"/v1/identities", "POST"},
		{"/v1/identities/{id}/authenticators", "POST"},
		{"/v1/identities/{id}/login/password", "POST"},
		{"/v1/identities/{id}/login/finish", "POST"},
	} {
		r := doc.Paths.Value(op.path).GetOperation(op.method).Responses.Value("503")
		if r == nil || r.Value.Headers["Retry-After"] == nil || !slices.Contains(errorCodes(r.Value), api.CodeBusy) {
			t.Errorf("%s %s: no 503 busy with Retry-After", op.method, op.path)
		}
	}
}

// The formats an integrator needs are stated where the document uses
// them.
func TestOpenAPIStatesFormats(t *testing.T) {
	doc := loadContract(t)
	s := doc.Components.Schemas
	for _, c := range []struct{ where, text, want string }{
		{"the bearer scheme", doc.Components.SecuritySchemes["bearer"].Value.Description, "51 characters of unpadded base64url"},
		{"the bearer scheme", doc.Components.SecuritySchemes["bearer"].Value.Description, "support token"},
		{"the app's signature", s["FinishLoginRequest"].Value.Properties["signature"].Value.Description, "ASN.1 DER"},
		{"the app's signature", s["FinishLoginRequest"].Value.Properties["signature"].Value.Description, "SHA-256"},
		{"the TOTP window", s["FinishLoginRequest"].Value.Properties["code"].Value.Description, "±1"},
		{"the replay rule", s["FinishLoginRequest"].Value.Properties["code"].Value.Description, "code_replayed"},
		{"the PIN policy", s["AddRequest"].Value.Properties["pin"].Value.Description, "123456"},
		{"the audit hash", s["Event"].Value.Properties["hash"].Value.Description, "SHA-256(prev_hash"},
		{"the PSKC protections", doc.Paths.Value("/v1/pskc").Post.Description, "--pskc-allow-plaintext"},
		{"the PSKC protections", doc.Paths.Value("/v1/pskc").Post.Description, "ValueMAC"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s: the document does not say %q", c.where, c.want)
		}
	}
	// The event types are the ones the server writes.
	var types []string
	for _, v := range s["Event"].Value.Properties["type"].Value.Enum {
		types = append(types, v.(string))
	}
	for _, want := range eventTypes() {
		if !slices.Contains(types, want) {
			t.Errorf("the event type %s is not documented", want)
		}
	}
}

// eventTypes returns the audit event types the server writes: the
// EventType constants of server/domain, and the service's PSKC import.
func eventTypes() []string {
	f, err := parser.ParseFile(token.NewFileSet(), "../domain/event.go", nil, 0)
	if err != nil {
		panic(err)
	}
	types := []string{string(service.EventImported)}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "EventType" {
				for _, v := range vs.Values {
					s, _ := strconv.Unquote(v.(*ast.BasicLit).Value)
					types = append(types, s)
				}
			}
		}
	}
	return types
}
