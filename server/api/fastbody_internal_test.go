package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/server/service"
)

// loginBodySeeds are the login bodies of testdata/api/login-bodies.
func loginBodySeeds(tb testing.TB) map[string][]byte { return bodySeeds(tb, "login-bodies") }

// enrollBodySeeds are the bodies of adding, activating and blocking an
// authenticator, testdata/api/enroll-bodies.
func enrollBodySeeds(tb testing.TB) map[string][]byte { return bodySeeds(tb, "enroll-bodies") }

func bodySeeds(tb testing.TB, dir string) map[string][]byte {
	return testenv.Files(tb, "../../testdata/api/"+dir+"/*.json")
}

// sameAsStrict fails when fastDecode accepts b as a T but unmarshalStrict
// refuses it or decodes something else; it reports whether fastDecode
// accepted it.
func sameAsStrict[T any](t *testing.T, b []byte) bool {
	t.Helper()
	var fast T
	if !fastDecode(b, &fast) {
		return false
	}
	var strict T
	if err := unmarshalStrict(b, &strict); err != nil {
		t.Fatalf("%T: the fast decoder accepts %q, which the strict one refuses: %v", fast, b, err)
	}
	if !reflect.DeepEqual(fast, strict) {
		t.Fatalf("%T: %q decodes to\n%#v\nfast, but to\n%#v\nstrict", fast, b, fast, strict)
	}
	return true
}

// FuzzFastDecode: whatever the fast decoder of the login, enrolment and
// block bodies accepts, the strict decoder accepts too and decodes to the
// same value; the fast one never panics.
func FuzzFastDecode(f *testing.F) {
	for _, b := range loginBodySeeds(f) {
		f.Add(b)
	}
	for _, b := range enrollBodySeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsStrict[service.PasswordLoginRequest](t, b)
		sameAsStrict[service.SecondFactorRequest](t, b)
		sameAsStrict[service.FinishLoginRequest](t, b)
		sameAsStrict[service.AddRequest](t, b)
		sameAsStrict[service.ActivateRequest](t, b)
		sameAsStrict[service.BlockRequest](t, b)
	})
}

// TestFastDecodeEnrollBodies: the plain bodies of adding, activating and
// blocking take the fast path (and decode as the strict decoder does); a
// number that is not a plain integer, an escape, a key in another case or
// a value of the wrong type is left to the strict decoder.
func TestFastDecodeEnrollBodies(t *testing.T) {
	seeds := enrollBodySeeds(t)
	for name, want := range map[string]bool{
		"activate-chip.json": true, "activate-browser.json": true, "activate-empty-transports.json": true,
		"activate-code.json": true, "activate-app.json": true, "activate-null-credential.json": true,
		"activate-alg-fraction.json": false, "activate-alg-overflow.json": false, "activate-transports-escape.json": false,
		"add-chip.json": true, "add-app.json": true, "add-code.json": true, "add-password.json": true, "add-case.json": false,
		"block.json": true, "block-number.json": false,
	} {
		b, ok := seeds[name]
		if !ok {
			t.Fatalf("no seed %s", name)
		}
		var got bool
		switch {
		case strings.HasPrefix(name, "activate"):
			got = sameAsStrict[service.ActivateRequest](t, b)
		case strings.HasPrefix(name, "add"):
			got = sameAsStrict[service.AddRequest](t, b)
		default:
			got = sameAsStrict[service.BlockRequest](t, b)
		}
		if got != want {
			t.Errorf("%s: fast path taken %v, want %v", name, got, want)
		}
	}
	for _, b := range []string{
		`{"credential":{"response":{"publicKeyAlgorithm":-}}}`, `{"credential":{"response":{"publicKeyAlgorithm":07}}}`,
		`{"credential":{"response":{"publicKeyAlgorithm":1e2}}}`, `{"credential":{"response":{"publicKeyAlgorithm":"-7"}}}`,
		`{"credential":{"response":{"transports":["usb",]}}}`, `{"credential":{"response":{"transports":["usb"}}}`,
		`{"credential":{"response":{"transports":[1]}}}`, `{"credential":{"response":{"transports":"usb"}}}`,
		`{"credential":{"response":{"publicKeyAlgorithm":-9223372036854775809}}}`,
	} {
		if sameAsStrict[service.ActivateRequest](t, []byte(b)) {
			t.Errorf("%q took the fast path", b)
		}
	}
	var r service.ActivateRequest
	if !fastDecode([]byte(`{"credential":{"response":{"transports":[],"publicKeyAlgorithm":-9223372036854775808}}}`), &r) ||
		r.Credential.Response.Transports == nil || r.Credential.Response.PublicKeyAlgorithm != -1<<63 {
		t.Errorf("decoded to %#v", r.Credential)
	}
}

