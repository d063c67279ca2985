package web_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service/servicetest"
)

const (
	supportToken = "support-token-of-the-browser-tests"
	thePassword  = "correct horse battery"
)

// site is a server for the browser tests.
type site struct {
	*embedded.Server
	base  string // http://localhost:PORT: the origin a browser sends
	clock *servicetest.Clock
	pskc  []byte
}

// startSite starts an embedded server on localhost with a virtual clock.
func startSite(t *testing.T) *site { return startSiteWith(t, embedded.Options{}, "http") }

// startSiteWith starts a site with the TLS files of opts, if any, and
// addressed as scheme://localhost:PORT.
func startSiteWith(t *testing.T, opts embedded.Options, scheme string) *site {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &site{clock: servicetest.NewClock(time.Now().UTC().Truncate(time.Second)), pskc: make([]byte, 16)}
	rand.Read(s.pskc)
	opts.Listener = ln
	opts.DB = filepath.Join(t.TempDir(), "authbench.db")
	opts.SupportTokens = map[string]string{supportToken: "desk-1"}
	// Chromium's virtual authenticators attest with a batch certificate
	// that Chromium makes anew, self-signed, for each one: it chains to no
	// root a server could hold, so the story's chips are accepted as
	// untrusted (their attestation statements are verified all the same,
	// and recorded with their format).
	opts.AllowNoneAttestation = true
	opts.Hasher = secrets.FastParams()
	opts.PSKCKey = s.pskc
	opts.Now = s.clock.Now
	if s.Server, err = embedded.Start(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.base = scheme + "://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	return s
}

// codeDevice is a simulated code display whose secret the test knows.
func codeDevice(serial string) servicetest.CodeDevice {
	return servicetest.CodeDevice{Serial: serial, Secret: []byte("the secret of " + serial)}
}

// pskcFile writes the PSKC document of devs (as a provisioning station
// would) to a file for the upload.
func (s *site) pskcFile(t *testing.T, devs ...servicetest.CodeDevice) string {
	t.Helper()
	doc, err := servicetest.PSKC(s.pskc, devs...)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "devices.pskcxml")
	if err := os.WriteFile(p, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// b64 is how WebAuthn JSON spells credential IDs.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestStory runs the seed's story through the pages in Chromium, for a
// FIDO2 chip (CTAP2 over USB) and a U2F-only chip (the browser's own
// fido-u2f conversion): support creates the person and gives them a code
// display; the person logs in, adds a chip, logs in with it, makes the code
// display temporarily blocked with three wrong codes and reactivates it on
// the page, blocks the chip as lost (the session it proved ends), adds the
// same chip again (a new credential; the old one is refused), and ends a
// session left open elsewhere; support blocks and unblocks the identity
// and verifies the audit trail. Every page is checked for inline script,
// CSRF fields and WCAG 2.1 A/AA violations (axe-core).
func TestStory(t *testing.T) {
	axe := axeScript(t)
	chromium(t)
	s := startSite(t)
	start := time.Now()
	forms := map[string]bool{}
	for _, p := range []struct {
		name     string
		protocol cdpwebauthn.AuthenticatorProtocol
		format   string
	}{
		{"fido2", cdpwebauthn.AuthenticatorProtocolCtap2, "packed"},
		{"u2f", cdpwebauthn.AuthenticatorProtocolU2f, "fido-u2f"},
	} {
		t.Run(p.name, func(t *testing.T) {
			st := &story{t: t, s: s, id: "anna-" + p.name, format: p.format,
				dev: codeDevice("KV-" + strings.ToUpper(p.name) + "-0001"), devWord: "code display",
				reader: codeDevice("KO-" + strings.ToUpper(p.name) + "-0001")}
			st.support = newTab(t, "support", s.base, axe)
			st.person = newTab(t, "person", s.base, axe)
			st.chip = st.person.addChip(p.protocol)
			st.run()
			for f := range st.support.forms {
				forms[f] = true
			}
			for f := range st.person.forms {
				forms[f] = true
			}
		})
	}
	axeRuns.Lock()
	t.Logf("the story in %v; axe-core checked %d distinct pages; forms seen: %d", time.Since(start).Round(time.Millisecond), axeRuns.n, len(forms))
	axeRuns.Unlock()
	// Every form the story showed is one the CSRF test posts without a
	// token.
	for f := range forms {
		if !formRouteKnown(f) {
			t.Errorf("form %s is not in the CSRF test's list", f)
		}
	}
}

// story is one run of the seed's story.
type story struct {
	t       *testing.T
	s       *site
	id      string
	dev     servicetest.CodeDevice // the code device the person logs in with
	devWord string                 // its kind, as the choice of a factor says it
	reader  servicetest.CodeDevice // the audio code reader added on the page
	format  string
	support *tab
	person  *tab
	chip    *chip
}

// code returns the code display's code in the next time step (codes are
// single use).
func (st *story) code() string {
	st.s.clock.Advance(30 * time.Second)
	return st.dev.Code(st.s.clock.Now())
}

// wrongCode returns a code the display does not show around now.
func (st *story) wrongCode() string {
	now := st.s.clock.Now()
	near := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		near[st.dev.Code(now.Add(d))] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", 111111*(i%10))
		if !near[c] {
			return c
		}
	}
}

// password logs the person in to the choice of the second factor (or the
// factor itself, when there is one).
func (st *story) password() { st.passwordIn(st.person) }

func (st *story) passwordIn(tb *tab) {
	tb.open("/")
	tb.submit("form[action='/login'] button", "#identity", st.id, "#password", thePassword)
}

// choose picks the second factor whose button says what.
func (st *story) choose(what string) { st.chooseIn(st.person, what) }

func (st *story) chooseIn(tb *tab, what string) {
	st.t.Helper()
	sel := fmt.Sprintf(`(function(){var bs=document.querySelectorAll("form[action='/login/second'] button");for(var i=0;i<bs.length;i++){if(bs[i].innerText.indexOf(%q)>=0){bs[i].id="chosen";return true}}return false})()`, what)
	if !eval[bool](tb, sel) {
		st.t.Fatalf("%s: no second factor %q to choose:\n%s", tb.name, what, tb.text("main"))
	}
	tb.load("choose "+what, chromedp.Click(chromedp.CSS("#chosen")))
}

// loginCode logs in with the password and code.
func (st *story) loginCode(code string) { st.loginCodeIn(st.person, code) }

func (st *story) loginCodeIn(tb *tab, code string) {
	st.t.Helper()
	st.passwordIn(tb)
	if eval[bool](tb, `!!document.querySelector("form[action='/login/second']")`) {
		st.chooseIn(tb, st.devWord)
	}
	tb.submit("form[action='/login/finish'] button", "#code", code)
}

// loginChip logs in with the password and the chip.
func (st *story) loginChip() {
	st.t.Helper()
	st.password()
	st.choose("MitID chip")
	st.person.load("use the chip", chromedp.Click(chromedp.CSS("#use-chip")))
}

// logout logs the person out.
func (st *story) logout() {
	st.person.load("log out", chromedp.Click(chromedp.CSS("form.logout button")))
	st.person.want("main", "You are logged out.")
}

// section returns the CSS selector of the person's authenticator whose
// heading says what.
func (st *story) section(tb *tab, what string) string {
	st.t.Helper()
	js := fmt.Sprintf(`(function(){var ss=document.querySelectorAll("section.auth");for(var i=0;i<ss.length;i++){if(ss[i].querySelector("h3").innerText.indexOf(%q)>=0&&ss[i].querySelector(".state-blocked")===null){return ss[i].id}}return ""})()`, what)
	id := eval[string](tb, js)
	if id == "" {
		st.t.Fatalf("%s: no authenticator %q that is not blocked:\n%s", tb.name, what, tb.text("main"))
	}
	return "#" + id
}

func (st *story) run() {
	t, sup, me := st.t, st.support, st.person

	// Support: log in, import the code display's secret (PSKC upload),
	// create the identity with a password, add and activate the display
	// at the desk.
	if code := sup.open("/support"); code != 200 {
		t.Fatalf("GET /support: %d", code)
	}
	sup.submit("form[action='/support/login'] button", "#token", "not the token")
	sup.want(".msg.error", "The support token is not valid.")
	sup.submit("form[action='/support/login'] button", "#token", supportToken)
	sup.want("header", "Support operator desk-1")
	sup.run(chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{st.s.pskcFile(t, st.dev, st.reader)}))
	sup.load("import PSKC", chromedp.Click(chromedp.CSS("form[action='/support/pskc'] button")))
	sup.want(".msg.ok", "2 imported", st.dev.Serial, st.reader.Serial)
	sup.submit("form[action='/support/identities'] button", "#create-identity", st.id, "#create-password", thePassword, "#create-repeat", thePassword)
	sup.want(".msg.ok", "Identity "+st.id+" is created.")
	sup.submit("form[action$='/code-device'] button", "#serial", st.dev.Serial)
	sup.want("main", "waiting for activation")
	sup.submit("form.activate button", "form.activate input[name=code]", st.dev.Code(st.s.clock.Now()))
	sup.want(".msg.ok", "is activated")

	// The person logs in with the password and a code from the display.
	me.open("/")
	me.want("h1", "Log in")
	st.loginCode(st.code())
	me.want(".msg.ok", "You are logged in.")
	me.want("header", "Logged in as "+st.id)
	st.cookieAttributes()

	// Adds a chip through WebAuthn.
	me.submit("#add-chip-button", "#chip-label", "my key")
	me.want("h1", "Add a MitID chip")
	me.load("register the chip", chromedp.Click(chromedp.CSS("#register-chip")))
	me.want(".msg.ok", "The chip is added")
	chipSel := st.section(me, "my key")
	me.want(chipSel, "active", "exists")
	if got := fact(me, chipSel, "Attestation"); got != st.format+" (not trusted)" {
		t.Fatalf("attestation %q, want the browser's %s statement", got, st.format)
	}
	creds := st.chip.credentials()
	if len(creds) != 1 {
		t.Fatalf("the chip holds %d credentials", len(creds))
	}
	oldCred := b64(creds[0].CredentialID)
	if got := eval[string](me, `document.querySelector("`+chipSel+` code.credential").title`); got != oldCred {
		t.Fatalf("the page shows credential %s, the chip holds %s", got, oldCred)
	}
	st.logout()

	// Logs in with the chip.
	st.loginChip()
	me.want(".msg.ok", "You are logged in.")
	st.logout()

	// Three wrong codes: the code display is temporarily blocked.
	for i := 1; i <= 3; i++ {
		st.loginCode(st.wrongCode())
		switch i {
		case 1:
			me.want(".msg.error", "Wrong one-time code (1 failed attempts in a row; 2 more and the authenticator is temporarily blocked).")
		case 3:
			me.want(".msg.error", "the authenticator is now temporarily blocked: reactivate it on self-service, logged in with other authenticators, or contact support")
		}
	}
	st.password()
	st.choose(st.devWord)
	me.want(".msg.error", "temporarily blocked")

	// Reactivates it on the page, logged in with the chip.
	me.open("/")
	st.loginChip()
	display := st.section(me, st.dev.Serial)
	me.want(display, "temporarily blocked")
	if got := fact(me, display, "Failed attempts in a row"); got != "3" {
		t.Fatalf("failed attempts %q, want 3", got)
	}
	me.load("reactivate", chromedp.Click(chromedp.CSS(display+" button.reactivate")))
	me.want(".msg.ok", "is reactivated")
	me.want(display, "active")

	// Blocks the chip as lost: its element is deleted, and the session it
	// proved ends.
	me.run(chromedp.Click(chromedp.CSS(chipSel + " input[value=lost]")))
	me.load("block the chip", chromedp.Click(chromedp.CSS(chipSel+" button.danger")))
	me.want("main", "is permanently blocked", "Your session has ended")
	me.want("h1", "Log in")

	// Logs in with the code display; adds the same chip again: a new
	// credential.
	st.loginCode(st.code())
	me.want("#"+strings.TrimPrefix(chipSel, "#"), "permanently blocked", "deleted when it was blocked", "You can add the same physical chip again")
	me.submit("#add-chip-button", "#chip-label", "my key again")
	me.load("register the chip again", chromedp.Click(chromedp.CSS("#register-chip")))
	me.want(".msg.ok", "The chip is added")
	again := st.section(me, "my key again")
	creds = st.chip.credentials()
	newCred := eval[string](me, `document.querySelector("`+again+` code.credential").title`)
	if len(creds) != 2 || newCred == oldCred {
		t.Fatalf("after the re-add the chip holds %d credentials; the new one is %s, the old %s", len(creds), newCred, oldCred)
	}
	st.logout()

	// The old credential is refused for ever: the chip signs with it when
	// the page's options are tampered with to allow it.
	st.password()
	st.choose("MitID chip")
	eval[bool](me, fmt.Sprintf(`(function(){var f=document.querySelector("form[data-webauthn]");var o=JSON.parse(f.getAttribute("data-options"));o.allowCredentials=[{type:"public-key",id:%q}];f.setAttribute("data-options",JSON.stringify(o));return true})()`, oldCred))
	me.load("the old credential", chromedp.Click(chromedp.CSS("#use-chip")))
	me.want(".msg.error", "This credential was permanently blocked and can never be used again")

	// The new one logs in.
	st.loginChip()
	me.want(".msg.ok", "You are logged in.")

	// The code display is lost: the person blocks it (the session the chip
	// proved goes on), cannot add its serial again, and adds an audio code
	// reader by its serial instead, activated with a code it speaks (a
	// wrong one first).
	display = st.section(me, st.dev.Serial)
	me.run(chromedp.Click(chromedp.CSS(display + " input[value=lost]")))
	me.load("block the code display", chromedp.Click(chromedp.CSS(display+" button.danger")))
	me.want(".msg.ok", "is permanently blocked")
	me.want("header", "Logged in as "+st.id)
	me.submit("form[action='/code-device'] button", "#serial", st.dev.Serial)
	me.want(".msg.error", "order a new authenticator")
	me.run(chromedp.Click(chromedp.CSS("#kind-audio")))
	me.submit("form[action='/code-device'] button", "#serial", st.reader.Serial, "#code-label", "kitchen")
	reader := st.section(me, "kitchen")
	me.want(reader, "waiting for activation")
	st.dev, st.devWord = st.reader, "audio code reader"
	me.submit(reader+" form.activate button", reader+" form.activate input[name=code]", st.wrongCode())
	me.want(".msg.error", "Wrong one-time code")
	me.submit(reader+" form.activate button", reader+" form.activate input[name=code]", st.code())
	me.want(".msg.ok", "is activated")
	me.want(reader, "active")
	st.logout()

	// Three wrong codes from the reader: support reactivates it at the
	// desk, and it logs in again.
	for i := 0; i < 3; i++ {
		st.loginCode(st.wrongCode())
	}
	me.want(".msg.error", "the authenticator is now temporarily blocked")
	sup.open("/support/identities/" + st.id)
	atDesk := st.section(sup, "kitchen")
	sup.want(atDesk, "temporarily blocked")
	sup.load("reactivate at the desk", chromedp.Click(chromedp.CSS(atDesk+" button.reactivate")))
	sup.want(".msg.ok", "is reactivated")
	sup.want(atDesk, "active")
	st.loginCode(st.code())
	me.want(".msg.ok", "You are logged in.")

	// A session left open elsewhere is ended from here.
	other := newTab(t, "elsewhere", st.s.base, me.axe)
	st.loginCodeIn(other, st.code())
	other.want(".msg.ok", "You are logged in.")
	me.open("/sessions")
	me.want("table", "this one")
	n := eval[int](me, `document.querySelectorAll("form[action^='/sessions/']").length`)
	if n != 1 {
		t.Fatalf("%d other sessions listed", n)
	}
	me.load("end the other session", chromedp.Click(chromedp.CSS("form[action^='/sessions/'] button")))
	me.want(".msg.ok", "has ended")
	other.open("/")
	other.want("main", "Your session has ended")

	// The audit trail, in Danish too.
	me.open("/audit")
	me.want("table", "authenticator.blocked", "authenticator.reactivated", "authenticator.suspended", "authenticator.login_failed")
	me.open("/audit?lang=da")
	me.want("h1", "Log")
	if lang := eval[string](me, "document.documentElement.lang"); lang != "da" {
		t.Fatalf("lang %q after the switch", lang)
	}
	me.open("/?lang=da")
	me.want("h1", "Mine identifikationsmidler")
	me.open("/?lang=en")

	// Support blocks the identity: the person's session ends and no login
	// succeeds until support lifts it.
	sup.open("/support")
	sup.submit("form[action='/support/find'] button", "#find-identity", st.id)
	sup.want("h2", "Identity "+st.id)
	sup.want("#audit-caption", "Events of "+st.id)
	sup.submit("#block-identity", "#block-reason", "suspected misuse")
	sup.want("#identity-state", "temporarily blocked")
	me.open("/")
	me.want("main", "Your session has ended")
	st.password()
	me.want(".msg.error", "the identity is temporarily blocked")
	sup.submit("#unblock-identity", "#unblock-note", "identity checked at the desk")
	sup.want("#identity-state", "active")
	st.loginChip()
	me.want(".msg.ok", "You are logged in.")

	// The person blocks their password as compromised: it is gone for
	// good, with the session it proved; support sets a new one at the
	// desk, and the person logs in with it.
	pw := st.section(me, "Password")
	me.run(chromedp.Click(chromedp.CSS(pw + " input[value=compromised]")))
	me.load("block the password", chromedp.Click(chromedp.CSS(pw+" button.danger")))
	me.want("main", "Your session has ended")
	st.password()
	me.want(".msg.error", "permanently blocked")
	sup.open("/support/identities/" + st.id)
	sup.submit("form[action$='/password'] button", "#new-password", thePassword+" 2", "#repeat-password", thePassword+" 2")
	sup.want(".msg.ok", "The new password is saved.")
	me.open("/")
	me.submit("form[action='/login'] button", "#identity", st.id, "#password", thePassword+" 2")
	st.chooseIn(me, "MitID chip")
	me.load("use the chip", chromedp.Click(chromedp.CSS("#use-chip")))
	me.want(".msg.ok", "You are logged in.")

	// Support verifies the audit trail.
	sup.open("/support")
	sup.load("verify", chromedp.Click(chromedp.CSS("form[action='/support/audit/verify'] button")))
	sup.want("#verify-result", "The audit trail is intact")
}

