package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/authbench/authbench/internal/testenv"
)

// One Chromium serves every browser test of the package (DESIGN §6
// Browser): Debian's chromium, headless, with the flags a closed network
// needs. Each tab gets a browser context of its own, so cookies are not
// shared between the person and support.

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromium returns the context of the package's browser, starting it the
// first time; without chromium the test skips (fails in CI).
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := testenv.LookPath(t, "chromium", "chromium", "install Debian's chromium (make test-deps)")
	browser.once.Do(func() {
		dir, err := os.MkdirTemp("", "authbench-chromium-")
		if err != nil {
			browser.err = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.UserDataDir(dir),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("lang", "en-US"),
			chromedp.WindowSize(1100, 1400),
		)
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		browser.ctx = bctx
		browser.cancel = func() {
			bcancel()
			acancel()
			os.RemoveAll(dir)
		}
		// The first Run starts the browser; its context must not time out.
		browser.err = chromedp.Do(bctx, chromedp.Navigate("about:blank"))
	})
	if browser.err != nil {
		t.Fatalf("starting chromium: %v", browser.err)
	}
	return browser.ctx
}

// artifacts is the folder that keeps screenshots: $AUTHBENCH_ARTIFACTS, or
// artifacts/ at the repository root.
func artifacts(t *testing.T) string {
	if d := os.Getenv("AUTHBENCH_ARTIFACTS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "artifacts")
}

// axeScript returns axe-core's axe.min.js: $AUTHBENCH_AXE, or the copy
// `make test-deps` installs in the cache; without it the test skips (fails
// in CI).
func axeScript(t *testing.T) string {
	t.Helper()
	path := os.Getenv("AUTHBENCH_AXE")
	if path == "" {
		cache, err := os.UserCacheDir()
		if err == nil {
			path = filepath.Join(cache, "authbench", "axe-core", "node_modules", "axe-core", "axe.min.js")
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		testenv.Missing(t, "axe-core", fmt.Sprintf("%s: %v (make test-deps installs it with npm)", path, err))
		return ""
	}
	return string(b)
}

// tab is one browser tab, in a browser context of its own.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string
	axe  string
	// forms collects every form the tab saw: action → has a CSRF field.
	forms map[string]bool
	shots int
}

// newTab opens a tab on the server at base. On failure of the test it
// leaves a screenshot in artifacts().
func newTab(t *testing.T, name, base, axe string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(chromium(t), chromedp.WithNewBrowserContext())
	tb := &tab{t: t, name: name, ctx: ctx, base: base, axe: axe, forms: map[string]bool{}}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("%s: a new tab: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			tb.screenshot("failed")
		}
		cancel()
	})
	return tb
}

// screenshot saves the page as artifacts()/TEST-TAB-N-what.png.
func (tb *tab) screenshot(what string) {
	dir := artifacts(tb.t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Logf("screenshot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("screenshot: %v", err)
		return
	}
	tb.shots++
	name := strings.NewReplacer("/", "-", " ", "_").Replace(fmt.Sprintf("%s-%s-%02d-%s.png", tb.t.Name(), tb.name, tb.shots, what))
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Logf("screenshot: %v", err)
		return
	}
	tb.t.Logf("screenshot: %s", p)
}

// keepShots: AUTHBENCH_SCREENSHOTS=all saves every page the story shows,
// not only the page of a failure.
var keepShots = os.Getenv("AUTHBENCH_SCREENSHOTS") == "all"

// run runs steps with a deadline.
func (tb *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

// load runs steps that navigate, waits for the page and checks it.
func (tb *tab) load(what string, steps ...chromedp.Action[chromedp.Void]) int {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	t0 := time.Now()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
	t1 := time.Now()
	tb.check(what)
	tb.t.Logf("%s: %s: load %v, check %v", tb.name, what, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	return int(resp.Status)
}

// open loads path.
func (tb *tab) open(path string) int {
	tb.t.Helper()
	return tb.load("GET "+path, chromedp.Navigate(tb.base+path))
}

// submit fills the fields (CSS selector → value) and clicks button.
func (tb *tab) submit(button string, fields ...string) int {
	tb.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for i := 0; i < len(fields); i += 2 {
		if b, _ := json.Marshal(fields[i]); !eval[bool](tb, fmt.Sprintf("!!document.querySelector(%s)", b)) {
			tb.t.Fatalf("%s: no %s on the page; it says:\n%s", tb.name, fields[i], tb.text("main"))
		}
	}
	if b, _ := json.Marshal(button); !eval[bool](tb, fmt.Sprintf("!!document.querySelector(%s)", b)) {
		tb.t.Fatalf("%s: no %s on the page; it says:\n%s", tb.name, button, tb.text("main"))
	}
	for i := 0; i+1 < len(fields); i += 2 {
		steps = append(steps, chromedp.SetValue(chromedp.CSS(fields[i]), fields[i+1]))
	}
	tb.run(steps...)
	return tb.load("click "+button, chromedp.Click(chromedp.CSS(button)))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: evaluating %.60q: %v", tb.name, expr, err)
	}
	return v
}

// text returns the text of the first element matching sel, "" when none.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	b, _ := json.Marshal(sel)
	return eval[string](tb, fmt.Sprintf(`(function(){var e=document.querySelector(%s);return e?e.innerText:""})()`, b))
}

