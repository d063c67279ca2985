package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// formRoutes are the addresses of every form of the pages (POST). The
// browser story fails when it sees a form that is not listed here.
var formRoutes = []string{
	"/login", "/login/second", "/login/app", "/login/finish", "/logout",
	"/authenticators/{aid}/block", "/authenticators/{aid}/reactivate", "/authenticators/{aid}/activate", "/authenticators/{aid}/cancel",
	"/chip", "/chip/finish", "/code-device", "/password", "/sessions/{sid}/end",
	"/support/login", "/support/logout", "/support/find", "/support/identities",
	"/support/identities/{id}/block", "/support/identities/{id}/unblock", "/support/identities/{id}/password",
	"/support/identities/{id}/code-device", "/support/identities/{id}/authenticators/{aid}/activate",
	"/support/identities/{id}/authenticators/{aid}/reactivate", "/support/identities/{id}/authenticators/{aid}/block",
	"/support/identities/{id}/authenticators/{aid}/cancel", "/support/identities/{id}/sessions/{sid}/end",
	"/support/pskc", "/support/audit/verify",
}

// formRouteKnown reports whether path is one of formRoutes.
func formRouteKnown(path string) bool {
	for _, r := range formRoutes {
		if routeRE(r).MatchString(path) {
			return true
		}
	}
	return false
}

func routeRE(route string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(route), `[^/]+`) + "$")
}

// person is a browser without a browser: a cookie jar on the pages.
type person struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newPerson(t *testing.T, base string, tlsConf *tls.Config) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     english{&http.Transport{TLSClientConfig: tlsConf}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// english asks for the pages in English.
type english struct{ rt http.RoundTripper }

func (e english) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	return e.rt.RoundTrip(r)
}

// get fetches path and returns the answer and its body.
func (p *person) get(path string) (*http.Response, string) {
	p.t.Helper()
	resp, err := p.c.Get(p.base + path)
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// csrf returns the CSRF token of the jar, after a GET when there is none.
func (p *person) csrf() string {
	p.t.Helper()
	u, _ := url.Parse(p.base + "/")
	for _, c := range p.c.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "authbench_csrf") {
			return c.Value
		}
	}
	p.get("/")
	for _, c := range p.c.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "authbench_csrf") {
			return c.Value
		}
	}
	p.t.Fatal("no CSRF cookie")
	return ""
}

// post sends a form (with the jar's CSRF token unless the form has one).
func (p *person) post(path string, form url.Values, header ...string) (*http.Response, string) {
	p.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", p.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

var ceremonyRE = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)

// login logs p in with the password and the code of dev.
func (p *person) login(s *site, id string, dev servicetest.CodeDevice) {
	p.t.Helper()
	resp, body := p.post("/login", url.Values{"identity": {id}, "password": {thePassword}})
	m := ceremonyRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		p.t.Fatalf("login: %d\n%s", resp.StatusCode, body)
	}
	s.clock.Advance(30 * time.Second)
	resp, body = p.post("/login/finish", url.Values{"identity": {id}, "ceremony": {m[1]}, "code": {dev.Code(s.clock.Now())}})
	if resp.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("login/finish: %d\n%s", resp.StatusCode, body)
	}
}

