package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// tabStop is where one press of Tab put the focus.
type tabStop struct {
	Desc    string `json:"desc"`    // tag#id[name] "text", for messages
	Index   int    `json:"index"`   // its place among the page's controls in document order
	Visible bool   `json:"visible"` // it shows a focus indicator (outline or shadow)
}

// controlsJS marks the controls a keyboard user must reach on the page, in
// document order: links, buttons, fields, what is made focusable (a table
// that scrolls) and, of each group of radio buttons, the one Tab stops at
// (the checked one, or the first).
const controlsJS = `(function(){
var all=document.querySelectorAll("a[href],button,input,select,textarea,[tabindex]:not([tabindex='-1'])"),n=0;
for(var i=0;i<all.length;i++){var e=all[i];e.removeAttribute("data-kb");
if(e.type==="hidden"||e.disabled||e.getClientRects().length===0&&!e.classList.contains("skip"))continue;
if(e.type==="radio"){var g=e.form?e.form.querySelectorAll("input[type=radio][name='"+e.name+"']"):[e],c=null;
for(var j=0;j<g.length;j++){if(g[j].checked)c=g[j]}if(c?c!==e:g[0]!==e)continue}
e.setAttribute("data-kb",String(n++))}
return n})()`

// focusJS describes the focused element.
const focusJS = `(function(){var e=document.activeElement;if(!e||e===document.body)return {desc:"body",index:-1,visible:false};
var s=getComputedStyle(e),d=e.tagName.toLowerCase()+(e.id?"#"+e.id:"")+(e.name?"["+e.name+"]":"")+" "+JSON.stringify((e.innerText||e.value||"").trim().slice(0,30));
return {desc:d,index:e.hasAttribute("data-kb")?parseInt(e.getAttribute("data-kb"),10):-1,
visible:s.outlineStyle!=="none"&&parseFloat(s.outlineWidth)>=2||s.boxShadow!=="none"}})()`

// tabThrough presses Tab from the top of the page until the focus leaves
// the page, and checks that it stopped at every control once, in
// document order, each with a visible focus indicator (WCAG 2.1 2.1.1,
// 2.4.3, 2.4.7).
func tabThrough(t *testing.T, tb *tab, what string) {
	t.Helper()
	n := eval[int](tb, controlsJS)
	fromTop(tb)
	var stops []tabStop
	for i := 0; i <= n+2; i++ {
		tb.run(chromedp.KeyEvent("\t"))
		s := eval[tabStop](tb, focusJS)
		if s.Desc == "body" || len(stops) > 0 && s.Index == 0 {
			break // out of the page, or round again
		}
		stops = append(stops, s)
	}
	var order []string
	for i, s := range stops {
		order = append(order, s.Desc)
		switch {
		case s.Index != i:
			t.Fatalf("%s: Tab stop %d is %s, control %d in document order; the stops:\n  %s", what, i, s.Desc, s.Index, strings.Join(order, "\n  "))
		case !s.Visible:
			t.Errorf("%s: %s has no visible focus indicator", what, s.Desc)
		}
	}
	if len(stops) != n {
		t.Fatalf("%s: Tab reached %d of the %d controls:\n  %s", what, len(stops), n, strings.Join(order, "\n  "))
	}
	t.Logf("%s: Tab reaches all %d controls in order, each with a visible focus", what, n)
}

// fromTop moves the start of sequential focus navigation to the top of
// the page (a focusable, but not tabbable, mark before everything), so
// that the next Tab goes to the first control.
func fromTop(tb *tab) {
	eval[bool](tb, `(function(){var m=document.getElementById("kb-top");if(!m){m=document.createElement("span");m.id="kb-top";m.tabIndex=-1;document.body.insertBefore(m,document.body.firstChild)}m.focus();return true})()`)
}

// press types keys into the focused element.
func press(tb *tab, keys string) { tb.run(chromedp.KeyEvent(keys)) }

// focusOn presses Tab until the element with id has the focus.
func focusOn(t *testing.T, tb *tab, id string) {
	t.Helper()
	for i := 0; i < 40; i++ {
		if eval[string](tb, "document.activeElement ? document.activeElement.id : ''") == id {
			return
		}
		press(tb, "\t")
	}
	t.Fatalf("%s: Tab never reaches #%s", tb.name, id)
}

// TestKeyboard: a person who cannot use a pointer (many who use an audio
// code reader cannot see the screen) does the whole thing with the
// keyboard: the skip link comes first and leads into the main content;
// Tab reaches every control of the login, the factor, the home, sessions
// and audit pages in document order with a visible focus; the login goes
// through with typing and Enter, and so does blocking an authenticator.
func TestKeyboard(t *testing.T) {
	chromium(t)
	s := startSite(t)
	dev := s.newIdentity(t, "karen")
	tb := newTab(t, "keyboard", s.base, "")

	tb.open("/")
	tabThrough(t, tb, "login page")
	fromTop(tb)
	press(tb, "\t")
	if d := eval[tabStop](tb, focusJS).Desc; !strings.HasPrefix(d, "a ") || !strings.Contains(d, "Skip") {
		t.Fatalf("the first Tab stop is %s, not the skip link", d)
	}
	press(tb, "\r")
	if id := eval[string](tb, "document.activeElement.id"); id != "main" {
		t.Fatalf("the skip link leads to %q, not the main content", id)
	}

	focusOn(t, tb, "identity")
	press(tb, "karen\t"+thePassword)
	tb.load("Enter on the password", chromedp.KeyEvent("\r"))
	if id := eval[string](tb, "document.activeElement.id"); id != "code" {
		t.Fatalf("after the password the focus is on %q, not the code field", id)
	}
	tabThrough(t, tb, "code page")
	focusOn(t, tb, "code")
	s.clock.Advance(30 * time.Second)
	press(tb, dev.Code(s.clock.Now()))
	tb.load("Enter on the code", chromedp.KeyEvent("\r"))
	tb.want(".msg.ok", "You are logged in.")
	tabThrough(t, tb, "home page")

	for _, p := range []string{"/sessions", "/audit"} {
		tb.open(p)
		tabThrough(t, tb, p)
	}

	// Blocks the password as compromised with the keyboard: Tab to the
	// radio button, Space, Tab to the button, Enter.
	tb.open("/")
	pw := eval[string](tb, `(function(){var ss=document.querySelectorAll("section.auth");for(var i=0;i<ss.length;i++){if(ss[i].querySelector("h3").innerText.indexOf("Password")>=0)return ss[i].id.slice(2)}return ""})()`)
	if pw == "" {
		t.Fatal("no password on the home page")
	}
	focusOn(t, tb, "lost-"+pw)
	press(tb, kb.ArrowDown) // the next radio button of the group
	if id := eval[string](tb, "document.activeElement.id"); id != "compromised-"+pw {
		t.Fatalf("arrow down moves to %q", id)
	}
	press(tb, " ")
	for i := 0; i < 5 && !eval[bool](tb, `document.activeElement.classList.contains("danger")`); i++ {
		press(tb, "\t")
	}
	tb.load("Enter on block", chromedp.KeyEvent("\r"))
	tb.want("main", "Your session has ended")
}
