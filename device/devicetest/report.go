package devicetest

import (
	"bufio"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ReportOptions shape the reports written by its methods. The zero value
// is the default.
type ReportOptions struct {
	// Dir is the directory the report is written to. Links to artifacts
	// (and the paths a JUnit report names) are relative to it, so that the
	// report and its artifacts can be moved together; empty means the
	// working directory.
	Dir string
}

// WriteJUnit writes the reports as JUnit XML with the zero ReportOptions.
func WriteJUnit(w io.Writer, reports ...*Report) error {
	return ReportOptions{}.WriteJUnit(w, reports...)
}

// WriteMarkdown writes the reports as Markdown with the zero ReportOptions.
func WriteMarkdown(w io.Writer, reports ...*Report) error {
	return ReportOptions{}.WriteMarkdown(w, reports...)
}

// WriteHTML writes the reports as HTML with the zero ReportOptions.
func WriteHTML(w io.Writer, reports ...*Report) error {
	return ReportOptions{}.WriteHTML(w, reports...)
}

// JUnit XML, as CI servers read it: the elements and attributes of the
// Jenkins JUnit schema (testdata/junit/junit-10.xsd), which the tests
// validate against.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemErr  string          `xml:"system-err,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure"`
	Error     *junitMessage `xml:"error"`
	Skipped   *junitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

// WriteJUnit writes the reports as one JUnit XML document: a <testsuite>
// per report (named after the suite, with the target, the device, the
// profile the checks ran in and the tool as properties) and a <testcase>
// per check. A check that failed has a <failure>, one that could not run
// (the device went away, stopped answering, timed out) an <error>; skipped
// checks, those not run after the run stopped, and those not checked have
// a <skipped> whose type is "skip", "not-run" or "not-checked". The
// check's spec, notes and artifacts (paths relative to o.Dir) go to
// <system-out>; why the run stopped to the suite's <system-err>. It
// returns w's error.
func (o ReportOptions) WriteJUnit(w io.Writer, reports ...*Report) error {
	doc := junitSuites{Name: "authbench"}
	var total time.Duration
	for _, rep := range reports {
		t := rep.Tally()
		s := junitSuite{
			Name:       rep.Suite,
			Tests:      len(rep.Results),
			Failures:   t.Failed,
			Errors:     t.Errors,
			Skipped:    t.Skipped + t.NotChecked,
			Time:       seconds(rep.Duration),
			Timestamp:  rep.Started.UTC().Format("2006-01-02T15:04:05"),
			Properties: junitProperties(rep),
			SystemErr:  rep.Stopped,
		}
		for _, res := range rep.Results {
			c := junitCase{
				Name:      res.Name,
				Classname: "authbench." + rep.Suite,
				Time:      seconds(res.Duration),
				SystemOut: o.resultText(res),
			}
			switch res.Status {
			case Fail:
				c.Failure = &junitMessage{Message: res.Message, Type: "fail", Text: res.Message}
			case Error:
				c.Error = &junitMessage{Message: res.Message, Type: "error", Text: res.Message}
			case NotChecked:
				c.Skipped = &junitMessage{Message: "not checked: " + res.Message, Type: "not-checked"}
			case Skip:
				typ := "skip"
				if res.NotRun {
					typ = "not-run"
				}
				c.Skipped = &junitMessage{Message: res.Message, Type: typ}
			}
			s.Cases = append(s.Cases, c)
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		total += rep.Duration
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	bw := bufio.NewWriter(w)
	bw.WriteString(xml.Header)
	enc := xml.NewEncoder(bw)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("devicetest: JUnit report: %w", err)
	}
	bw.WriteString("\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("devicetest: JUnit report: %w", err)
	}
	return nil
}

// junitProperties lists what the report's header says.
func junitProperties(rep *Report) []junitProperty {
	var p []junitProperty
	add := func(name, value string) {
		if value != "" {
			p = append(p, junitProperty{Name: name, Value: value})
		}
	}
	add("target", rep.Target)
	if d := rep.Device; d != nil {
		add("device.kind", string(d.Kind))
		add("device.transport", d.Transport)
		add("device.path", d.Path)
		add("device.model", d.Model)
		add("device.serial", d.Serial)
		add("device.firmware", d.Firmware)
		add("device.aaguid", d.AAGUID)
		add("device.versions", strings.Join(d.Versions, " "))
	}
	add("profile", rep.Profile)
	add("tool", rep.Tool)
	add("stopped", rep.Stopped)
	return p
}

// resultText is a check's spec, notes and artifacts as plain text.
func (o ReportOptions) resultText(res Result) string {
	var b strings.Builder
	if res.Spec != "" {
		fmt.Fprintf(&b, "spec: %s\n", res.Spec)
	}
	for _, l := range res.Log {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, a := range res.Artifacts {
		fmt.Fprintf(&b, "artifact: %s\n", o.artifactWhere(a))
	}
	return b.String()
}

// artifactWhere says where an artifact is: its path relative to o.Dir, or
// that it was not written.
func (o ReportOptions) artifactWhere(a Artifact) string {
	if a.Path != "" {
		return o.rel(a.Path)
	}
	return fmt.Sprintf("%s (%d bytes, not written)", a.Name, len(a.Data))
}

// rel returns path relative to o.Dir (both taken from the working
// directory when relative), or path made absolute when it cannot be.
func (o ReportOptions) rel(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return abs
	}
	r, err := filepath.Rel(dir, abs)
	if err != nil {
		return abs
	}
	return r
}

// href returns the URL reference of a file path relative to o.Dir.
func (o ReportOptions) href(path string) string {
	r := filepath.ToSlash(o.rel(path))
	if filepath.IsAbs(r) {
		return (&url.URL{Scheme: "file", Path: r}).String()
	}
	return (&url.URL{Path: r}).String()
}

// Spec documents, for the references reports cite. CDP/1 is authbench's own
// protocol, described in docs/cdp1.md of its source tree.
var specDocs = []struct {
	prefix string
	title  string
	url    string
}{
	{"CTAP 2.1", "FIDO Client to Authenticator Protocol v2.1 (Proposed Standard, 2021-06-15)",
		"https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html"},
	{"WebAuthn", "W3C Web Authentication, Level 2",
		"https://www.w3.org/TR/webauthn-2/"},
	{"FIDO U2F Raw Message Formats", "FIDO U2F Raw Message Formats v1.2 (Proposed Standard, 2017-04-11)",
		"https://fidoalliance.org/specs/fido-u2f-v1.2-ps-20170411/fido-u2f-raw-message-formats-v1.2-ps-20170411.html"},
	{"ISO/IEC 7816-4", "ISO/IEC 7816-4: Organization, security and commands for interchange",
		"https://www.iso.org/standard/77180.html"},
	{"CDP/1", "CDP/1, the code-device protocol: docs/cdp1.md in the authbench source tree", ""},
}

var rfcRef = regexp.MustCompile(`^RFC (\d+)(?: (?:§|Appendix )([0-9A-Z.]+))?`)

// specRef is one reference of a check's spec, with the URL it resolves to
// ("" for CDP/1, which is cited by its file).
type specRef struct {
	Text string
	URL  string
}

// specRefs splits a check's spec ("CTAP 2.1 §6.1.2, §10.2; WebAuthn §6.1")
// into its references, each with the URL of its document: the spec's own
// page, at the section where its anchors follow the section numbers (RFCs).
func specRefs(spec string) []specRef {
	var refs []specRef
	for _, part := range splitSpec(spec) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r := specRef{Text: part}
		if m := rfcRef.FindStringSubmatch(part); m != nil {
			r.URL = "https://www.rfc-editor.org/rfc/rfc" + m[1]
			if m[2] != "" {
				sec := strings.TrimSuffix(m[2], ".")
				if strings.Contains(part, "Appendix") {
					r.URL += "#appendix-" + sec
				} else {
					r.URL += "#section-" + sec
				}
			}
		}
		for _, d := range specDocs {
			if strings.HasPrefix(part, d.prefix) {
				r.URL = d.url
			}
		}
		refs = append(refs, r)
	}
	return refs
}

// splitSpec splits a spec at the semicolons between its references, not
// at those inside parentheses.
func splitSpec(spec string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range spec {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ';':
			if depth == 0 {
				parts = append(parts, spec[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, spec[start:])
}

// references lists the documents the reports cite, in a stable order.
func references(reports []*Report) []specRef {
	seen := map[string]bool{}
	var refs []specRef
	addDoc := func(title, u string) {
		if !seen[title] {
			seen[title] = true
			refs = append(refs, specRef{Text: title, URL: u})
		}
	}
	for _, d := range specDocs {
		for _, rep := range reports {
			for _, res := range rep.Results {
				if strings.Contains(res.Spec, d.prefix) {
					addDoc(d.title, d.url)
				}
			}
		}
	}
	for _, rep := range reports {
		for _, res := range rep.Results {
			for _, part := range splitSpec(res.Spec) {
				if m := rfcRef.FindStringSubmatch(strings.TrimSpace(part)); m != nil {
					addDoc("RFC "+m[1], "https://www.rfc-editor.org/rfc/rfc"+m[1])
				}
			}
		}
	}
	return refs
}

// verdict is a report's one-word outcome: FAILED when a check failed,
// ERROR when one could not run or the run stopped, else PASSED.
func verdict(rep *Report) string {
	t := rep.Tally()
	switch {
	case t.Failed > 0:
		return "FAILED"
	case t.Errors > 0 || rep.Stopped != "":
		return "ERROR"
	}
	return "PASSED"
}

// totals says how many checks ended how, leaving out the empty kinds
// except passed and failed.
func totals(t Tally) string {
	s := fmt.Sprintf("%d passed, %d failed", t.Passed, t.Failed)
	if t.Errors > 0 {
		s += fmt.Sprintf(", %d could not run (error)", t.Errors)
	}
	if t.NotChecked > 0 {
		s += fmt.Sprintf(", %d not checked", t.NotChecked)
	}
	return s + fmt.Sprintf(", %d skipped", t.Skipped)
}

// deviceLine describes the device in one line: "chip on pcsc Virtual PCD
// 00 00, model …, serial …, firmware …, AAGUID …".
func deviceLine(d *DeviceSummary) string {
	if d == nil {
		return ""
	}
	var parts []string
	head := string(d.Kind)
	if d.Transport != "" {
		head = strings.TrimSpace(head + " on " + d.Transport)
	}
	if d.Path != "" {
		head += " " + d.Path
	}
	if head != "" {
		parts = append(parts, head)
	}
	for _, f := range []struct{ name, v string }{{"model", d.Model}, {"serial", d.Serial}, {"firmware", d.Firmware}, {"AAGUID", d.AAGUID}} {
		if f.v != "" {
			parts = append(parts, f.name+" "+f.v)
		}
	}
	if len(d.Versions) > 0 {
		parts = append(parts, "speaks "+strings.Join(d.Versions, ", "))
	}
	return strings.Join(parts, ", ")
}

// WriteMarkdown writes the reports as Markdown: per report a heading with
// the verdict, the target, the device (serial, AAGUID, firmware), the
// profile the checks ran in, the tool, why the run stopped, and totals; a
// table of every check with its result and spec; then the messages,
// notes and artifacts (linked relative to o.Dir) of the checks that did
// not pass; last the documents the specs cite. It returns w's error.
func (o ReportOptions) WriteMarkdown(w io.Writer, reports ...*Report) error {
	bw := bufio.NewWriter(w)
	for i, rep := range reports {
		if i > 0 {
			bw.WriteString("\n")
		}
		fmt.Fprintf(bw, "# %s conformance: %s\n\n", mdText(rep.Suite), verdict(rep))
		fmt.Fprintf(bw, "- Target: %s\n", mdText(rep.Target))
		if line := deviceLine(rep.Device); line != "" {
			fmt.Fprintf(bw, "- Device: %s\n", mdText(line))
		}
		if rep.Profile != "" {
			fmt.Fprintf(bw, "- Profile: %s (checks of other profiles are skipped)\n", mdText(rep.Profile))
		}
		if rep.Tool != "" {
			fmt.Fprintf(bw, "- Checked by: %s\n", mdText(rep.Tool))
		}
		fmt.Fprintf(bw, "- Started: %s, took %v\n", rep.Started.UTC().Format(time.RFC3339), rep.Duration.Round(time.Millisecond))
		if rep.Stopped != "" {
			fmt.Fprintf(bw, "- **Stopped: %s**\n", mdText(rep.Stopped))
		}
		fmt.Fprintf(bw, "- %s\n\n", totals(rep.Tally()))
		bw.WriteString("| Check | Result | Time | Spec | Message |\n| --- | --- | ---: | --- | --- |\n")
		for _, res := range rep.Results {
			fmt.Fprintf(bw, "| `%s` | %s | %v | %s | %s |\n", strings.ReplaceAll(res.Name, "`", "'"), statusMark(res.Status),
				res.Duration.Round(time.Millisecond), mdSpec(res.Spec), mdText(res.Message))
		}
		for _, res := range rep.Results {
			if (res.Status == Pass && len(res.Artifacts) == 0) || res.NotRun {
				continue
			}
			fmt.Fprintf(bw, "\n## `%s`: %s\n\n", strings.ReplaceAll(res.Name, "`", "'"), res.Status.Text())
			if res.Description != "" {
				fmt.Fprintf(bw, "%s", mdText(res.Description))
				if res.Spec != "" {
					fmt.Fprintf(bw, " (%s)", mdSpec(res.Spec))
				}
				bw.WriteString("\n\n")
			}
			if res.Message != "" {
				fmt.Fprintf(bw, "**%s**\n\n", mdText(res.Message))
			}
			for _, l := range res.Log {
				fmt.Fprintf(bw, "- %s\n", mdText(l))
			}
			for _, a := range res.Artifacts {
				if a.Path != "" {
					fmt.Fprintf(bw, "- artifact: [%s](%s)\n", mdText(o.rel(a.Path)), o.href(a.Path))
				} else {
					fmt.Fprintf(bw, "- artifact: %s\n", mdText(o.artifactWhere(a)))
				}
			}
		}
	}
	if refs := references(reports); len(refs) > 0 {
		bw.WriteString("\n## References\n\n")
		for _, r := range refs {
			if r.URL != "" {
				fmt.Fprintf(bw, "- [%s](%s)\n", mdText(r.Text), r.URL)
			} else {
				fmt.Fprintf(bw, "- %s\n", mdText(r.Text))
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("devicetest: Markdown report: %w", err)
	}
	return nil
}

// mdSpec writes a check's spec with each reference linked to its document.
func mdSpec(spec string) string {
	var parts []string
	for _, r := range specRefs(spec) {
		if r.URL != "" {
			parts = append(parts, fmt.Sprintf("[%s](%s)", mdText(r.Text), r.URL))
		} else {
			parts = append(parts, mdText(r.Text))
		}
	}
	return strings.Join(parts, "; ")
}

func statusMark(s Status) string {
	switch s {
	case Pass:
		return "pass"
	case Fail:
		return "**FAIL**"
	case Error:
		return "**ERROR**"
	case NotChecked:
		return "*not checked*"
	}
	return "skip"
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "#", `\#`, "|", `\|`,
)

// mdText escapes s for Markdown text on one line (also in a table cell).
func mdText(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
	return mdEscaper.Replace(s)
}

// WriteHTML writes the reports as one HTML page: per report the verdict,
// the target, the device (serial, AAGUID, firmware, what it speaks), the
// profile, the tool and its version, why the run stopped, totals, and a
// table of every check with its result ("not checked" and "error" apart
// from "fail"), its spec linked to the public document, and its notes.
// Artifacts written to files are linked relative to o.Dir, WAV recordings
// with an audio player; those kept in memory (up to 4 MiB of WAV) are
// embedded. The page fetches nothing else. Everything is escaped by
// html/template. It returns w's error.
func (o ReportOptions) WriteHTML(w io.Writer, reports ...*Report) error {
	type artifactView struct {
		Name  string
		Where string
		Href  template.URL
		Audio template.URL // the WAV's file (relative) or a data: URL
	}
	type resultView struct {
		Result
		Class     string
		Text      string
		Time      string
		Specs     []specRef
		Artifacts []artifactView
	}
	type reportView struct {
		*Report
		Verdict       string
		Device        string
		Totals        string
		Started, Took string
		Results       []resultView
	}
	var views []reportView
	for _, rep := range reports {
		v := reportView{Report: rep, Verdict: verdict(rep), Device: deviceLine(rep.Device), Totals: totals(rep.Tally()),
			Started: rep.Started.UTC().Format(time.RFC3339), Took: rep.Duration.Round(time.Millisecond).String()}
		for _, res := range rep.Results {
			rv := resultView{Result: res, Class: string(res.Status), Text: res.Status.Text(),
				Time: res.Duration.Round(time.Millisecond).String(), Specs: specRefs(res.Spec)}
			for _, a := range res.Artifacts {
				av := artifactView{Name: a.Name, Where: o.artifactWhere(a)}
				isAudio := strings.HasPrefix(a.MediaType, "audio/")
				switch {
				case a.Path != "":
					av.Href = template.URL(o.href(a.Path))
					if isAudio {
						av.Audio = av.Href
					}
				case isAudio && len(a.Data) <= 4<<20:
					av.Audio = template.URL("data:" + a.MediaType + ";base64," + base64.StdEncoding.EncodeToString(a.Data))
				}
				rv.Artifacts = append(rv.Artifacts, av)
			}
			v.Results = append(v.Results, rv)
		}
		views = append(views, v)
	}
	bw := bufio.NewWriter(w)
	data := struct {
		Reports    []reportView
		References []specRef
	}{views, references(reports)}
	if err := htmlReport.Execute(bw, data); err != nil {
		return fmt.Errorf("devicetest: HTML report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("devicetest: HTML report: %w", err)
	}
	return nil
}

var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>authbench conformance{{range .Reports}} · {{.Suite}} {{.Verdict}}{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.header { width: auto; } table.header th { font-weight: normal; color: #555; }
.pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; } .error { color: #bc4c00; font-weight: bold; }
.skip { color: #777; } .not-checked { color: #8250df; font-weight: bold; }
.verdict-PASSED { color: #1a7f37; } .verdict-FAILED { color: #cf222e; } .verdict-ERROR { color: #bc4c00; }
.stopped { border: 2px solid #bc4c00; padding: 0.5em; font-weight: bold; }
td.time { text-align: right; white-space: nowrap; }
details { margin-top: 0.3em; } pre { white-space: pre-wrap; margin: 0.3em 0; }
.spec { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
{{range .Reports}}
<h1>{{.Suite}} conformance: <span class="verdict-{{.Verdict}}">{{.Verdict}}</span></h1>
<table class="header">
<tr><th>Target</th><td><b>{{.Target}}</b></td></tr>
{{with .Report.Device}}{{if .Kind}}<tr><th>Device</th><td>{{.Kind}}{{if .Transport}} on {{.Transport}}{{end}}{{if .Path}} {{.Path}}{{end}}</td></tr>{{end}}
{{if .Model}}<tr><th>Model</th><td>{{.Model}}</td></tr>{{end}}
<tr><th>Serial</th><td class="serial">{{if .Serial}}{{.Serial}}{{else}}not reported{{end}}</td></tr>
<tr><th>AAGUID</th><td class="aaguid">{{if .AAGUID}}{{.AAGUID}}{{else}}none{{end}}</td></tr>
<tr><th>Firmware</th><td class="firmware">{{if .Firmware}}{{.Firmware}}{{else}}not reported{{end}}</td></tr>
{{if .Versions}}<tr><th>Speaks</th><td>{{range $i, $v := .Versions}}{{if $i}}, {{end}}{{$v}}{{end}}</td></tr>{{end}}{{end}}
{{if .Profile}}<tr><th>Profile</th><td><b class="profile">{{.Profile}}</b> (checks of other profiles are skipped)</td></tr>{{end}}
{{if .Tool}}<tr><th>Checked by</th><td class="tool">{{.Tool}}</td></tr>{{end}}
<tr><th>Started</th><td>{{.Started}}, took {{.Took}}</td></tr>
<tr><th>Results</th><td>{{.Totals}}</td></tr>
</table>
{{if .Stopped}}<p class="stopped">Stopped: {{.Stopped}}</p>{{end}}
<table>
<tr><th>Check</th><th>Result</th><th>Time</th><th>Details</th></tr>
{{range .Results}}<tr id="{{.Name}}">
<td><code>{{.Name}}</code><div class="spec">{{range $i, $s := .Specs}}{{if $i}}; {{end}}{{if $s.URL}}<a href="{{$s.URL}}">{{$s.Text}}</a>{{else}}{{$s.Text}}{{end}}{{end}}</div></td>
<td class="{{.Class}}">{{.Text}}</td>
<td class="time">{{.Time}}</td>
<td>{{if .Message}}<div class="{{.Class}}">{{.Message}}</div>{{end}}
{{if .Description}}<div>{{.Description}}</div>{{end}}
{{if .Log}}<details><summary>notes ({{len .Log}})</summary><pre>{{range .Log}}{{.}}
{{end}}</pre></details>{{end}}
{{range .Artifacts}}<div>artifact {{if .Href}}<a href="{{.Href}}">{{.Where}}</a>{{else}}{{.Where}}{{end}}
{{if .Audio}}<br><audio controls preload="none" src="{{.Audio}}"></audio>{{end}}</div>{{end}}
</td></tr>
{{end}}</table>
{{end}}
{{if .References}}<h2>References</h2>
<ul>{{range .References}}<li>{{if .URL}}<a href="{{.URL}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</li>{{end}}</ul>{{end}}
</body>
</html>
`))
