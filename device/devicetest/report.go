package devicetest

import (
	"bufio"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// JUnit XML, as read by CI servers and test dashboards: one <testsuite> per
// report, one <testcase> per check, <failure> and <skipped> children.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
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
// per report (named after the suite, with the target and the profile the
// checks ran in as properties) and a
// <testcase> per check, with a <failure> or <skipped> child carrying the
// message, and the check's notes and artifacts in <system-out>. It returns
// w's error.
func WriteJUnit(w io.Writer, reports ...*Report) error {
	doc := junitSuites{Name: "authbench"}
	var total time.Duration
	for _, rep := range reports {
		pass, fail, skip := rep.Counts()
		s := junitSuite{
			Name:      rep.Suite,
			Tests:     pass + fail + skip,
			Failures:  fail,
			Skipped:   skip,
			Time:      seconds(rep.Duration),
			Timestamp: rep.Started.UTC().Format("2006-01-02T15:04:05"),
			Properties: []junitProperty{
				{Name: "target", Value: rep.Target},
			},
		}
		if rep.Profile != "" {
			s.Properties = append(s.Properties, junitProperty{Name: "profile", Value: rep.Profile})
		}
		for _, res := range rep.Results {
			c := junitCase{
				Name:      res.Name,
				Classname: "authbench." + rep.Suite,
				Time:      seconds(res.Duration),
				SystemOut: resultText(res),
			}
			switch res.Status {
			case Fail:
				c.Failure = &junitMessage{Message: res.Message, Type: "fail", Text: res.Message}
			case Skip:
				c.Skipped = &junitMessage{Message: res.Message}
			}
			s.Cases = append(s.Cases, c)
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Skipped += s.Skipped
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

// resultText is a check's notes and artifacts as plain text.
func resultText(res Result) string {
	var b strings.Builder
	if res.Spec != "" {
		fmt.Fprintf(&b, "spec: %s\n", res.Spec)
	}
	for _, l := range res.Log {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, a := range res.Artifacts {
		fmt.Fprintf(&b, "artifact: %s\n", artifactWhere(a))
	}
	return b.String()
}

func artifactWhere(a Artifact) string {
	if a.Path != "" {
		return a.Path
	}
	return fmt.Sprintf("%s (%d bytes, not written)", a.Name, len(a.Data))
}

// WriteMarkdown writes the reports as Markdown: per report a heading, the
// target, the profile the checks ran in, and totals, a table of every check, then the messages and notes of
// the checks that did not pass. It returns w's error.
func WriteMarkdown(w io.Writer, reports ...*Report) error {
	bw := bufio.NewWriter(w)
	for i, rep := range reports {
		if i > 0 {
			bw.WriteString("\n")
		}
		pass, fail, skip := rep.Counts()
		fmt.Fprintf(bw, "# %s conformance: %s\n\n", mdText(rep.Suite), verdict(rep))
		fmt.Fprintf(bw, "- Target: %s\n", mdText(rep.Target))
		if rep.Profile != "" {
			fmt.Fprintf(bw, "- Profile: %s (checks of other profiles are skipped)\n", mdText(rep.Profile))
		}
		fmt.Fprintf(bw, "- Started: %s, took %v\n", rep.Started.UTC().Format(time.RFC3339), rep.Duration.Round(time.Millisecond))
		fmt.Fprintf(bw, "- %d passed, %d failed, %d skipped\n\n", pass, fail, skip)
		bw.WriteString("| Check | Result | Time | Message |\n| --- | --- | ---: | --- |\n")
		for _, res := range rep.Results {
			fmt.Fprintf(bw, "| `%s` | %s | %v | %s |\n", strings.ReplaceAll(res.Name, "`", "'"), statusMark(res.Status),
				res.Duration.Round(time.Millisecond), mdText(res.Message))
		}
		for _, res := range rep.Results {
			if res.Status == Pass && len(res.Artifacts) == 0 {
				continue
			}
			fmt.Fprintf(bw, "\n## `%s`: %s\n\n", strings.ReplaceAll(res.Name, "`", "'"), res.Status)
			if res.Description != "" {
				fmt.Fprintf(bw, "%s", mdText(res.Description))
				if res.Spec != "" {
					fmt.Fprintf(bw, " (%s)", mdText(res.Spec))
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
				fmt.Fprintf(bw, "- artifact: %s\n", mdText(artifactWhere(a)))
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("devicetest: Markdown report: %w", err)
	}
	return nil
}

func verdict(rep *Report) string {
	if rep.Passed() {
		return "PASSED"
	}
	return "FAILED"
}

func statusMark(s Status) string {
	switch s {
	case Pass:
		return "pass"
	case Fail:
		return "**FAIL**"
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

// WriteHTML writes the reports as one self-contained HTML page (no external
// files): target, profile and totals, a table per report with every check, and the notes of
// each. Artifacts kept in memory that are WAV recordings (up to 4 MiB) are
// embedded as audio players; written ones are linked. Everything is escaped
// by html/template. It returns w's error.
func WriteHTML(w io.Writer, reports ...*Report) error {
	type artifactView struct {
		Name  string
		Where string
		Href  string
		Audio template.URL // data: URL of an embedded WAV
	}
	type resultView struct {
		Result
		Time      string
		Artifacts []artifactView
	}
	type reportView struct {
		*Report
		Verdict          string
		Pass, Fail, Skip int
		Started, Took    string
		Results          []resultView
	}
	var views []reportView
	for _, rep := range reports {
		v := reportView{Report: rep, Verdict: verdict(rep),
			Started: rep.Started.UTC().Format(time.RFC3339), Took: rep.Duration.Round(time.Millisecond).String()}
		v.Pass, v.Fail, v.Skip = rep.Counts()
		for _, res := range rep.Results {
			rv := resultView{Result: res, Time: res.Duration.Round(time.Millisecond).String()}
			for _, a := range res.Artifacts {
				av := artifactView{Name: a.Name, Where: artifactWhere(a), Href: a.Path}
				if a.Path == "" && a.MediaType == "audio/wav" && len(a.Data) <= 4<<20 {
					av.Audio = template.URL("data:audio/wav;base64," + base64.StdEncoding.EncodeToString(a.Data))
				}
				rv.Artifacts = append(rv.Artifacts, av)
			}
			v.Results = append(v.Results, rv)
		}
		views = append(views, v)
	}
	bw := bufio.NewWriter(w)
	if err := htmlReport.Execute(bw, views); err != nil {
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
<title>authbench conformance{{range .}} · {{.Suite}} {{.Verdict}}{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; } .skip { color: #777; }
.verdict-PASSED { color: #1a7f37; } .verdict-FAILED { color: #cf222e; }
td.time { text-align: right; white-space: nowrap; }
details { margin-top: 0.3em; } pre { white-space: pre-wrap; margin: 0.3em 0; }
.spec { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
{{range .}}
<h1>{{.Suite}} conformance: <span class="verdict-{{.Verdict}}">{{.Verdict}}</span></h1>
<p>Target: <b>{{.Target}}</b><br>{{if .Profile}}Profile: <b class="profile">{{.Profile}}</b> (checks of other profiles are skipped)<br>{{end}}Started {{.Started}}, took {{.Took}}<br>
{{.Pass}} passed, {{.Fail}} failed, {{.Skip}} skipped</p>
<table>
<tr><th>Check</th><th>Result</th><th>Time</th><th>Details</th></tr>
{{range .Results}}<tr id="{{.Name}}">
<td><code>{{.Name}}</code><div class="spec">{{.Spec}}</div></td>
<td class="{{.Status}}">{{.Status}}</td>
<td class="time">{{.Time}}</td>
<td>{{if .Message}}<div class="{{.Status}}">{{.Message}}</div>{{end}}
{{if .Description}}<div>{{.Description}}</div>{{end}}
{{if .Log}}<details><summary>notes ({{len .Log}})</summary><pre>{{range .Log}}{{.}}
{{end}}</pre></details>{{end}}
{{range .Artifacts}}<div>artifact {{if .Href}}<a href="{{.Href}}">{{.Where}}</a>{{else}}{{.Where}}{{end}}
{{if .Audio}}<br><audio controls src="{{.Audio}}"></audio>{{end}}</div>{{end}}
</td></tr>
{{end}}</table>
{{end}}
</body>
</html>
`))
