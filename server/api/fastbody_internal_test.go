package api

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/service"
)

// loginBodySeeds are the login bodies of testdata/api/login-bodies.
func loginBodySeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob("../../testdata/api/login-bodies/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no login bodies in testdata: %v", err)
	}
	m := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		m[filepath.Base(f)] = b
	}
	return m
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

// FuzzFastDecode: whatever the fast decoder of the login bodies accepts,
// the strict decoder accepts too and decodes to the same value; the fast
// one never panics.
func FuzzFastDecode(f *testing.F) {
	for _, b := range loginBodySeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsStrict[service.PasswordLoginRequest](t, b)
		sameAsStrict[service.SecondFactorRequest](t, b)
		sameAsStrict[service.FinishLoginRequest](t, b)
	})
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
	if fastDecode([]byte(`{}`), new(service.ActivateRequest)) {
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
}