// cookieAttributes checks the session cookie as the browser holds it:
// HttpOnly and SameSite=Strict (and not Secure over plain http).
func (st *story) cookieAttributes() {
	found := false
	for _, c := range st.person.cookies() {
		if c.Name == "authbench_session" || c.Name == "authbench_csrf" {
			found = found || c.Name == "authbench_session"
			if !c.HTTPOnly || c.SameSite != "Strict" || c.Path != "/" || c.Secure {
				st.t.Fatalf("cookie %s: HttpOnly %v, SameSite %q, Path %q, Secure %v", c.Name, c.HTTPOnly, c.SameSite, c.Path, c.Secure)
			}
		}
	}
	if !found {
		st.t.Fatal("no session cookie after the login")
	}
	if eval[bool](st.person, `document.cookie.indexOf("authbench_session") >= 0`) {
		st.t.Fatal("the page's script can read the session cookie")
	}
}

// fact returns the value of the fact named dt in section sel.
func fact(tb *tab, sel, dt string) string {
	return eval[string](tb, fmt.Sprintf(`(function(){var ds=document.querySelectorAll(%q+" dt");for(var i=0;i<ds.length;i++){if(ds[i].innerText===%q){return ds[i].nextElementSibling.innerText}}return ""})()`, sel, dt))
}

// waitText waits until the text of sel holds want.
func waitText(t *testing.T, tb *tab, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tb.text(sel), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s does not say %q: %q", tb.name, sel, want, tb.text(sel))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