// newIdentity creates identity id with a password and an active code
// display, through the service (as support).
func (s *site) newIdentity(t *testing.T, id string) servicetest.CodeDevice {
	t.Helper()
	ctx, by := context.Background(), domain.Support("setup")
	dev := codeDevice("KV-" + id)
	doc, err := servicetest.PSKC(s.pskc, dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.ImportPSKC(ctx, by, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.CreateIdentity(ctx, by, service.CreateIdentityRequest{ID: id, Password: thePassword}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Service.AddAuthenticator(ctx, by, id, service.AddRequest{Kind: "code-display", Serial: dev.Serial})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.Activate(ctx, by, id, res.Authenticator.ID, service.ActivateRequest{Code: dev.Code(s.clock.Now())}); err != nil {
		t.Fatal(err)
	}
	return dev
}

// TestFormsRefuseMissingCSRF posts to every form's address with a valid
// session and console login but without the form's CSRF token, with a
// wrong one, from another origin and from another site: each is refused
// with 403 and changes nothing. The same form with its token works.
func TestFormsRefuseMissingCSRF(t *testing.T) {
	s := startSite(t)
	dev := s.newIdentity(t, "carl")
	p := newPerson(t, s.base, nil)
	p.login(s, "carl", dev)
	if resp, body := p.post("/support/login", url.Values{"token": {supportToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("support login: %d\n%s", resp.StatusCode, body)
	}
	id, _ := s.Service.Identity(context.Background(), domain.Support("t"), "carl")
	aid := id.Authenticators[len(id.Authenticators)-1].ID
	sessions, _ := s.Service.Sessions(context.Background(), domain.Support("t"), "carl", "")
	sid := sessions.Sessions[0].ID
	fill := strings.NewReplacer("{id}", "carl", "{aid}", aid, "{sid}", sid)
	form := url.Values{"reason": {"lost"}, "identity": {"carl"}, "password": {thePassword}, "token": {supportToken}}
	for _, route := range formRoutes {
		path := fill.Replace(route)
		for _, c := range []struct {
			what   string
			csrf   []string // nil: no field
			header []string
		}{
			{"no token", nil, nil},
			{"an empty token", []string{""}, nil},
			{"a wrong token", []string{"x" + p.csrf()[1:]}, nil},
			{"another origin", []string{p.csrf()}, []string{"Origin", "http://evil.example"}},
			{"another site", []string{p.csrf()}, []string{"Sec-Fetch-Site", "cross-site"}},
		} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if c.csrf != nil {
				f["csrf"] = c.csrf
			}
			req, _ := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header.Set(c.header[i], c.header[i+1])
			}
			resp, err := p.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "The form expired or came from another site") {
				t.Errorf("POST %s with %s: %d, want 403 and the CSRF refusal", path, c.what, resp.StatusCode)
			}
		}
	}
	// Nothing changed: the session lives, the authenticator is active.
	if _, err := s.Service.Sessions(context.Background(), domain.Support("t"), "carl", ""); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Service.Identity(context.Background(), domain.Support("t"), "carl")
	for _, a := range after.Authenticators {
		if a.State != domain.StateActive {
			t.Errorf("%s is %s after the refused forms", a.ID, a.State)
		}
	}
	if after.State != string(domain.IdentityActive) {
		t.Errorf("the identity is %s", after.State)
	}
	if resp, body := p.get("/"); resp.StatusCode != 200 || !strings.Contains(body, "Logged in as carl") {
		t.Fatalf("the session ended: %d", resp.StatusCode)
	}
	// With its token, the same form is served.
	resp, _ := p.post("/support/find", url.Values{"identity": {"carl"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/support/identities/carl" {
		t.Fatalf("support/find with the token: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCookies: the session and CSRF cookies are HttpOnly, SameSite=Strict
// and Path=/; over TLS they are Secure with __Host- names, and the pages
// send Strict-Transport-Security.
func TestCookies(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "tls"}[useTLS], func(t *testing.T) {
			s, conf := startSiteTLS(t, useTLS)
			dev := s.newIdentity(t, "dora")
			p := newPerson(t, s.URL, conf)
			resp, _ := p.get("/")
			checkCookie(t, resp, "authbench_csrf", useTLS)
			if got := resp.Header.Get("Strict-Transport-Security"); useTLS != (got != "") {
				t.Errorf("Strict-Transport-Security %q over TLS %v", got, useTLS)
			}
			// The login's answer sets the session.
			_, body := p.post("/login", url.Values{"identity": {"dora"}, "password": {thePassword}})
			m := ceremonyRE.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no ceremony:\n%s", body)
			}
			s.clock.Advance(30 * time.Second)
			resp, _ = p.post("/login/finish", url.Values{"identity": {"dora"}, "ceremony": {m[1]}, "code": {dev.Code(s.clock.Now())}})
			checkCookie(t, resp, "authbench_session", useTLS)
			if resp, body := p.get("/"); resp.StatusCode != 200 || !strings.Contains(body, "Logged in as dora") {
				t.Fatalf("after the login: %d", resp.StatusCode)
			}
			// The support console's cookie too.
			resp, _ = p.post("/support/login", url.Values{"token": {supportToken}})
			checkCookie(t, resp, "authbench_support", useTLS)
		})
	}
}

// checkCookie checks the attributes of the cookie named base that resp
// sets.
func checkCookie(t *testing.T, resp *http.Response, base string, secure bool) {
	t.Helper()
	name := base
	if secure {
		name = "__Host-" + base
	}
	for _, line := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(line, name+"=") {
			continue
		}
		attrs := strings.ToLower(line)
		for _, want := range []string{"; httponly", "; samesite=strict", "; path=/"} {
			if !strings.Contains(attrs, want) {
				t.Errorf("%s: no %q: %s", name, want, line)
			}
		}
		if strings.Contains(attrs, "; secure") != secure || strings.Contains(attrs, "domain=") {
			t.Errorf("%s: Secure must be %v, no Domain: %s", name, secure, line)
		}
		return
	}
	t.Errorf("no cookie %s in %v", name, resp.Header.Values("Set-Cookie"))
}

// startSiteTLS starts a site, over TLS with a new self-signed certificate
// for localhost when useTLS, and returns the client configuration that
// trusts it.
func startSiteTLS(t *testing.T, useTLS bool) (*site, *tls.Config) {
	t.Helper()
	if !useTLS {
		s := startSite(t)
		s.URL = s.base
		return s, nil
	}
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	s := startSiteWith(t, embedded.Options{TLSCertFile: certFile, TLSKeyFile: keyFile}, "https")
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("the server's URL over TLS is %s", s.URL)
	}
	s.URL = s.base
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, der))
	return s, &tls.Config{RootCAs: pool}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHeaders: every page and the static files carry the strict
