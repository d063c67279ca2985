package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut}, []string{"demo", "--seed", "00"})
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "✗") || !strings.Contains(out.String(), "every step behaved as the rules say") {
		t.Fatalf("demo output:\n%s", out.String())
	}
}

func TestHelpListsCommands(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), &env{stdout: &out, stderr: &out}, []string{"help"}); code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, name := range []string{"demo", "sim", "version"} {
		if !strings.Contains(out.String(), "  "+name+" ") {
			t.Errorf("help does not list %q:\n%s", name, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), &env{stdout: &out, stderr: &out}, []string{"nosuch"}); code != 2 {
		t.Errorf("unknown command exited %d, want 2", code)
	}
}
