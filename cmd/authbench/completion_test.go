package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/authbench/authbench/internal/testenv"
)

// commandNames are the commands every completion script and the manual
// page must know.
var commandNames = []string{"demo", "sim", "devices", "check", "serve", "identity", "enroll", "login", "app", "logout", "block", "reactivate", "cancel", "status", "audit", "load", "version", "completion", "man"}

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out := runCmd(t, "completion", shell)
	if code != 0 {
		t.Fatalf("completion %s exited %d:\n%s", shell, code, out)
	}
	for _, name := range commandNames {
		if !strings.Contains(out, name) {
			t.Errorf("the %s script does not mention %q", shell, name)
		}
	}
	p := filepath.Join(t.TempDir(), "authbench."+shell)
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompletionBash asks bash itself for completions through the script,
// as a TAB would.
func TestCompletionBash(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "bash", "apt-get install bash")
	script := completionScript(t, "bash")
	cases := []struct {
		line string // the words; the last one is being completed
		want []string
		not  []string
	}{
		{"authbench ch", []string{"check"}, []string{"serve"}},
		{"authbench ", []string{"demo", "sim", "identity", "completion", "man"}, nil},
		{"authbench check --de", []string{"--device", "--destructive"}, []string{"--json"}},
		{"authbench check --device sim:chip -", []string{"--report", "-q", "--help"}, nil},
		{"authbench sim --presence ", []string{"auto", "deny", "never"}, []string{"--chip"}},
		{"authbench identity ", []string{"create"}, []string{"check"}},
		{"authbench identity create --p", []string{"--password-stdin"}, nil},
		{"authbench audit verify --", []string{"--db", "--json"}, []string{"--device"}},
		{"authbench completion ", []string{"bash", "zsh", "fish"}, nil},
		{"authbench login --identity create --j", []string{"--json"}, []string{"--password-stdin"}}, // a flag's value is not a command
		{"authbench help ide", []string{"identity"}, nil},
	}
	for _, c := range cases {
		words := strings.Split(c.line, " ")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_authbench\necho \"${COMPREPLY[*]}\""
		out, err := exec.Command(bash, "--norc", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", c.line, err, out)
		}
		got := " " + strings.TrimSpace(string(out)) + " "
		for _, w := range c.want {
			if !strings.Contains(got, " "+w+" ") {
				t.Errorf("%q completes to %q, missing %q", c.line, got, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(got, " "+w+" ") {
				t.Errorf("%q completes to %q, which should not hold %q", c.line, got, w)
			}
		}
	}
}

// TestCompletionFish asks fish for completions through the script.
func TestCompletionFish(t *testing.T) {
	fish := testenv.LookPath(t, "fish", "fish", "apt-get install fish (make test-deps)")
	script := completionScript(t, "fish")
	for line, want := range map[string][]string{
		"authbench ch":                  {"check\tRun the conformance checks"},
		"authbench check --de":          {"--device\t", "--destructive\t"},
		"authbench sim --presence ":     {"auto", "deny", "never"},
		"authbench identity ":           {"create\t"},
		"authbench identity create --p": {"--password-stdin\t"},
		"authbench audit verify --":     {"--db\t", "--json\t"},
		"authbench completion ":         {"bash", "zsh", "fish"},
	} {
		out, err := exec.Command(fish, "--no-config", "-c", "source "+script+"; complete -C '"+line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("fish completes %q to:\n%s\nmissing %q", line, out, w)
			}
		}
		if strings.Contains(string(out), "Unknown command") || strings.Contains(string(out), "error") {
			t.Errorf("fish complained about the script:\n%s", out)
		}
	}
}

// TestCompletionZsh checks the zsh script's syntax with zsh -n and runs
// its lookup functions in zsh (the completion widget itself needs an
// interactive shell).
func TestCompletionZsh(t *testing.T) {
	zsh := testenv.LookPath(t, "zsh", "zsh", "apt-get install zsh (make test-deps)")
	script := completionScript(t, "zsh")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	out, err := exec.Command(zsh, "-f", "-c", "source "+script+`
print -r -- "words: $(_authbench_words '')"
print -r -- "path: $(_authbench_path --version identity create --identity x)"
print -r -- "flags: $(_authbench_flags 'identity create')"
print -r -- "value: $(_authbench_value sim --presence)"
print -r -- "describe: $(_authbench_describe identity)"`).CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	for _, want := range []string{"words: demo sim devices check", "path: identity create", "flags: --help --server", "--password-stdin",
		"value: auto deny never", "describe: create:Create an identity"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("zsh output lacks %q:\n%s", want, out)
		}
	}
}

// TestManPages: `authbench man` prints a page that mandoc finds no fault
// with and that names every command and the exit statuses; --dir writes
// one page per command.
func TestManPages(t *testing.T) {
	mandoc := testenv.LookPath(t, "mandoc", "mandoc", "apt-get install mandoc (make test-deps)")
	code, page := runCmd(t, "man")
	if code != 0 {
		t.Fatalf("man exited %d:\n%s", code, page)
	}
	for _, want := range []string{".TH AUTHBENCH 1", ".SH EXIT STATUS", "AUTHBENCH_TOKEN", "AUTHBENCH_SERVER"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, name := range commandNames {
		if !strings.Contains(page, `.SS "authbench `+name) {
			t.Errorf("the page has no section for %q", name)
		}
	}
	dir := t.TempDir()
	if code, out := runCmd(t, "man", "--dir", dir); code != 0 {
		t.Fatalf("man --dir exited %d:\n%s", code, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	want := map[string]bool{"authbench.1": true, "authbench-check.1": true, "authbench-identity-create.1": true, "authbench-audit-verify.1": true}
	for _, p := range pages {
		delete(want, filepath.Base(p))
	}
	if len(want) > 0 {
		t.Errorf("man --dir wrote %v; missing %v", pages, want)
	}
	// mandoc -T lint reports every warning; it prints nothing for a clean
	// page.
	out, err := exec.Command(mandoc, append([]string{"-T", "lint", "-W", "warning"}, pages...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("mandoc -T lint: %v\n%s", err, out)
	}
	// The rendered page of check shows its flags with their placeholders.
	txt, err := exec.Command(mandoc, "-T", "utf8", filepath.Join(dir, "authbench-check.1")).Output()
	if err != nil {
		t.Fatal(err)
	}
	plain := stripOverstrike(string(txt))
	for _, want := range []string{"--device=SELECTOR", "--timeout=DURATION", "default: 30s", "EXIT STATUS"} {
		if !strings.Contains(plain, want) {
			t.Errorf("the rendered page lacks %q:\n%s", want, plain)
		}
	}
}

// stripOverstrike removes the backspace bold and underline of terminal
// output (c\bc, _\bc).
func stripOverstrike(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		if i+1 < len(r) && r[i+1] == '\b' {
			continue
		}
		if r[i] == '\b' {
			continue
		}
		b.WriteRune(r[i])
	}
	return b.String()
}
