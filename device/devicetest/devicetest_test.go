package devicetest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device/devicetest"
)

func pass(context.Context, *devicetest.Run) error { return nil }

// toySuite has a check of every kind.
func toySuite() devicetest.Suite {
	return devicetest.Suite{Name: "toy", Checks: []devicetest.Check{
		{Name: "ok", Description: "passes", Spec: "toy §1", Run: func(ctx context.Context, r *devicetest.Run) error {
			r.Logf("target is %v", r.Target)
			return nil
		}},
		{Name: "bad", Run: func(context.Context, *devicetest.Run) error {
			return errors.New("sign counter did not increase: 5 then 5 | <script>alert(1)</script>")
		}},
		{Name: "n/a", Run: func(context.Context, *devicetest.Run) error {
			return devicetest.Skipf("no U2F here")
		}},
		{Name: "panics", Run: func(context.Context, *devicetest.Run) error {
			var m map[string]int
			m["x"] = 1
			return nil
		}},
		{Name: "audio", Run: func(ctx context.Context, r *devicetest.Run) error {
			return r.Attach("said.wav", "audio/wav", []byte("RIFF...."))
		}},
		{Name: "norun"},
	}}
}

func TestRunSuiteOutcomes(t *testing.T) {
	var progress []string
	rep := devicetest.RunSuite(t.Context(), toySuite(), "the target", devicetest.RunOptions{
		Progress: func(r devicetest.Result) { progress = append(progress, r.Name) },
	})
	want := []struct {
		name   string
		status devicetest.Status
		msg    string
	}{
		{"ok", devicetest.Pass, ""},
		{"bad", devicetest.Fail, "sign counter did not increase: 5 then 5"},
		{"n/a", devicetest.Skip, "no U2F here"},
		{"panics", devicetest.Fail, "the check panicked: assignment to entry in nil map"},
		{"audio", devicetest.Pass, ""},
		{"norun", devicetest.Fail, "no Run function"},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(want))
	}
	for i, w := range want {
		got := rep.Results[i]
		if got.Name != w.name || got.Status != w.status || !strings.Contains(got.Message, w.msg) {
			t.Errorf("result %d = %s %s %q, want %s %s containing %q", i, got.Name, got.Status, got.Message, w.name, w.status, w.msg)
		}
	}
	if !slices.Equal(progress, toySuite().Names()) {
		t.Errorf("progress reported %q", progress)
	}
	if r := rep.Result("ok"); !slices.Equal(r.Log, []string{"target is the target"}) || r.Spec != "toy §1" {
		t.Errorf("ok: log %q spec %q", r.Log, r.Spec)
	}
	if a := rep.Result("audio").Artifacts; len(a) != 1 || string(a[0].Data) != "RIFF...." || a[0].Path != "" {
		t.Errorf("artifacts kept in memory: %+v", a)
	}
	if p, f, s := rep.Counts(); p != 2 || f != 3 || s != 1 || rep.Passed() {
		t.Errorf("counts %d %d %d, passed %v", p, f, s, rep.Passed())
	}
	if rep.Target != "string" || rep.Suite != "toy" {
		t.Errorf("report names suite %q target %q", rep.Suite, rep.Target)
	}
}

func TestRunSuiteSelectAndAccept(t *testing.T) {
	s := toySuite()
	rep := devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{
		Select:     func(name string) bool { return name == "ok" },
		TargetName: "bench chip 7",
	})
	if got := rep.Failed(); len(got) != 0 || rep.Result("bad").Message != "not selected" || rep.Target != "bench chip 7" {
		t.Errorf("with Select: failed %q, bad %+v, target %q", got, rep.Result("bad"), rep.Target)
	}
	s.Accept = func(any) error { return errors.New("not a chip") }
	rep = devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{})
	if got := rep.Failed(); len(got) != len(s.Checks) || !strings.Contains(rep.Results[0].Message, "not a chip") {
		t.Errorf("with Accept failing: failed %q, first %q", got, rep.Results[0].Message)
	}
}

func TestRunSuiteDeadlines(t *testing.T) {
	defer devicetest.SetAbandonAfter(10 * time.Millisecond)()
	release := make(chan struct{})
	returned := make(chan struct{})
	s := devicetest.Suite{Name: "slow", Checks: []devicetest.Check{
		{Name: "waits", Run: func(ctx context.Context, r *devicetest.Run) error {
			<-ctx.Done()
			return ctx.Err()
		}},
		{Name: "ignores", Run: func(ctx context.Context, r *devicetest.Run) error {
			defer close(returned)
			<-release
			return nil
		}},
		{Name: "after", Run: pass},
	}}
	rep := devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{Timeout: 10 * time.Millisecond})
	close(release)
	<-returned // the abandoned check's goroutine ends
	if m := rep.Result("waits").Message; !strings.Contains(m, "did not finish within 10ms") {
		t.Errorf("waits: %q", m)
	}
	if m := rep.Result("ignores").Message; !strings.Contains(m, "ignores cancellation") {
		t.Errorf("ignores: %q", m)
	}
	if r := rep.Result("after"); r.Status != devicetest.Pass {
		t.Errorf("after: %+v", r)
	}
}

func TestRunSuiteInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s := devicetest.Suite{Name: "int", Checks: []devicetest.Check{
		{Name: "first", Run: func(context.Context, *devicetest.Run) error { cancel(); return nil }},
		{Name: "second", Run: pass},
	}}
	rep := devicetest.RunSuite(ctx, s, nil, devicetest.RunOptions{})
	if r := rep.Result("second"); r.Status != devicetest.Skip || !r.NotRun || !strings.Contains(r.Message, "not run: interrupted") {
		t.Errorf("second: %+v", r)
	}
	if !strings.Contains(rep.Stopped, "interrupted") || rep.Passed() {
		t.Errorf("stopped %q, passed %v", rep.Stopped, rep.Passed())
	}
}

func TestMemo(t *testing.T) {
	calls := 0
	fixture := func(r *devicetest.Run) (any, error) {
		return r.Memo("cred", func() (any, error) { calls++; return calls, nil })
	}
	failing := func(r *devicetest.Run) error {
		_, err := r.Memo("broken", func() (any, error) { return nil, errors.New("makeCredential failed") })
		return err
	}
	check := func(name string) devicetest.Check {
		return devicetest.Check{Name: name, Run: func(ctx context.Context, r *devicetest.Run) error {
			v, _ := fixture(r)
			r.Logf("fixture %v", v)
			return failing(r)
		}}
	}
	s := devicetest.Suite{Name: "memo", Checks: []devicetest.Check{check("a"), check("b")}}
	for range 2 { // each run makes its own fixture
		rep := devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{})
		for _, r := range rep.Results {
			if r.Message != "makeCredential failed" {
				t.Errorf("%s: %q", r.Name, r.Message)
			}
		}
	}
	if calls != 2 {
		t.Errorf("fixture made %d times in 2 runs, want 2", calls)
	}
}

func TestArtifactDir(t *testing.T) {
	dir := t.TempDir()
	s := devicetest.Suite{Name: "files", Checks: []devicetest.Check{
		{Name: "audio.digits", Run: func(ctx context.Context, r *devicetest.Run) error {
			if err := r.Attach("../escape.wav", "audio/wav", nil); err == nil {
				return errors.New("a path was accepted as artifact name")
			}
			if err := r.Attach("code.wav", "audio/wav", []byte("RIFF")); err != nil {
				return err
			}
			if err := r.Attach("code.wav", "audio/wav", []byte("RIFF")); err == nil {
				return errors.New("an artifact name was accepted twice")
			}
			return nil
		}},
	}}
	rep := devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{ArtifactDir: dir})
	res := rep.Results[0]
	if res.Status != devicetest.Pass || len(res.Artifacts) != 1 {
		t.Fatalf("%+v", res)
	}
	a := res.Artifacts[0]
	if a.Path != filepath.Join(dir, "audio.digits", "code.wav") || a.Data != nil {
		t.Errorf("artifact %+v", a)
	}
	if b, err := os.ReadFile(a.Path); err != nil || string(b) != "RIFF" {
		t.Errorf("artifact file: %q, %v", b, err)
	}
}

