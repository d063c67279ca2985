package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
)

// writeReports writes the reports `authbench check` was asked for (JUnit,
// HTML, Markdown; each links its artifacts relative to its own directory)
// and prints the JSON report with --json.
func (c *checkCmd) writeReports(e *env, rep *devicetest.Report) error {
	for _, w := range []struct {
		path  string
		write func(devicetest.ReportOptions, io.Writer, ...*devicetest.Report) error
	}{
		{c.Report, devicetest.ReportOptions.WriteJUnit},
		{c.HTML, devicetest.ReportOptions.WriteHTML},
		{c.Markdown, devicetest.ReportOptions.WriteMarkdown},
	} {
		if w.path == "" {
			continue
		}
		o := devicetest.ReportOptions{Dir: filepath.Dir(w.path)}
		if err := writeFile(w.path, func(f io.Writer) error { return w.write(o, f, rep) }); err != nil {
			return err
		}
	}
	if c.JSON {
		return printJSON(e.stdout, checkJSON{Tally: rep.Tally(), Report: rep})
	}
	return nil
}

// suiteFor returns the suite a selector's device would be checked with,
// and the name of the target, for the report of a device that could not be
// opened.
func suiteFor(sel string) (devicetest.Suite, string) {
	if strings.HasPrefix(sel, "serial:") || strings.HasPrefix(sel, "sim:code") || strings.HasPrefix(sel, "sim:audio") {
		return devicetest.CodeDeviceSuite(devicetest.CodeOptions{}), sel
	}
	return devicetest.ChipSuite(devicetest.ChipOptions{}), sel
}

// statusLabel is how `check` prints a result's status.
func statusLabel(s devicetest.Status) string {
	return strings.ToUpper(s.Text())
}

// summary is the last line of `check`: how many checks ended how.
func summary(t devicetest.Tally) string {
	s := fmt.Sprintf("%d passed, %d failed", t.Passed, t.Failed)
	if t.Errors > 0 {
		s += fmt.Sprintf(", %d could not run", t.Errors)
	}
	if t.NotChecked > 0 {
		s += fmt.Sprintf(", %d not checked", t.NotChecked)
	}
	return s + fmt.Sprintf(", %d skipped", t.Skipped)
}

// simSerial returns what a running `authbench sim` says of the device that
// match picks from its registry (the serial number, which a chip behind
// PC/SC or UDP does not report itself), or nothing.
func simSerial(match func(simDevice) bool) device.Info {
	for _, d := range runningSims() {
		if match(d) {
			return device.Info{Serial: d.Serial}
		}
	}
	return device.Info{}
}

// operatorPrompts makes the chip suite talk to someone at the bench on w:
// a prompt to touch the chip when it waits for a touch, and to keep off it
// while the check that cancels a waiting request runs.
func operatorPrompts(w io.Writer, o *devicetest.ChipOptions) {
	var mu sync.Mutex
	o.TouchNeeded = func(check string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, ">>> touch the chip now (check %s)\n", check)
	}
	if o.WithholdPresence == nil {
		o.WithholdPresence = func(hold bool) {
			mu.Lock()
			defer mu.Unlock()
			if hold {
				fmt.Fprintln(w, ">>> do NOT touch the chip until told: the next request is cancelled while it waits")
			} else {
				fmt.Fprintln(w, ">>> you may touch the chip again when asked")
			}
		}
	}
}
