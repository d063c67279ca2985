package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// muxLogin is a ServeMux with the patterns of the API, each answering
// with the pattern and the {id} the mux matched, to hold loginRoute to
// the mux's choice.
func muxLogin() *http.ServeMux {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range routes() {
		if seen[rt.Pattern] {
			continue
		}
		seen[rt.Pattern] = true
		mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Pattern", r.Pattern)
			w.Header().Set("Id", r.PathValue("id"))
		})
	}
	return mux
}

// checkLoginRoute checks that loginRoute, for a request to target (a
// request URI) with method, chooses what the mux chooses: the same
// pattern and {id}, whenever it takes the path at all.
func checkLoginRoute(t *testing.T, mux *http.ServeMux, method, target string) {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return
	}
	r := &http.Request{Method: method, URL: u, Host: "localhost", RequestURI: target, Header: http.Header{}}
	if pathProblem(r) != "" {
		return // refused before routing
	}
	step, id, ok := loginRoute(r)
	if !ok {
		return // the mux routes it
	}
	rec := &headerRecorder{h: http.Header{}}
	mux.ServeHTTP(rec, r)
	if got, want := step.pattern, rec.h.Get("Pattern"); got != want || rec.status != 0 {
		t.Errorf("%s %q: loginRoute chose %q, the mux %q (status %d)", method, target, got, want, rec.status)
	}
	if got, want := id, rec.h.Get("Id"); got != want {
		t.Errorf("%s %q: loginRoute read id %q, the mux %q", method, target, got, want)
	}
}

type headerRecorder struct {
	h      http.Header
	status int
}

func (w *headerRecorder) Header() http.Header         { return w.h }
func (w *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerRecorder) WriteHeader(s int)           { w.status = s }

var loginRouteSeeds = []string{
	"/v1/identities/alice/login/password",
	"/v1/identities/alice/login/second",
	"/v1/identities/alice/login/app",
	"/v1/identities/alice/login/finish",
	"/v1/identities/a.b-c_d~e/login/finish",
	"/v1/identities/alice/login/password/",
	"/v1/identities/alice/login/",
	"/v1/identities/alice/login",
	"/v1/identities//login/password",
	"/v1/identities/alice/bob/login/password",
	"/v1/identities/%61lice/login/password",
	"/v1/identities/al%2Fice/login/password",
	"/v1/identities/al ice/login/password",
	"/v1/identities/alice/login/pass%77ord",
	"/v1/identities/alice/login/other",
	"/v1/identities/alice/authenticators",
	"/v1/identities/./login/password",
	"/v1/identities/../login/password",
	"/v1/identities/alice/login/password?x=1",
	"/v1/identities/alice/./login/password",
	"/v1/identities/ålice/login/password",
	"/V1/identities/alice/login/password",
}

// TestLoginRoute holds the login steps' own routing to the mux's on the
// paths that exercise it: plain IDs, escapes, extra and empty segments,
// trailing slashes, unknown steps, and every method.
func TestLoginRoute(t *testing.T) {
	mux := muxLogin()
	taken := 0
	for _, target := range loginRouteSeeds {
		for _, m := range []string{"POST", "GET", "DELETE", "CONNECT"} {
			checkLoginRoute(t, mux, m, target)
		}
		u, _ := url.ParseRequestURI(target)
		r := &http.Request{Method: "POST", URL: u}
		if _, _, ok := loginRoute(r); ok && pathProblem(r) == "" {
			taken++
		}
	}
	if taken != 6 {
		t.Errorf("loginRoute took %d of the seeds, want the 6 plain login paths", taken)
	}
}

func FuzzLoginRoute(f *testing.F) {
	for _, s := range loginRouteSeeds {
		f.Add("POST", s)
	}
	mux := muxLogin()
	f.Fuzz(func(t *testing.T, method, target string) {
		if !strings.HasPrefix(target, "/") || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		checkLoginRoute(t, mux, method, target)
	})
}

// TestContentLength checks the shared Content-Length values: the length
// in decimal, the same on the second call, and with no room to append
// into.
func TestContentLength(t *testing.T) {
	for _, n := range []int{0, 7, 99, 100, 1234, maxShared - 1, maxShared, 1 << 20} {
		for range 2 {
			v := contentLength(n)
			if len(v) != 1 || cap(v) != 1 || v[0] != strconv.Itoa(n) {
				t.Fatalf("contentLength(%d) = %q (cap %d)", n, v, cap(v))
			}
		}
	}
}
