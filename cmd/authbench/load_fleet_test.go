package main

import "testing"

func TestServeGODEBUG(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "schedtrace=2147483647"},
		{"http2client=0", "http2client=0,schedtrace=2147483647"},
		{"schedtrace=1000,scheddetail=1", "schedtrace=1000,scheddetail=1"},
		{"gctrace=1, schedtrace=0", "gctrace=1, schedtrace=0"},
	} {
		if got := serveGODEBUG(c.in); got != c.want {
			t.Errorf("serveGODEBUG(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
