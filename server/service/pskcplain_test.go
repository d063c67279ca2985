package service_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

func allowPlaintext() envOption { return func(o *service.Options) { o.PSKCAllowPlaintext = true } }

// A PSKC document with a secret in the clear is refused, imports nothing
// and says how the server would take it; a server that allows plaintext
// imports it, and the device then activates with its code.
func TestPSKCPlaintext(t *testing.T) {
	dev := codeDevice("KV-PLAIN")
	doc := servicetest.PlainPSKC(dev)

	e := newEnv(t)
	e.identity("alice")
	_, err := e.svc.ImportPSKC(e.ctx, support, doc)
	if !errors.Is(err, service.ErrPSKCInvalid) || !strings.Contains(err.Error(), "--pskc-allow-plaintext") ||
		!strings.Contains(err.Error(), "KV-PLAIN") || strings.Contains(err.Error(), "Options.AllowPlain") {
		t.Fatalf("a plaintext secret: %v", err)
	}
	if _, err := e.st.Import(e.ctx, dev.Serial); err == nil {
		t.Fatal("the refused document was imported")
	}

	e = newEnv(t, allowPlaintext())
	e.identity("alice")
	res := must[service.ImportResult](t)(e.svc.ImportPSKC(e.ctx, support, doc))
	if res.Imported != 1 || res.Serials[0] != dev.Serial {
		t.Fatalf("%+v", res)
	}
	add := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "code-display", Serial: dev.Serial}))
	a := must[service.AuthenticatorView](t)(e.svc.Activate(e.ctx, support, "alice", add.Authenticator.ID, service.ActivateRequest{Code: dev.Code(e.clk.Now())}))
	if a.State != "active" {
		t.Fatalf("%+v", a)
	}
	// Encrypted documents are still taken.
	e.importCode(codeDevice("KV-ENC"))
}
