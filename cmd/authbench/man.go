package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// manCmd is `authbench man`.
type manCmd struct {
	Dir string `placeholder:"DIR" type:"path" help:"Write authbench.1 and one authbench-COMMAND.1 per command into DIR instead of printing authbench.1."`
}

func (c *manCmd) Run(kctx *kong.Context, e *env) error {
	specs := commandSpecs(kctx.Model)
	if c.Dir == "" {
		return writeManPage(e.stdout, specs, nil)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	write := func(name string, only *cmdSpec) error {
		var b bytes.Buffer
		if err := writeManPage(&b, specs, only); err != nil {
			return err
		}
		path := filepath.Join(c.Dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, path)
		return nil
	}
	if err := write("authbench.1", nil); err != nil {
		return err
	}
	for i := range specs[1:] {
		s := &specs[i+1]
		if len(s.subs) > 0 || s.path == "help" {
			continue
		}
		if err := write("authbench-"+strings.ReplaceAll(s.path, " ", "-")+".1", s); err != nil {
			return err
		}
	}
	return nil
}

// secretEnvs are the environment variables that hold secrets themselves;
// they have no flag (a secret never goes on the command line).
var secretEnvs = [][2]string{
	{"AUTHBENCH_TOKEN", "The support or session token, for commands that talk to a server, when no --token-file is given."},
	{"AUTHBENCH_OTP_SECRET", "The OTP secret of a code device in hex (check, sim), when no --otp-secret-file is given."},
	{"AUTHBENCH_PIN", "The PIN of a simulated app (login --app-seed-file) instead of the first line of standard input."},
	{"AUTHBENCH_APP_SEED", "The seed of a simulated app in hex (login without --password-stdin, app respond), when no --app-seed-file is given."},
	{"AUTHBENCH_MASTER_KEY", "The master key itself (serve), instead of the --master-key file."},
	{"AUTHBENCH_PSKC_KEY", "The pre-shared PSKC key in hex (serve), when no --pskc-key-file is given."},
	{"AUTHBENCH_PSKC_PASSPHRASE", "The PSKC passphrase (serve), when no --pskc-passphrase-file is given."},
}

// manDetail writes a command's detailed help (its Help method): paragraphs,
// and lines indented by four spaces as they are.
func manDetail(w io.Writer, detail string) {
	if detail == "" {
		return
	}
	for _, para := range strings.Split(strings.TrimSpace(detail), "\n\n") {
		fmt.Fprintln(w, ".PP")
		if strings.HasPrefix(para, "    ") {
			fmt.Fprintln(w, ".nf")
			for _, l := range strings.Split(para, "\n") {
				fmt.Fprintln(w, roffEscape(strings.TrimPrefix(l, "    ")))
			}
			fmt.Fprintln(w, ".fi")
			continue
		}
		fmt.Fprintln(w, roffEscape(strings.Join(strings.Fields(para), " ")))
	}
}

// writeManPage writes a manual page in roff (man(7)): authbench(1) with
// every command when only is nil, else the page of one command.
func writeManPage(w io.Writer, specs []cmdSpec, only *cmdSpec) error {
	title, name, summary := "AUTHBENCH", "authbench", strings.TrimPrefix(description, "authbench — ")
	if only != nil {
		name = "authbench-" + strings.ReplaceAll(only.path, " ", "-")
		title = strings.ToUpper(name)
		summary = strings.TrimSuffix(only.node.Help, ".")
	}
	fmt.Fprintf(w, ".TH %s 1 %q %q \"authbench manual\"\n", title, manDate(), "authbench "+currentVersion().Version)
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", roffEscape(name), roffEscape(lowerFirst(summary)))
	fmt.Fprintln(w, ".SH SYNOPSIS")
	if only != nil {
		manSynopsis(w, *only)
	} else {
		fmt.Fprintln(w, ".B authbench\n.I COMMAND\n.RI [ FLAGS ]")
		fmt.Fprintln(w, ".br\n.B authbench\n.B \\-\\-version")
		fmt.Fprintln(w, ".SH DESCRIPTION")
		fmt.Fprintln(w, roffEscape("authbench is the one binary of the authbench toolkit: drivers for MitID-style chips, code displays and audio code readers, simulators that behave like them, a conformance suite, and a server that owns each person's authenticators and their security elements."))
		fmt.Fprintln(w, ".PP")
		fmt.Fprintln(w, roffEscape(`Flags are long (--device) with short forms for a few (-q, -v, -h); a flag takes its value as --flag VALUE or --flag=VALUE. Unknown flags and stray arguments are errors. "authbench help COMMAND" shows the flags of one command.`))
		fmt.Fprintln(w, ".SH OPTIONS")
		fmt.Fprintf(w, ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n%s\n", roffEscape("Show the help of authbench, or of the command it follows."))
		manArgsAndFlags(w, specs[0])
		fmt.Fprintln(w, ".SH COMMANDS")
	}
	for i := range specs[1:] {
		s := specs[i+1]
		if only != nil && s.path != only.path {
			continue
		}
		if only == nil {
			if len(s.subs) > 0 {
				continue
			}
			fmt.Fprintf(w, ".SS %q\n", "authbench "+s.path)
			fmt.Fprintln(w, roffEscape(s.node.Help))
			manDetail(w, s.node.Detail)
			fmt.Fprintln(w, ".PP")
			manSynopsis(w, s)
		} else {
			fmt.Fprintln(w, ".SH DESCRIPTION")
			fmt.Fprintln(w, roffEscape(s.node.Help))
			manDetail(w, s.node.Detail)
		}
		manArgsAndFlags(w, s)
	}
	fmt.Fprintln(w, ".SH EXIT STATUS")
	for _, st := range [][2]string{
		{"0", "All good."},
		{"1", "Checks failed, targets were missed, or the server refused (a failure)."},
		{"2", "Usage error: an unknown command or flag, a stray argument, a missing or bad value."},
		{"3", "A device or a server could not be reached or opened, or a device went away or stopped answering during check (an error, not a failure)."},
		{"130", "Interrupted by SIGINT (Ctrl-C) or SIGTERM, after cleaning up. serve, sim and devices --watch, which run until interrupted, exit 0 then."},
	} {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", st[0], roffEscape(st[1]))
	}
	fmt.Fprintln(w, ".SH ENVIRONMENT")
	envs := map[string]string{}
	for _, s := range specs {
		if only != nil && s.path != only.path {
			continue
		}
		for _, f := range s.flags {
			for _, e := range f.Envs {
				envs[e] = fmt.Sprintf("The default of --%s (%s).", f.Name, strings.TrimSpace("authbench "+s.path))
			}
		}
	}
	names := make([]string, 0, len(envs))
	for n := range envs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", n, roffEscape(envs[n]))
	}
	for _, se := range secretEnvs {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", se[0], roffEscape(se[1]))
	}
	fmt.Fprintln(w, ".SH SEE ALSO")
	if only != nil {
		fmt.Fprintln(w, ".BR authbench (1)")
	} else {
		fmt.Fprintln(w, roffEscape("authbench completion bash|zsh|fish prints a shell completion script; authbench man --dir DIR writes one page per command."))
	}
	return nil
}

// manSynopsis writes the command line of s: its path, required flags,
// positional arguments and [flags].
func manSynopsis(w io.Writer, s cmdSpec) {
	fmt.Fprintf(w, ".B authbench %s\n", roffEscape(s.path))
	for _, f := range s.flags {
		if f.Required {
			fmt.Fprintf(w, ".BI \\-\\-%s= %s\n", roffEscape(f.Name), roffEscape(f.FormatPlaceHolder()))
		}
	}
	for _, a := range s.args {
		if a.Required {
			fmt.Fprintf(w, ".I %s\n", roffEscape(strings.ToUpper(a.Name)))
		} else {
			fmt.Fprintf(w, ".RI [ %s ]\n", roffEscape(strings.ToUpper(a.Name)))
		}
	}
	if len(s.flags) > 0 {
		fmt.Fprintln(w, ".RI [ FLAGS ]")
	}
}

// manArgsAndFlags lists the positional arguments and flags of s, each
// with its help, values, default and environment variable.
func manArgsAndFlags(w io.Writer, s cmdSpec) {
	for _, a := range s.args {
		fmt.Fprintf(w, ".TP\n.I %s\n%s\n", roffEscape(strings.ToUpper(a.Name)), roffEscape(helpValue(a)))
	}
	for _, f := range s.flags {
		fmt.Fprintln(w, ".TP")
		var head []string
		if f.Short != 0 {
			head = append(head, `\fB\-`+string(f.Short)+`\fR`)
		}
		long := `\fB\-\-` + roffEscape(f.Name) + `\fR`
		if !f.IsBool() && !f.IsCounter() {
			long += `=\fI` + roffEscape(f.FormatPlaceHolder()) + `\fR`
		}
		head = append(head, long)
		fmt.Fprintln(w, strings.Join(head, ", "))
		fmt.Fprintln(w, roffEscape(helpValue(f.Value)))
	}
}

// roffEscape makes text safe in a roff line: backslashes and dashes
// escaped, and a control character at the start neutralised.
func roffEscape(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func lowerFirst(s string) string {
	if s == "" || strings.ToUpper(s[:1]) != s[:1] || len(s) > 1 && strings.ToUpper(s[1:2]) == s[1:2] {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// manDate is the date on the pages: $SOURCE_DATE_EPOCH when set (for
// reproducible builds), else today.
func manDate() string {
	t := time.Now()
	if v, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		t = time.Unix(v, 0)
	}
	return t.UTC().Format("2006-01-02")
}
