package web_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/app"
)

// TestAppLoginNewPassword: a person whose password is blocked for good
// logs in on the pages with the MitID app alone. The page shows the
// service's challenge as a transfer code; the test's phone (sim/app, as
// `authbench app respond` signs) answers it. A response over another
// challenge is refused with the API's words and counts against nothing; a
// wrong PIN is refused with the API's words and counts against the app;
// the right response and PIN give a session, on which the person sets a
// new password on the page; then they log in with the new password and
// their code display, and the old password stays refused.
func TestAppLoginNewPassword(t *testing.T) {
	axe := axeScript(t)
	chromium(t)
	s := startSite(t)
	ctx := context.Background()
	const id, newPassword = "bente", "a new password for bente"
	dev := codeDevice("KV-APP-0001")

	// Support: the identity with a password and a code display (pages),
	// and an app (API, as a phone's registration would).
	sup := newTab(t, "support", s.base, axe)
	sup.open("/support")
	sup.submit("form[action='/support/login'] button", "#token", supportToken)
	sup.run(chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{s.pskcFile(t, dev)}))
	sup.load("import PSKC", chromedp.Click(chromedp.CSS("form[action='/support/pskc'] button")))
	sup.submit("form[action='/support/identities'] button", "#create-identity", id, "#create-password", thePassword, "#create-repeat", thePassword)
	sup.want(".msg.ok", "Identity "+id+" is created.")
	sup.submit("form[action$='/code-device'] button", "#serial", dev.Serial)
	sup.submit("form.activate button", "form.activate input[name=code]", dev.Code(s.clock.Now()))
	sup.want(".msg.ok", "is activated")

	api, err := client.New(s.base, client.Options{Token: supportToken})
	if err != nil {
		t.Fatal(err)
	}
	phone, err := app.New(app.Options{Seed: []byte("the seed of bente's phone")})
	if err != nil {
		t.Fatal(err)
	}
	appAuth, err := client.EnrollApp(ctx, api, id, "phone", phone, phone.PIN())
	if err != nil {
		t.Fatal(err)
	}
	ident := func() *client.Identity {
		t.Helper()
		v, err := api.Identity(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var oldPassword string
	for _, a := range ident().Authenticators {
		if a.Kind == client.KindPassword {
			oldPassword = a.ID
		}
	}
	if _, err := api.Block(ctx, id, oldPassword, "compromised"); err != nil {
		t.Fatalf("blocking the password: %v", err)
	}

	me := newTab(t, "person", s.base, axe)
	me.open("/")
	me.submit("form[action='/login'] button", "#identity", id, "#password", thePassword)
	me.want(".msg.error", "blocked")

	// respond is the phone: `authbench app respond` on the transfer code.
	respond := func(code string) string {
		t.Helper()
		challenge, err := base64.RawURLEncoding.DecodeString(code)
		if err != nil || len(challenge) != 32 {
			t.Fatalf("the transfer code %q is not 32 bytes in base64url: %v", code, err)
		}
		sig, err := phone.Sign(challenge)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(sig)
	}
	beginApp := func() string {
		t.Helper()
		me.open("/")
		me.submit("form[action='/login/app'] button", "#app-identity", id, "#app-id", appAuth.ID)
		code := eval[string](me, `document.querySelector("#challenge").value`)
		if lbl := me.text("label[for=challenge]"); lbl != "Transfer code for the app" {
			t.Errorf("the transfer code's label says %q", lbl)
		}
		if !eval[bool](me, `document.querySelector("#challenge").readOnly`) {
			t.Error("the transfer code can be edited")
		}
		return code
	}
	failures := func() int { t.Helper(); return ident().Authenticator(appAuth.ID).Failures }

	// A response over another login's challenge: not the phone's answer to
	// this one; nothing is counted.
	stale := beginApp()
	beginApp()
	me.submit("form[action='/login/finish'] button", "#response", respond(stale), "#pin", phone.PIN())
	me.want(".msg.error", "did not verify")
	if n := failures(); n != 0 {
		t.Errorf("a bad signature counted: %d failures", n)
	}

	// The right response with a wrong PIN counts against the app.
	wrong := "000000"
	if phone.PIN() == wrong {
		wrong = "111111"
	}
	code := beginApp()
	me.submit("form[action='/login/finish'] button", "#response", respond(code), "#pin", wrong)
	refusal := me.text(".msg.error")
	t.Logf("a wrong PIN: %s", refusal)
	if !strings.Contains(strings.ToLower(refusal), "pin") {
		t.Errorf("a wrong PIN is refused with %q", refusal)
	}
	if n := failures(); n != 1 {
		t.Errorf("after a wrong PIN the app has %d failures, want 1", n)
	}

	// The right response and PIN: a two-factor session, and the form for
	// a new password.
	code = beginApp()
	me.submit("form[action='/login/finish'] button", "#response", respond(code), "#pin", phone.PIN())
	me.want("header", "Logged in as "+id)
	if n := failures(); n != 0 {
		t.Errorf("after a right PIN the app has %d failures, want 0", n)
	}
	me.submit("form[action='/password'] button", "#new-password", newPassword, "#repeat-password", newPassword)
	me.want(".msg.ok", "password")
	me.load("log out", chromedp.Click(chromedp.CSS("form.logout button")))

	// The new password and the code display log in; the old one does not.
	me.open("/")
	me.submit("form[action='/login'] button", "#identity", id, "#password", thePassword)
	me.want(".msg.error", "blocked")
	me.open("/")
	me.submit("form[action='/login'] button", "#identity", id, "#password", newPassword)
	if eval[bool](me, `!!document.querySelector("form[action='/login/second']")`) {
		t.Fatalf("a choice of second factor with one code display:\n%s", me.text("main"))
	}
	s.clock.Advance(30 * time.Second)
	me.submit("form[action='/login/finish'] button", "#code", dev.Code(s.clock.Now()))
	me.want("header", "Logged in as "+id)
}