// want fails unless the text of sel holds every one of subs.
func (tb *tab) want(sel string, subs ...string) {
	tb.t.Helper()
	got := tb.text(sel)
	for _, s := range subs {
		if !strings.Contains(got, s) {
			tb.t.Fatalf("%s: %s does not say %q; it says:\n%s", tb.name, sel, s, got)
		}
	}
}

// pageFacts are what every page is checked for: no inline script, style
// or event handler attribute, and the forms with or without a CSRF field.
type pageFacts struct {
	Title        string   `json:"title"`
	InlineScript int      `json:"inlineScript"`
	ForeignSrc   []string `json:"foreignSrc"`
	StyleAttrs   int      `json:"styleAttrs"`
	StyleTags    int      `json:"styleTags"`
	Handlers     []string `json:"handlers"`
	Forms        []struct {
		Action string `json:"action"`
		Method string `json:"method"`
		CSRF   bool   `json:"csrf"`
	} `json:"forms"`
	Error bool `json:"error"`
	Lang  string
}

const factsJS = `(function(){
var f={title:document.title, inlineScript:0, foreignSrc:[], styleAttrs:0, styleTags:document.querySelectorAll('style').length, handlers:[], forms:[],
  error:!!document.querySelector('.msg.error'), Lang:document.documentElement.lang};
document.querySelectorAll('script').forEach(function(s){ if(!s.src){f.inlineScript++} else if(new URL(s.src).origin!==location.origin){f.foreignSrc.push(s.src)} });
document.querySelectorAll('link[href],img[src],iframe,object,embed').forEach(function(e){ var u=e.href||e.src||e.data; if(u&&new URL(u,location.href).origin!==location.origin){f.foreignSrc.push(u)} });
document.querySelectorAll('*').forEach(function(e){ if(e.hasAttribute('style')){f.styleAttrs++} for(var i=0;i<e.attributes.length;i++){var n=e.attributes[i].name; if(n.indexOf('on')===0){f.handlers.push(e.tagName+' '+n)}} if(e.tagName==='A'&&/^\s*javascript:/i.test(e.getAttribute('href')||'')){f.handlers.push('a javascript:')} });
document.querySelectorAll('form').forEach(function(e){ f.forms.push({action:new URL(e.getAttribute('action'),location.href).pathname, method:(e.getAttribute('method')||'get').toLowerCase(), csrf:!!e.querySelector('input[type=hidden][name=csrf]')&&e.querySelector('input[name=csrf]').value.length>20}) });
return f})()`

// check checks the page now shown: no inline script or style, nothing
// from elsewhere, a CSRF field in every form, and no accessibility
// violation of WCAG 2.1 level A or AA (axe-core, injected through CDP,
// which the page's CSP does not govern).
func (tb *tab) check(what string) {
	tb.t.Helper()
	f := eval[pageFacts](tb, factsJS)
	switch {
	case f.InlineScript > 0 || f.StyleAttrs > 0 || f.StyleTags > 0 || len(f.Handlers) > 0:
		tb.t.Fatalf("%s: %s: inline script %d, style attributes %d, style elements %d, handlers %v", tb.name, what, f.InlineScript, f.StyleAttrs, f.StyleTags, f.Handlers)
	case len(f.ForeignSrc) > 0:
		tb.t.Fatalf("%s: %s: the page loads from elsewhere: %v", tb.name, what, f.ForeignSrc)
	}
	for _, fm := range f.Forms {
		if fm.Method != "post" || !fm.CSRF {
			tb.t.Fatalf("%s: %s: form %s (%s) without a CSRF token", tb.name, what, fm.Action, fm.Method)
		}
		tb.forms[fm.Action] = true
	}
	if keepShots {
		tb.screenshot(strings.NewReplacer(" ", "_", "/", "_").Replace(what))
	}
	// axe checks each page once (by language, title and whether it shows
	// a refusal), whichever tab or story shows it first.
	key := f.Lang + "|" + f.Title + "|" + fmt.Sprint(f.Error)
	var routes []string
	for _, fm := range f.Forms {
		for _, r := range formRoutes {
			if routeRE(r).MatchString(fm.Action) && !slices.Contains(routes, r) {
				routes = append(routes, r)
			}
		}
	}
	slices.Sort(routes)
	key += "|" + strings.Join(routes, " ")
	axeRuns.Lock()
	seen := axeRuns.seen[key]
	axeRuns.seen[key] = true
	axeRuns.Unlock()
	if tb.axe == "" || seen {
		return
	}
	tb.runAxe(what)
}

