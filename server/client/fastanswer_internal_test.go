package client

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/authbench/authbench/internal/testenv"
)

// answerSeeds are the answers of testdata/api/answers.
func answerSeeds(tb testing.TB) map[string][]byte {
	return testenv.Files(tb, "../../testdata/api/answers/*.json")
}

// sameAsUnmarshal fails when fastAnswer accepts b as a T but json.Unmarshal
// refuses it or decodes something else; it reports whether fastAnswer
// accepted it.
func sameAsUnmarshal[T any](t *testing.T, b []byte) bool {
	t.Helper()
	var fast T
	if !fastAnswer(b, &fast) {
		return false
	}
	var slow T
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("%T: the fast decoder accepts %q, which json.Unmarshal refuses: %v", fast, b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T: %q decodes to\n%#v\nfast, but to\n%#v\nby json.Unmarshal", fast, b, fast, slow)
	}
	return true
}

// FuzzFastAnswer: whatever the fast decoder of the answers accepts,
// json.Unmarshal accepts too and decodes to the same value; the fast one
// never panics.
func FuzzFastAnswer(f *testing.F) {
	for _, b := range answerSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsUnmarshal[Added](t, b)
		sameAsUnmarshal[Authenticator](t, b)
		sameAsUnmarshal[Session](t, b)
		sameAsUnmarshal[PasswordStep](t, b)
		sameAsUnmarshal[FactorChallenge](t, b)
	})
}

// TestFastAnswer: the server's plain answers take the fast path and decode
// as json.Unmarshal decodes them; an app's challenge, an unknown member, a
// key in another case or an escape is left to json.Unmarshal.
func TestFastAnswer(t *testing.T) {
	seeds := answerSeeds(t)
	for name, want := range map[string]bool{
		"added-chip.json": true, "added-chip-exclude.json": true, "added-code.json": true, "added-app.json": false,
		"activated.json": true, "blocked.json": true, "authenticator-code.json": true, "authenticator-suspended.json": true,
		"authenticator-extra.json": false, "authenticator-case.json": false, "authenticator-escape.json": false,
		"session.json": true, "password-next.json": true, "password.json": true,
		"factor-chip.json": true, "factor-app.json": false,
	} {
		b, ok := seeds[name]
		if !ok {
			t.Fatalf("no seed %s", name)
		}
		var got bool
		switch {
		case strings.HasPrefix(name, "added"):
			got = sameAsUnmarshal[Added](t, b)
		case strings.HasPrefix(name, "session"):
			got = sameAsUnmarshal[Session](t, b)
		case strings.HasPrefix(name, "password"):
			got = sameAsUnmarshal[PasswordStep](t, b)
		case strings.HasPrefix(name, "factor"):
			got = sameAsUnmarshal[FactorChallenge](t, b)
		default:
			got = sameAsUnmarshal[Authenticator](t, b)
		}
		if got != want {
			t.Errorf("%s: fast path taken %v, want %v", name, got, want)
		}
	}
	for _, b := range []string{
		``, `{`, `{"id":"a",}`, `{"id":"a"} x`, `{"id":"a","id":"b"}`, `{"failures":1.0}`, `{"failures":1e1}`,
		`{"failures":99999999999999999999}`, `{"element":{"sign_count":-1}}`, `{"element":{"sign_count":4294967296}}`,
		`{"created_at":"2026-12-07"}`, `{"created_at":" 2026-12-07T19:06:00Z"}`, `{"element":{"wiped":1}}`, `[]`,
	} {
		if sameAsUnmarshal[Authenticator](t, []byte(b)) {
			t.Errorf("%q took the fast path", b)
		}
	}
	var a Authenticator
	if !fastAnswer([]byte(`{"activated_at":null,"element":{"attestation_trusted":false},"created_at":null}`), &a) ||
		a.ActivatedAt != nil || a.Element.AttestationTrusted == nil || *a.Element.AttestationTrusted {
		t.Errorf("decoded to %#v", a)
	}
	if fastAnswer([]byte(`{}`), new(Identity)) {
		t.Error("an answer the fast path does not know was decoded")
	}
}