// TestFastDecode: the plain bodies of the login steps take the fast path
// (and decode as the strict decoder does); the others are left to the
// strict decoder, which answers them as before.
func TestFastDecode(t *testing.T) {
	seeds := loginBodySeeds(t)
	for name, want := range map[string]bool{
		"password.json": true, "password-second.json": true, "second.json": true,
		"finish-code.json": true, "finish-app.json": true, "finish-chip.json": true, "finish-spaces-null.json": true,
		"password-case.json": false, "password-escapes.json": false, "finish-merged.json": false,
		"finish-extensions.json": false, "password-number.json": false,
	} {
		b, ok := seeds[name]
		if !ok {
			t.Fatalf("no seed %s", name)
		}
		var got bool
		switch {
		case strings.HasPrefix(name, "password"):
			got = sameAsStrict[service.PasswordLoginRequest](t, b)
		case strings.HasPrefix(name, "second"):
			got = sameAsStrict[service.SecondFactorRequest](t, b)
		default:
			got = sameAsStrict[service.FinishLoginRequest](t, b)
		}
		if got != want {
			t.Errorf("%s: fast path taken %v, want %v", name, got, want)
		}
	}
	for _, b := range []string{
		``, `{`, `{"password":"a"`, `{"password":"a",}`, `{"password":"a"} x`, `{"password":"a"}{}`,
		`{"password":"a","password":"b"}`, `{"password":"\u0061"}`, "{\"password\":\"a\x01\"}",
		"{\"password\":\"\xff\"}", `{"password":nul}`, `{"password":true}`, `{"second":["a"]}`, `[]`,
		`{"ceremony":"x","credential":{"response":{"clientDataJSON":1}}}`, `{"ceremony":"x","credential":"y"}`,
		`{"ceremony":"x","credential":{"clientExtensionResults":{"a":1}}}`, `{"ceremony":"x","credential":{"unknown":"y"}}`,
	} {
		if sameAsStrict[service.PasswordLoginRequest](t, []byte(b)) || sameAsStrict[service.FinishLoginRequest](t, []byte(b)) {
			t.Errorf("%q took the fast path", b)
		}
	}
	var r service.FinishLoginRequest
	if !fastDecode([]byte(`{"credential":{"clientExtensionResults":{}}}`), &r) || r.Credential == nil || r.Credential.ClientExtensionResults == nil {
		t.Errorf("an empty clientExtensionResults decodes to %#v, want an empty map", r.Credential)
	}
	if fastDecode([]byte(`{}`), new(service.CreateIdentityRequest)) {
		t.Error("a body the fast path does not know was decoded")
	}
}

// TestFastDecodeAllocs: a chip's finish body costs one allocation per
// string and one for the credential.
func TestFastDecodeAllocs(t *testing.T) {
	b := loginBodySeeds(t)["finish-chip.json"]
	n := testing.AllocsPerRun(100, func() {
		var r service.FinishLoginRequest
		if !fastDecode(b, &r) {
			t.Fatal("declined")
		}
	})
	if n > 10 {
		t.Errorf("%v allocations, want at most 10", n)
	}
	b = enrollBodySeeds(t)["activate-chip.json"]
	n = testing.AllocsPerRun(100, func() {
		var r service.ActivateRequest
		if !fastDecode(b, &r) {
			t.Fatal("declined")
		}
	})
	if n > 10 {
		t.Errorf("activate: %v allocations, want at most 10", n)
	}
}