// axeResult is the part of axe.run's result the check reads.
type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any  `json:"target"`
			HTML   string `json:"html"`
		} `json:"nodes"`
	} `json:"violations"`
	Passes int `json:"passes"`
}

// axeRuns counts the pages axe checked, for the log.
var axeRuns = struct {
	sync.Mutex
	n    int
	seen map[string]bool
}{seen: map[string]bool{}}

func (tb *tab) runAxe(what string) {
	tb.t.Helper()
	if !eval[bool](tb, `typeof axe !== "undefined"`) {
		eval[bool](tb, tb.axe+"\n;true")
	}
	res := eval[axeResult](tb, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]})
		.then(function (r) { return {violations: r.violations, passes: r.passes.length}; })`)
	axeRuns.Lock()
	axeRuns.n++
	axeRuns.Unlock()
	if len(res.Violations) > 0 {
		var b strings.Builder
		for _, v := range res.Violations {
			fmt.Fprintf(&b, "\n  %s (%s): %s", v.ID, v.Impact, v.Help)
			for _, n := range v.Nodes {
				fmt.Fprintf(&b, "\n    %v %s", n.Target, n.HTML)
			}
		}
		tb.t.Errorf("%s: %s (%s): axe-core finds WCAG 2.1 A/AA violations:%s", tb.name, what, eval[string](tb, "location.pathname"), b.String())
	}
}

// chip is a CDP virtual authenticator in tab: the MitID chip.
type chip struct {
	tb *tab
	id webauthn.AuthenticatorID
}

// addChip enables the WebAuthn domain of the tab and plugs in a virtual
// authenticator of protocol (ctap2: a FIDO2 chip; u2f: a U2F-only chip)
// over USB, which confirms presence at once.
func (tb *tab) addChip(protocol webauthn.AuthenticatorProtocol) *chip {
	tb.t.Helper()
	id, err := chromedp.Run(tb.ctx, func(ctx context.Context, t *chromedp.Target) (webauthn.AuthenticatorID, error) {
		off := false
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{EnableUI: &off}); err != nil {
			return "", err
		}
		r, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: protocol, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportUsb,
			AutomaticPresenceSimulation: true,
		}})
		return r.AuthenticatorID, err
	})
	if err != nil {
		tb.t.Fatalf("%s: a virtual authenticator: %v", tb.name, err)
	}
	return &chip{tb: tb, id: id}
}

// credentials returns the credentials the chip holds.
func (c *chip) credentials() []*webauthn.Credential {
	c.tb.t.Helper()
	creds, err := chromedp.Run(c.tb.ctx, func(ctx context.Context, t *chromedp.Target) ([]*webauthn.Credential, error) {
		r, err := cdp.Call(ctx, t, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: c.id})
		return r.Credentials, err
	})
	if err != nil {
		c.tb.t.Fatal(err)
	}
	return creds
}

// remove unplugs the chip.
func (c *chip) remove() {
	chromedp.Run(c.tb.ctx, func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, t, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: c.id})
	})
}

// cookies returns the tab's cookies.
func (tb *tab) cookies() []*network.Cookie {
	tb.t.Helper()
	cs, err := chromedp.Run(tb.ctx, func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		return r.Cookies, err
	})
	if err != nil {
		tb.t.Fatal(err)
	}
	return cs
}

// TestAxeFindsViolations: the accessibility check is not vacuous: axe-core,
// injected as the story injects it, reports a field without a label and
// text without contrast on a page made to have them.
func TestAxeFindsViolations(t *testing.T) {
	axe := axeScript(t)
	tb := newTab(t, "bad-page", "", axe)
	tb.run(chromedp.Navigate(`data:text/html,<!doctype html><html lang="en"><head><title>bad</title></head><body><main><form><input type="text" name="x"></form><p><font color="%23eeeeee">faint</font></p></main></body></html>`))
	eval[bool](tb, axe+"\n;true")
	res := eval[axeResult](tb, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]})
		.then(function (r) { return {violations: r.violations, passes: r.passes.length}; })`)
	var ids []string
	for _, v := range res.Violations {
		ids = append(ids, v.ID)
	}
	if !slices.Contains(ids, "label") || !slices.Contains(ids, "color-contrast") {
		t.Fatalf("axe-core reports %v on a page with an unlabelled field and faint text", ids)
	}
}
