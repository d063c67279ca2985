package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeDemoPages runs `authbench serve --demo` and does what its
// words tell a newcomer: open the printed address, log in as the printed
// person with the printed password and the code the terminal shows, and
// log in to the support console with the printed token.
func TestServeDemoPages(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: pw, stderr: io.Discard}, []string{"serve", "--demo", "--addr", "127.0.0.1:0", "--log-level", "warn"})
		pw.Close()
	}()
	defer func() {
		cancel()
		go io.Copy(io.Discard, pr)
		if code := <-done; code != 0 {
			t.Errorf("serve --demo exited %d", code)
		}
	}()
	var out strings.Builder
	var base, user, password, token, code string
	codeRE := regexp.MustCompile(`^code display KV-DEMO-0001: (\d{6}) \(until`)
	sc := bufio.NewScanner(pr)
	deadline := time.AfterFunc(60*time.Second, cancel)
	defer deadline.Stop()
	for code == "" && sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "The pages are ready: "):
			base = strings.TrimSuffix(strings.TrimPrefix(line, "The pages are ready: "), "/")
		case len(f) == 3 && f[0] == "user" && f[1] == "ID":
			user = f[2]
		case len(f) == 2 && f[0] == "password":
			password = f[1]
		case strings.Contains(line, "support token") && sc.Scan():
			token = strings.TrimSpace(sc.Text())
			out.WriteString(sc.Text() + "\n")
		case codeRE.MatchString(line):
			code = codeRE.FindStringSubmatch(line)[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" || user == "" || password == "" || token == "" || code == "" || !strings.HasPrefix(base, "http://localhost:") {
		t.Fatalf("serve --demo printed:\n%s", out.String())
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Accept-Language", "en")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	csrf := func() string {
		u, _ := url.Parse(base)
		for _, ck := range jar.Cookies(u) {
			if ck.Name == "authbench_csrf" {
				return ck.Value
			}
		}
		t.Fatal("no CSRF cookie")
		return ""
	}
	post := func(path string, form url.Values) (int, string) {
		form.Set("csrf", csrf())
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept-Language", "en")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if page := get("/"); !strings.Contains(page, "Log in") {
		t.Fatalf("the front page:\n%s", page)
	}
	status, page := post("/login", url.Values{"identity": {user}, "password": {password}})
	m := regexp.MustCompile(`name="ceremony" value="([^"]+)"`).FindStringSubmatch(page)
	if status != 200 || m == nil {
		t.Fatalf("the password: %d\n%s", status, page)
	}
	if status, page = post("/login/finish", url.Values{"identity": {user}, "ceremony": {m[1]}, "code": {code}}); status != http.StatusSeeOther {
		t.Fatalf("the code %s: %d\n%s", code, status, page)
	}
	if page = get("/"); !strings.Contains(page, "Logged in as "+user) || !strings.Contains(page, "KV-DEMO-0001") {
		t.Fatalf("after the login:\n%s", page)
	}
	if status, _ = post("/support/login", url.Values{"token": {token}}); status != http.StatusSeeOther {
		t.Fatalf("the support token: %d", status)
	}
	if page = get("/support/identities/" + user); !strings.Contains(page, "Identity "+user) {
		t.Fatalf("the console:\n%s", page)
	}
}
