package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// checkAnswer fails unless w is a JSON 4xx error with a code.
func checkAnswer(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code < 400 || w.Code > 499 {
		t.Errorf("%s: status %d (%s), want a 4xx", what, w.Code, trunc(w.Body.String()))
		return
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", what, ct)
	}
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Errorf("%s: body %q is not a JSON error", what, trunc(w.Body.String()))
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// The hostile-input corpus: every route gets broken JSON, wrong types,
// unknown fields, huge and odd bodies, wrong content types, hostile
// paths, queries and tokens. Every answer must be a JSON 4xx: never a
// 5xx, never a panic.
func TestHostileInputCorpus(t *testing.T) {
	s := start(t)
	pw := passwordID(s.createIdentity("alice", "correct horse"))
	sess := s.session("alice")

	huge := `{"label":"` + strings.Repeat("a", 70<<10) + `"}`
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	bodies := []string{
		`{`, `}`, `[]`, `null`, `"text"`, `123`, `true`, `{} {}`, `{"a":`, `{"kind":1}`,
		`{"kind":"chip","kind":"app"}`, `{"unknown":1}`, `{"id":{"x":1}}`, `{"password":["a"]}`,
		`{"reason":null,"note":7}`, `{"ceremony":123}`, `{"credential":"x"}`, `{"credential":{"id":1}}`,
		`{"credential":{"response":{"clientDataJSON":"!!"}}}`, `{"code":123456}`, `{"pin":1}`,
		"{\"label\":\"\xff\xfe\"}", "\xef\xbb\xbf{}", huge, deep, `{"kind":"password","password":"` + strings.Repeat("p", 5000) + `"}`,
		`{"id":"` + strings.Repeat("x", 500) + `"}`, `{"id":"../../etc"}`, `{"kind":"app","public_key":"%%%","pin":"428613"}`,
		`{"kind":"code-display","serial":"` + strings.Repeat("9", 100) + `"}`, `{"reason":"` + strings.Repeat("r", 1000) + `"}`,
	}
	contentTypes := []string{"", "text/plain", "application/json; charset=latin1", ";;;", "application/jsonx", "multipart/form-data"}

	h := s.srv.Handler
	for _, rt := range h.Routes() {
		path := strings.NewReplacer("{id}", "alice", "{aid}", pw, "{sid}", "ses-0123456789abcdef").Replace(rt.Pattern)
		allowed := map[string]bool{}
		for _, o := range h.Routes() {
			if o.Pattern == rt.Pattern {
				allowed[o.Method] = true
			}
		}
		for _, tok := range []string{"", supportToken, sess} {
			if rt.Method == "POST" {
				for i, b := range bodies {
					ct := "application/json"
					if rt.Pattern == "/v1/pskc" {
						ct = "application/pskc+xml"
					}
					w := s.serve(rt.Method, path, tok, []byte(b), ct)
					if w.Code >= 500 {
						t.Errorf("%s %s body %d: %d %s", rt.Method, path, i, w.Code, trunc(w.Body.String()))
					}
					if w.Code >= 400 {
						checkAnswer(t, rt.Method+" "+path, w)
					}
				}
				for _, ct := range contentTypes {
					w := s.serve(rt.Method, path, tok, []byte(`{"reason":"lost"}`), ct)
					if w.Code >= 500 {
						t.Errorf("%s %s content type %q: %d", rt.Method, path, ct, w.Code)
					}
					if w.Code >= 400 {
						checkAnswer(t, rt.Method+" "+path+" "+ct, w)
					}
				}
			}
			for _, m := range []string{"PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"} {
				if allowed[m] {
					continue
				}
				w := s.serve(m, path, tok, nil, "")
				if w.Code != 405 {
					t.Errorf("%s %s: %d, want 405", m, path, w.Code)
				}
				if m != "HEAD" {
					checkAnswer(t, m+" "+path, w)
				}
			}
			for _, q := range []string{"?x=1", "?%zz", "?limit=abc", "?after=-1", "?limit=0", "?limit=100000", "?after=1&after=2",
				"?after=99999999999999999999999", "?" + strings.Repeat("a=1&", 400)} {
				w := s.serve(rt.Method, path+q, tok, nil, "")
				if w.Code >= 500 {
					t.Errorf("%s %s%s: %d", rt.Method, path, q, w.Code)
				}
				if w.Code >= 400 {
					checkAnswer(t, rt.Method+" "+path+q, w)
				}
			}
		}
	}

	// Hostile paths: refused before routing, or not found.
	paths := []string{
		"/v1/identities/../v1/audit/verify", "/v1/identities/%2e%2e/x", "/v1/identities/a%2Fb", "/v1/identities/a%2fb/audit",
		"/v1//identities", "/v1/identities/./alice", "/v1/identities/alice/", "/v1/identities/" + strings.Repeat("a", 65),
		"/v1/identities/" + strings.Repeat("a", 5000), "/v1/identities/%00", "/v1/identities/al%20ice", "/v1/identities/%C3%A6",
		"/v1/identities/-alice", "/v1/identities/alice%5C..", "/v1/identities/alice/authenticators/" + strings.Repeat("b", 100) + "/block",
		"/v1/identities/alice/authenticators/..%2f..%2fx/activate", "/v2/identities", "/", "/v1", "/v1/", "/healthz/", "/metrics/x",
		"/v1/identities/alice/login/password/extra", "/v1/identities/alice/sessions/a%2fb",
	}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST"} {
			w := s.serve(m, p, supportToken, []byte(`{}`), "application/json")
			checkAnswer(t, m+" "+p, w)
		}
	}
	// Headers: odd authorization values.
	for _, auth := range []string{"Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer\t" + supportToken, "Bearer " + strings.Repeat("x", 10000), "Bearer \x00"} {
		req := httptest.NewRequest("GET", "/v1/identities/alice", nil)
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, req)
		checkAnswer(t, "Authorization "+trunc(auth), w)
	}
	// The server's own count: many requests, not one 5xx.
	var m strings.Builder
	h.Metrics().WriteTo(&m)
	total := 0
	byStatus := map[string]int{}
	for _, line := range strings.Split(m.String(), "\n") {
		if strings.HasPrefix(line, "authbench_http_requests_total{") {
			if strings.Contains(line, `status="5`) {
				t.Errorf("a 5xx was answered: %s", line)
			}
			var n int
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%d", &n)
			total += n
			if i := strings.Index(line, `status="`); i >= 0 {
				byStatus[line[i+8:i+11]] += n
			}
		}
	}
	if total < 1500 {
		t.Errorf("only %d requests counted", total)
	}
	codes := make([]string, 0, len(byStatus))
	for c := range byStatus {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var dist strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&dist, " %s×%d", c, byStatus[c])
	}
	t.Logf("%d hostile requests, no 5xx; by status:%s", total, dist.String())
}