// Content-Security-Policy and the other security headers; the API keeps
// its own answers beside the pages.
func TestHeaders(t *testing.T) {
	s := startSite(t)
	dev := s.newIdentity(t, "emil")
	p := newPerson(t, s.base, nil)
	p.login(s, "emil", dev)
	p.post("/support/login", url.Values{"token": {supportToken}})
	for _, path := range []string{"/", "/sessions", "/audit", "/support", "/support/identities/emil", "/no/such/page", "/static/style.css", "/static/webauthn.js"} {
		resp, body := p.get(path)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s %q", path, h, got)
			}
		}
		switch {
		case strings.HasSuffix(path, ".js"):
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "navigator.credentials.create") {
				t.Errorf("%s: %s", path, resp.Header.Get("Content-Type"))
			}
		case path == "/no/such/page":
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d", path, resp.StatusCode)
			}
		case !strings.HasPrefix(path, "/static/"):
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d, Cache-Control %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
		}
	}
	if resp, body := p.get("/healthz"); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz beside the pages: %d %s", resp.StatusCode, body)
	}
	if resp, _ := p.get("/v1/openapi.json"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/v1/openapi.json beside the pages: %d", resp.StatusCode)
	}
}

// TestTemplatesHaveNoInlineScript scans every template (also of pages the
// story does not reach) for inline script, style and event handlers.
func TestTemplatesHaveNoInlineScript(t *testing.T) {
	scriptTag := regexp.MustCompile(`(?i)<script[^>]*>`)
	n := 0
	err := fs.WalkDir(os.DirFS("templates"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("templates", path))
		if err != nil {
			return err
		}
		n++
		for _, tag := range scriptTag.FindAllString(string(b), -1) {
			if !strings.Contains(tag, `src="/static/`) {
				t.Errorf("%s: %s", path, tag)
			}
		}
		for _, re := range []*regexp.Regexp{regexp.MustCompile(`(?i)\sstyle\s*=`), regexp.MustCompile(`(?i)<style`), regexp.MustCompile(`(?i)\son[a-z]+\s*=`), regexp.MustCompile(`(?i)javascript:`)} {
			if m := re.FindString(string(b)); m != "" {
				t.Errorf("%s: %q", path, m)
			}
		}
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("%d templates: %v", n, err)
	}
}

// TestRateLimitShared: logins on the pages take the API's per-source
// limit, from the same bucket: a source that spent it on the pages is
// refused by the API too, and the other way round; a refused request is
// answered 429 with Retry-After and checks nothing.
func TestRateLimitShared(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clock := servicetest.NewClock(time.Now().UTC())
	srv, err := embedded.Start(context.Background(), embedded.Options{Listener: ln, DB: filepath.Join(t.TempDir(), "a.db"),
		Hasher: secrets.FastParams(), Now: clock.Now,
		RateLimit: api.RateLimit{PerSource: api.Rate{Burst: 3, Every: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p := newPerson(t, srv.URL, nil)
	for i := 0; i < 3; i++ {
		if resp, _ := p.post("/login", url.Values{"identity": {"nobody"}, "password": {"x"}}); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	resp, body := p.post("/login", url.Values{"identity": {"nobody"}, "password": {"x"}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many attempts") {
		t.Fatalf("4th login on the pages: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	r, err := http.Post(srv.URL+"/v1/identities/nobody/login/password", "application/json", strings.NewReader(`{"password":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the API after the pages spent the bucket: %d", r.StatusCode)
	}
}