// junit mirrors the JUnit elements a CI server reads.
type junit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		SystemErr  string `xml:"system-err"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
			} `xml:"skipped"`
			Out string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestReports(t *testing.T) {
	rep := devicetest.RunSuite(t.Context(), toySuite(), "target <b>", devicetest.RunOptions{TargetName: "chip <b> & co"})
	other := devicetest.RunSuite(t.Context(), devicetest.Suite{Name: "second", Checks: []devicetest.Check{{Name: "x", Run: pass}}}, nil, devicetest.RunOptions{})

	var buf bytes.Buffer
	if err := devicetest.WriteJUnit(&buf, rep, other); err != nil {
		t.Fatal(err)
	}
	var doc junit
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, buf.Bytes())
	}
	if doc.Tests != 7 || doc.Failures != 3 || doc.Errors != 0 || len(doc.Suites) != 2 {
		t.Fatalf("JUnit totals: %+v", doc)
	}
	s := doc.Suites[0]
	if s.Name != "toy" || s.Tests != 6 || s.Skipped != 1 || len(s.Properties) != 1 || s.Properties[0].Value != "chip <b> & co" {
		t.Errorf("suite %+v", s)
	}
	var names []string
	for _, c := range s.Cases {
		names = append(names, c.Name)
		res := rep.Result(c.Name)
		switch {
		case res.Status == devicetest.Fail && (c.Failure == nil || c.Failure.Message != res.Message):
			t.Errorf("%s: failure %+v, want %q", c.Name, c.Failure, res.Message)
		case res.Status == devicetest.Skip && (c.Skipped == nil || c.Skipped.Message != res.Message):
			t.Errorf("%s: skipped %+v", c.Name, c.Skipped)
		case res.Status == devicetest.Pass && (c.Failure != nil || c.Skipped != nil):
			t.Errorf("%s passed but has %+v %+v", c.Name, c.Failure, c.Skipped)
		}
	}
	if !slices.Equal(names, toySuite().Names()) {
		t.Errorf("JUnit lists %q", names)
	}
	if !strings.Contains(s.Cases[0].Out, "target is target <b>") {
		t.Errorf("system-out %q", s.Cases[0].Out)
	}

	buf.Reset()
	if err := devicetest.WriteMarkdown(&buf, rep, other); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"# toy conformance: FAILED", "# second conformance: PASSED", "| `n/a` | skip |",
		`5 then 5 \| &lt;script&gt;`, "chip &lt;b&gt; & co", "artifact: said.wav (8 bytes, not written)"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}

	buf.Reset()
	if err := devicetest.WriteHTML(&buf, rep, other); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, "<script>") || !strings.Contains(page, "chip &lt;b&gt; &amp; co") {
		t.Errorf("HTML report does not escape device text:\n%s", page)
	}
	for _, name := range toySuite().Names() {
		if !strings.Contains(page, "<code>"+name+"</code>") {
			t.Errorf("HTML report lacks check %q", name)
		}
	}
	if !strings.Contains(page, `<audio controls preload="none" src="data:audio/wav;base64,UklGRi4uLi4=">`) {
		t.Errorf("HTML report does not embed the WAV artifact")
	}
}

// TestProfile: a suite's Profile runs once before the checks; the report
// says which profile the checks ran in (also in JUnit, Markdown and HTML),
// and checks of other profiles are skipped, naming the profile. A profile
// that cannot be found fails every check with the reason.
func TestProfile(t *testing.T) {
	calls := 0
	s := devicetest.Suite{Name: "profiled", Checks: []devicetest.Check{
		{Name: "every", Run: func(ctx context.Context, r *devicetest.Run) error {
			v, err := r.Memo("found", func() (any, error) { return nil, errors.New("the profile left no fixture") })
			if err != nil || v != "left by Profile" {
				return fmt.Errorf("memo %v, %v", v, err)
			}
			return nil
		}},
		{Name: "mine", Run: pass, Profiles: []string{"A", "B"}},
		{Name: "theirs", Run: pass, Profiles: []string{"B"}},
	}, Profile: func(ctx context.Context, r *devicetest.Run) (string, error) {
		calls++
		r.Memo("found", func() (any, error) { return "left by Profile", nil })
		return "A", nil
	}}
	rep := devicetest.RunSuite(t.Context(), s, "target", devicetest.RunOptions{})
	if calls != 1 || rep.Profile != "A" || !rep.Passed() {
		t.Fatalf("Profile called %d times, report profile %q, failed %q", calls, rep.Profile, rep.Failed())
	}
	if r := rep.Result("theirs"); r.Status != devicetest.Skip || r.Message != "not part of the A profile (the check is for B)" {
		t.Errorf("theirs: %s %q", r.Status, r.Message)
	}
	if r := rep.Result("mine"); r.Status != devicetest.Pass {
		t.Errorf("mine: %s %q", r.Status, r.Message)
	}
	var buf bytes.Buffer
	devicetest.WriteJUnit(&buf, rep)
	if !strings.Contains(buf.String(), `<property name="profile" value="A"></property>`) {
		t.Errorf("JUnit lacks the profile:\n%s", buf.String())
	}
	buf.Reset()
	devicetest.WriteMarkdown(&buf, rep)
	if !strings.Contains(buf.String(), "- Profile: A (checks of other profiles are skipped)") {
		t.Errorf("Markdown lacks the profile:\n%s", buf.String())
	}
	buf.Reset()
	devicetest.WriteHTML(&buf, rep)
	if !strings.Contains(buf.String(), `<b class="profile">A</b>`) {
		t.Errorf("HTML lacks the profile")
	}

	s.Profile = func(context.Context, *devicetest.Run) (string, error) { return "", errors.New("getInfo failed") }
	rep = devicetest.RunSuite(t.Context(), s, "target", devicetest.RunOptions{})
	if f := rep.Failed(); len(f) != 3 || !strings.Contains(rep.Results[0].Message, "getInfo failed") || rep.Profile != "" {
		t.Errorf("failed %q: %q", f, rep.Results[0].Message)
	}
}