// WebAuthn payloads that are broken in each place a parser looks: bad
// base64, bad CBOR, bad client data, bad authenticator data; both for
// registration and for login. None may cause a 5xx.
func TestHostileWebAuthnPayloads(t *testing.T) {
	s := start(t)
	s.createIdentity("alice", "correct horse")
	c := newChip(t, "chip-1")
	ctx := context.Background()
	mutations := map[string]func(r *service.RegistrationResponse){
		"bad base64 rawId": func(r *service.RegistrationResponse) { r.RawID, r.ID = "***", "***" },
		"padded base64":    func(r *service.RegistrationResponse) { r.Response.ClientDataJSON += "==" },
		"ids differ":       func(r *service.RegistrationResponse) { r.ID = "AAAA" },
		"type":             func(r *service.RegistrationResponse) { r.Type = "password" },
		"client data not JSON": func(r *service.RegistrationResponse) {
			r.Response.ClientDataJSON = b64.EncodeToString([]byte("\x00\x01"))
		},
		"client data array":        func(r *service.RegistrationResponse) { r.Response.ClientDataJSON = b64.EncodeToString([]byte("[1,2]")) },
		"client data empty object": func(r *service.RegistrationResponse) { r.Response.ClientDataJSON = b64.EncodeToString([]byte("{}")) },
		"attestation not CBOR": func(r *service.RegistrationResponse) {
			r.Response.AttestationObject = b64.EncodeToString([]byte("hello"))
		},
		"attestation empty": func(r *service.RegistrationResponse) { r.Response.AttestationObject = "" },
		"attestation CBOR array": func(r *service.RegistrationResponse) {
			r.Response.AttestationObject = b64.EncodeToString([]byte{0x83, 1, 2, 3})
		},
		"attestation wrong types": func(r *service.RegistrationResponse) {
			r.Response.AttestationObject = b64.EncodeToString([]byte{0xa3, 0x63, 'f', 'm', 't', 0x01, 0x67, 'a', 't', 't', 'S', 't', 'm', 't', 0x01, 0x68, 'a', 'u', 't', 'h', 'D', 'a', 't', 'a', 0x01})
		},
		"attestation indefinite": func(r *service.RegistrationResponse) {
			r.Response.AttestationObject = b64.EncodeToString([]byte{0xbf, 0xff})
		},
		"attestation huge": func(r *service.RegistrationResponse) {
			r.Response.AttestationObject = b64.EncodeToString(make([]byte, 40<<10))
		},
		"truncated attestation": func(r *service.RegistrationResponse) {
			ao, _ := b64.DecodeString(r.Response.AttestationObject)
			r.Response.AttestationObject = b64.EncodeToString(ao[:len(ao)/2])
		},
		"flipped attestation byte": func(r *service.RegistrationResponse) {
			ao, _ := b64.DecodeString(r.Response.AttestationObject)
			ao[len(ao)/3] ^= 0xff
			r.Response.AttestationObject = b64.EncodeToString(ao)
		},
	}
	for name, mutate := range mutations {
		r := s.do("POST", "/v1/identities/alice/authenticators", supportToken, map[string]any{"kind": "chip"})
		var add struct {
			Authenticator service.AuthenticatorView
			Activation    service.ChipActivation
		}
		r.decode(t, &add)
		reg, err := servicetest.Register(ctx, c, origin, add.Activation.PublicKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		mutate(reg)
		body, _ := json.Marshal(map[string]any{"ceremony": add.Activation.Ceremony, "credential": reg})
		w := s.serve("POST", "/v1/identities/alice/authenticators/"+add.Authenticator.ID+"/activate", supportToken, body, "application/json")
		checkAnswer(t, "register: "+name, w)
	}
	ch := s.addChip("alice", supportToken, c)
	loginMutations := map[string]func(r *service.AuthenticationResponse){
		"bad signature base64": func(r *service.AuthenticationResponse) { r.Response.Signature = "!!" },
		"auth data short": func(r *service.AuthenticationResponse) {
			r.Response.AuthenticatorData = b64.EncodeToString([]byte{1, 2, 3})
		},
		"auth data extra":  func(r *service.AuthenticationResponse) { r.Response.AuthenticatorData += "AAAA" },
		"other credential": func(r *service.AuthenticationResponse) { r.ID, r.RawID = "AAAA", "AAAA" },
		"client data junk": func(r *service.AuthenticationResponse) { r.Response.ClientDataJSON = b64.EncodeToString([]byte("{{{")) },
		"signature junk": func(r *service.AuthenticationResponse) {
			r.Response.Signature = b64.EncodeToString([]byte{0x30, 0x02, 0x02, 0x00})
		},
		"user handle":    func(r *service.AuthenticationResponse) { r.Response.UserHandle = "***" },
		"huge signature": func(r *service.AuthenticationResponse) { r.Response.Signature = b64.EncodeToString(make([]byte, 4096)) },
	}
	for name, mutate := range loginMutations {
		f, r := s.factor("alice", "correct horse", ch.ID)
		if f == nil {
			t.Fatalf("login %s: %d %s", name, r.status, r.raw)
		}
		resp, err := servicetest.Assert(ctx, c, origin, f.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		mutate(resp)
		r = s.finish("alice", *f, map[string]any{"credential": resp})
		if r.status < 400 || r.status > 499 || r.code() == "" {
			t.Errorf("login %s: %d %s", name, r.status, r.raw)
		}
	}
}
