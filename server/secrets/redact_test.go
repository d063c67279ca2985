package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// printAll formats v in every way a secret could slip out: fmt verbs
// directly and inside structures, and both slog handlers.
func printAll(v any) string {
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		fmt.Fprintf(&b, verb+"\n", v)
	}
	fmt.Fprintf(&b, "%v %+v %#v\n", struct{ V any }{v}, struct{ V any }{v}, struct{ V any }{v})
	fmt.Fprintf(&b, "%v %+v %#v\n", []any{v}, map[string]any{"v": v}, &struct{ v any }{v})
	fmt.Fprintln(&b, v)
	b.WriteString(fmt.Sprint(v))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var w bytes.Buffer
		l := slog.New(h(&w))
		l.Info("x", "v", v)
		l.Info("x", slog.Any("v", v), slog.Group("g", "v", v))
		b.Write(w.Bytes())
	}
	return b.String()
}

func TestKeyringRedacted(t *testing.T) {
	k := newTestKeyring(t)
	if err := k.AddKey("k2", testKey(2)); err != nil {
		t.Fatal(err)
	}
	out := printAll(k)
	assertNoKey(t, "printing a Keyring", out, testKey(1))
	assertNoKey(t, "printing a Keyring", out, testKey(2))
	if !strings.Contains(out, "current: k1") || !strings.Contains(out, "k2") {
		t.Errorf("printing a Keyring should name its keys: %s", out)
	}
	// Inside structures, in unexported fields too.
	type holder struct {
		Ring *Keyring
		ring *Keyring
	}
	out = fmt.Sprintf("%v %+v %#v", holder{k, k}, &holder{k, k}, []*Keyring{k})
	assertNoKey(t, "printing a structure with a Keyring", out, testKey(1))
	if _, err := json.Marshal(holder{Ring: k}); err == nil {
		t.Error("json.Marshal of a Keyring succeeded")
	}
	if s := fmt.Sprint((*Keyring)(nil)); strings.Contains(s, "panic") {
		t.Errorf("printing a nil Keyring: %s", s)
	}
}

func TestVerifierRedacted(t *testing.T) {
	v, err := ParseVerifier(argon2idVectors[0].encoded)
	if err != nil {
		t.Fatal(err)
	}
	salt := base64.RawStdEncoding.EncodeToString(v.b.salt)
	hash := base64.RawStdEncoding.EncodeToString(v.b.hash)
	type holder struct {
		V  Verifier
		P  *Verifier
		v  Verifier
		pv *Verifier
	}
	out := printAll(v) + printAll(*v) + fmt.Sprintf("%v %+v %#v", holder{*v, v, *v, v}, &holder{*v, v, *v, v}, []Verifier{*v})
	for _, secret := range []string{salt, hash, string(v.b.hash), fmt.Sprintf("%x", v.b.hash), "somesalt", fmt.Sprint(v.b.hash[:4])} {
		if strings.Contains(out, secret) {
			t.Fatalf("printing a Verifier reveals %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "m=256,t=2,p=1") {
		t.Errorf("printing a Verifier should show its parameters: %s", out)
	}
	if _, err := json.Marshal(holder{V: *v}); err == nil {
		t.Error("json.Marshal of a Verifier succeeded")
	}
}

func TestSealedPrints(t *testing.T) {
	k := newTestKeyring(t)
	s, _ := k.Seal([]byte("x"), nil)
	if got := s.String(); got != "sealed(key k1, 42 bytes)" {
		t.Errorf("String = %q", got)
	}
	var w bytes.Buffer
	slog.New(slog.NewTextHandler(&w, nil)).Info("x", "s", s)
	if !strings.Contains(w.String(), "s.key_id=k1 s.size=42") {
		t.Errorf("log = %s", w.String())
	}
}
