package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://", "://x"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := New("http://127.0.0.1:1/prefix/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://127.0.0.1:1/prefix" {
		t.Errorf("BaseURL %q", c.BaseURL())
	}
	// The API's own address works as well: the client adds /v1 itself.
	for _, u := range []string{"http://127.0.0.1:1/v1", "http://127.0.0.1:1/v1/"} {
		c, err := New(u, Options{})
		if err != nil || c.BaseURL() != "http://127.0.0.1:1" {
			t.Errorf("New(%q): BaseURL %q, %v", u, c.BaseURL(), err)
		}
	}
}

// TestAPIErrors checks that every error code of the contract maps to its
// sentinel, that details are read, and that bodies which are not the
// contract's envelope still give a useful *APIError.
func TestAPIErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		want     error
		code     string
		failures int
		state    string
		failed   bool
	}{
		{400, `{"error":{"code":"bad_request","message":"m"}}`, ErrBadRequest, "bad_request", -1, "", false},
		{401, `{"error":{"code":"unauthorized","message":"m"}}`, ErrUnauthorized, "unauthorized", -1, "", false},
		{403, `{"error":{"code":"forbidden","message":"m"}}`, ErrForbidden, "forbidden", -1, "", false},
		{404, `{"error":{"code":"not_found","message":"m"}}`, ErrNotFound, "not_found", -1, "", false},
		{409, `{"error":{"code":"conflict","message":"m"}}`, ErrConflict, "conflict", -1, "", false},
		{413, `{"error":{"code":"too_large","message":"m"}}`, ErrTooLarge, "too_large", -1, "", false},
		{415, `{"error":{"code":"unsupported_media_type","message":"m"}}`, ErrUnsupportedMediaType, "unsupported_media_type", -1, "", false},
		{429, `{"error":{"code":"rate_limited","message":"m"}}`, ErrRateLimited, "rate_limited", -1, "", false},
		{403, `{"error":{"code":"identity_blocked","message":"m"}}`, ErrIdentityBlocked, "identity_blocked", -1, "", false},
		{403, `{"error":{"code":"authenticator_pending","message":"m"}}`, ErrPending, "authenticator_pending", -1, "", false},
		{403, `{"error":{"code":"authenticator_suspended","message":"m"}}`, ErrSuspended, "authenticator_suspended", -1, "", false},
		{403, `{"error":{"code":"authenticator_blocked","message":"m"}}`, ErrBlocked, "authenticator_blocked", -1, "", false},
		{409, `{"error":{"code":"quota_exceeded","message":"m"}}`, ErrQuotaExceeded, "quota_exceeded", -1, "", false},
		{409, `{"error":{"code":"serial_revoked","message":"order a new authenticator"}}`, ErrSerialRevoked, "serial_revoked", -1, "", false},
		{403, `{"error":{"code":"credential_revoked","message":"m"}}`, ErrCredentialRevoked, "credential_revoked", -1, "", false},
		{409, `{"error":{"code":"already_registered","message":"m"}}`, ErrAlreadyRegistered, "already_registered", -1, "", false},
		{400, `{"error":{"code":"attestation_untrusted","message":"m"}}`, ErrAttestationUntrusted, "attestation_untrusted", -1, "", false},
		{401, `{"error":{"code":"wrong_code","message":"m","details":{"failures":1,"state":"active"}}}`, ErrWrongCode, "wrong_code", 1, "active", true},
		{401, `{"error":{"code":"code_replayed","message":"m"}}`, ErrCodeReplayed, "code_replayed", -1, "", false},
		{401, `{"error":{"code":"wrong_pin","message":"m","details":{"failures":2,"state":"active"}}}`, ErrWrongPIN, "wrong_pin", 2, "active", true},
		{401, `{"error":{"code":"wrong_password","message":"m","details":{"failures":3,"state":"suspended"}}}`, ErrWrongPassword, "wrong_password", 3, "suspended", true},
		{401, `{"error":{"code":"bad_signature","message":"m","details":{"failures":1,"state":"active"}}}`, ErrBadSignature, "bad_signature", 1, "active", true},
		{401, `{"error":{"code":"sign_count","message":"m","details":{"failures":1,"state":"active"}}}`, ErrSignCount, "sign_count", 1, "active", true},
		{410, `{"error":{"code":"ceremony_expired","message":"m"}}`, ErrCeremonyExpired, "ceremony_expired", -1, "", false},
		{403, `{"error":{"code":"self_service_refused","message":"m"}}`, ErrSelfServiceRefused, "self_service_refused", -1, "", false},
		{400, `{"error":{"code":"pskc_mac","message":"m"}}`, ErrPSKCMAC, "pskc_mac", -1, "", false},
		{400, `{"error":{"code":"pskc_invalid","message":"m"}}`, ErrPSKCInvalid, "pskc_invalid", -1, "", false},
		{500, `{"error":{"code":"internal","message":"m"}}`, ErrInternal, "internal", -1, "", false},
		// Codes this client does not know fall back to the status.
		{409, `{"error":{"code":"brand_new_code","message":"m"}}`, ErrConflict, "brand_new_code", -1, "", false},
		// Bodies that are not the envelope.
		{502, `<html>Bad Gateway</html>`, ErrInternal, "internal", -1, "", false},
		{503, ``, ErrUnavailable, "unavailable", -1, "", false},
		{503, `{"error":{"code":"unavailable","message":"m"}}`, ErrUnavailable, "unavailable", -1, "", false},
		{405, `{"error":{"code":"method_not_allowed","message":"m"}}`, ErrBadRequest, "method_not_allowed", -1, "", false},
		{404, `{"error":"flat"}`, ErrNotFound, "not_found", -1, "", false},
		{410, `null`, ErrCeremonyExpired, "ceremony_expired", -1, "", false},
		{418, `{}`, ErrBadRequest, "bad_request", -1, "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", tt.status, tt.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, _ := New(srv.URL, Options{})
			_, err := c.Identity(context.Background(), "p1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v is not an *APIError", err)
			}
			if ae.Status != tt.status || ae.Code != tt.code || ae.Method != "GET" || ae.Path != "/v1/identities/p1" {
				t.Errorf("got %+v", ae)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			for _, other := range []error{ErrSuspended, ErrWrongCode, ErrUnreachable, ErrBadResponse} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			if errors.Is(err, ErrFailedAttempt) != tt.failed {
				t.Errorf("ErrFailedAttempt match = %v", !tt.failed)
			}
			n, ok := ae.Failures()
			if (tt.failures >= 0) != ok || ok && n != tt.failures || ae.State() != tt.state {
				t.Errorf("Failures() = %d, %v; State() = %q", n, ok, ae.State())
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "client: GET /v1/identities/p1: ") || !strings.Contains(msg, tt.code) {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, _ := New("http://"+addr, Options{})
		_, err = c.Identity(ctx, "p1")
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err %v, want ErrUnreachable", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Errorf("err %v does not wrap the dial error", err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("message %q does not name the server", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"id":"`+strings.Repeat("x", 2000)+`"}`)
		}))
		defer srv.Close()
		c, _ := New(srv.URL, Options{MaxResponseBytes: 1000})
		if _, err := c.Identity(ctx, "p1"); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("err %v, want ErrBadResponse", err)
		}
		c, _ = New(srv.URL, Options{MaxResponseBytes: 3000})
		if _, err := c.Identity(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("not json", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<html>`)
		}))
		defer srv.Close()
		c, _ := New(srv.URL, Options{})
		if _, err := c.Identity(ctx, "p1"); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("err %v, want ErrBadResponse", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(block)
		c, _ := New(srv.URL, Options{})
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := c.Identity(cctx, "p1"); errc <- err }()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
}

// TestRequests checks the wire form of the plain endpoints: paths, escaping,
// query, headers and bodies.
func TestRequests(t *testing.T) {
	type seen struct {
		method, uri, auth, ctype, body string
	}
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		switch {
		case strings.HasSuffix(r.URL.Path, "/audit"):
			io.WriteString(w, `{"events":[{"seq":7,"time":"2025-01-02T03:04:05Z","type":"login","identity_id":"p 1","actor":{"kind":"owner","id":"p 1","via":"pw"},"hash":"h","prev_hash":"g"}],"next":7}`)
		case strings.HasSuffix(r.URL.Path, "/v1/audit/verify"):
			io.WriteString(w, `{"ok":false,"records":9,"break":{"seq":4,"problem":"hash mismatch"}}`)
		case strings.HasSuffix(r.URL.Path, "/v1/pskc"):
			io.WriteString(w, `{"imported":2,"serials":["a","b"]}`)
		case strings.HasSuffix(r.URL.Path, "/metrics"):
			io.WriteString(w, "# HELP x\nx 1\n")
		default:
			io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	c, _ := New(srv.URL+"/base", Options{Token: "tok"})
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: "pw"})
	must(err)
	_, err = c.Identity(ctx, "p 1/x")
	must(err)
	_, err = c.AddAuthenticator(ctx, "p1", AddRequest{Kind: KindApp, PublicKey: []byte{0xfb, 0xff}, PIN: "123456"})
	must(err)
	_, err = c.Activate(ctx, "p1", "a1", ActivateRequest{Code: "123456"})
	must(err)
	_, err = c.PasswordLogin(ctx, "p1", "pw", "kv 1")
	must(err)
	_, err = c.SecondFactorLogin(ctx, "p1", "c0", "kv1")
	must(err)
	_, err = c.AppLogin(ctx, "p1", "a1")
	must(err)
	_, err = c.FinishLogin(ctx, "p1", FinishLoginRequest{Ceremony: "c1", Code: "123456"})
	must(err)
	must(c.Cancel(ctx, "p1", "a1"))
	_, err = c.Block(ctx, "p1", "a1", ReasonLost)
	must(err)
	_, err = c.WithToken("session").Reactivate(ctx, "p1", "a1")
	must(err)
	_, err = c.BlockIdentity(ctx, "p1", "misuse")
	must(err)
	_, err = c.UnblockIdentity(ctx, "p1", "")
	must(err)
	_, err = c.WithToken("session").Sessions(ctx, "p1")
	must(err)
	must(c.WithToken("session").EndSession(ctx, "p1", "ses 1"))
	must(c.WithToken("session").Logout(ctx))
	page, err := c.Audit(ctx, "p 1", 5, 10)
	must(err)
	if len(page.Events) != 1 || page.Events[0].Actor.Via != "pw" || page.Next == nil || *page.Next != 7 {
		t.Errorf("audit page %+v", page)
	}
	v, err := c.VerifyAudit(ctx)
	must(err)
	if v.OK || v.Break == nil || v.Break.Seq != 4 {
		t.Errorf("verify %+v", v)
	}
	imp, err := c.ImportPSKC(ctx, []byte("<KeyContainer/>"))
	must(err)
	if imp.Imported != 2 {
		t.Errorf("import %+v", imp)
	}
	must(c.Health(ctx))
	m, err := c.Metrics(ctx)
	must(err)
	if !strings.Contains(m, "x 1") {
		t.Errorf("metrics %q", m)
	}
	want := []seen{
		{"POST", "/base/v1/identities", "Bearer tok", "application/json", `{"id":"p1","password":"pw"}`},
		{"GET", "/base/v1/identities/p%201%2Fx", "Bearer tok", "", ""},
		{"POST", "/base/v1/identities/p1/authenticators", "Bearer tok", "application/json", `{"kind":"app","public_key":"-_8","pin":"123456"}`},
		{"POST", "/base/v1/identities/p1/authenticators/a1/activate", "Bearer tok", "application/json", `{"code":"123456"}`},
		{"POST", "/base/v1/identities/p1/login/password", "Bearer tok", "application/json", `{"password":"pw","second":"kv 1"}`},
		{"POST", "/base/v1/identities/p1/login/second", "Bearer tok", "application/json", `{"ceremony":"c0","authenticator":"kv1"}`},
		{"POST", "/base/v1/identities/p1/login/app", "Bearer tok", "application/json", `{"authenticator":"a1"}`},
		{"POST", "/base/v1/identities/p1/login/finish", "Bearer tok", "application/json", `{"ceremony":"c1","code":"123456"}`},
		{"POST", "/base/v1/identities/p1/authenticators/a1/cancel", "Bearer tok", "application/json", `{}`},
		{"POST", "/base/v1/identities/p1/authenticators/a1/block", "Bearer tok", "application/json", `{"reason":"lost"}`},
		{"POST", "/base/v1/identities/p1/authenticators/a1/reactivate", "Bearer session", "application/json", `{}`},
		{"POST", "/base/v1/identities/p1/block", "Bearer tok", "application/json", `{"reason":"misuse"}`},
		{"POST", "/base/v1/identities/p1/unblock", "Bearer tok", "application/json", `{}`},
		{"GET", "/base/v1/identities/p1/sessions", "Bearer session", "", ""},
		{"DELETE", "/base/v1/identities/p1/sessions/ses%201", "Bearer session", "", ""},
		{"POST", "/base/v1/logout", "Bearer session", "application/json", `{}`},
		{"GET", "/base/v1/identities/p%201/audit?after=5&limit=10", "Bearer tok", "", ""},
		{"GET", "/base/v1/audit/verify", "Bearer tok", "", ""},
		{"POST", "/base/v1/pskc", "Bearer tok", "application/pskc+xml", "<KeyContainer/>"},
		{"GET", "/base/healthz", "Bearer tok", "", ""},
		{"GET", "/base/metrics", "Bearer tok", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestAllAuditFollowsPages(t *testing.T) {
	pages := map[string]string{
		"":  `{"events":[{"seq":1},{"seq":2}],"next":2}`,
		"2": `{"events":[{"seq":3}],"next":3}`,
		"3": `{"events":[]}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, pages[r.URL.Query().Get("after")])
	}))
	defer srv.Close()
	c, _ := New(srv.URL, Options{})
	ev, err := c.AllAudit(context.Background(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range ev {
		seqs = append(seqs, e.Seq)
	}
	if !reflect.DeepEqual(seqs, []uint64{1, 2, 3}) {
		t.Errorf("seqs %v", seqs)
	}
	pages["3"] = `{"events":[{"seq":4}],"next":1}`
	if _, err := c.AllAudit(context.Background(), "p1"); !errors.Is(err, ErrBadResponse) {
		t.Errorf("a page going back: err %v", err)
	}
}

func TestBytesJSON(t *testing.T) {
	tests := []struct {
		json string
		want []byte
		ok   bool
	}{
		{`""`, []byte{}, true},
		{`"AQID"`, []byte{1, 2, 3}, true},
		{`"-_8"`, []byte{0xfb, 0xff}, true},
		{`"-_8="`, []byte{0xfb, 0xff}, true},
		{`"+/8"`, nil, false},
		{`123`, nil, false},
		{`"A"`, nil, false},
	}
	for _, tt := range tests {
		var b Bytes
		err := json.Unmarshal([]byte(tt.json), &b)
		if (err == nil) != tt.ok || tt.ok && string(b) != string(tt.want) {
			t.Errorf("%s: %x, %v", tt.json, []byte(b), err)
		}
	}
	out, _ := json.Marshal(struct{ B Bytes }{Bytes{0xfb, 0xff}})
	if string(out) != `{"B":"-_8"}` {
		t.Errorf("marshal %s", out)
	}
}

// Every request sends the headers of its client and of its kind, and a
// client made by WithToken sends its own token (or none) while the
// client it came from keeps sending its own.
func TestRequestHeaders(t *testing.T) {
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Clone())
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	c, _ := New(srv.URL, Options{Token: "tok", UserAgent: "load/1"})
	anon, other := c.WithToken(""), c.WithToken("other")
	plain, _ := New(srv.URL, Options{})
	if _, err := c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.PasswordLogin(ctx, "p1", "pw", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Identity(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Metrics(ctx); err != nil {
		t.Fatal(err)
	}
	if err := plain.Health(ctx); err != nil {
		t.Fatal(err)
	}
	type h struct{ auth, accept, ua, ctype string }
	want := []h{
		{"Bearer tok", "application/json", "load/1", "application/json"},
		{"", "application/json", "load/1", "application/json"},
		{"Bearer other", "application/json", "load/1", ""},
		{"Bearer tok", "text/plain", "load/1", ""},
		{"", "application/json", "authbench-client", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := h{got[i].Get("Authorization"), got[i].Get("Accept"), got[i].Get("User-Agent"), got[i].Get("Content-Type")}
		if g != w {
			t.Errorf("request %d: headers %+v, want %+v", i, g, w)
		}
		if _, ok := got[i]["Authorization"]; ok && w.auth == "" {
			t.Errorf("request %d sent an Authorization header without a token", i)
		}
	}
}

// A client reads every answer to its end, whether the answer says its
// length or not and however long it is, so that all its requests go over
// one kept-alive connection; and it reads no more of an answer than its
// limit allows.
func TestAnswersKeepTheConnection(t *testing.T) {
	long := `{"id":"` + strings.Repeat("x", 5000) + `"}`
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"id":"p1"}`
		if strings.Contains(r.URL.Path, "long") {
			body = long
		}
		if strings.Contains(r.URL.Path, "chunked") {
			// Flushed before the end: no Content-Length.
			io.WriteString(w, body[:3])
			w.(http.Flusher).Flush()
			body = body[3:]
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		io.WriteString(w, body)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	c, _ := New(srv.URL, Options{})
	for range 3 {
		for _, id := range []string{"p1", "long", "chunked", "long-chunked"} {
			got, err := c.Identity(ctx, id)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if want := map[bool]int{false: 2, true: 5000}[strings.Contains(id, "long")]; len(got.ID) != want {
				t.Fatalf("%s: an ID of %d bytes, want %d", id, len(got.ID), want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("12 requests took %d connections, want 1 kept alive", n)
	}
	for _, id := range []string{"long", "long-chunked"} {
		small, _ := New(srv.URL, Options{MaxResponseBytes: 4000})
		if _, err := small.Identity(ctx, id); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s with a limit of 4000 bytes: %v, want ErrBadResponse", id, err)
		}
	}
}
