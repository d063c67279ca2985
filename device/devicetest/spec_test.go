package devicetest

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSpecReferencesResolve: every spec a check cites resolves: a public
// document with its URL, or a section of CDP/1 that docs/cdp1.md has (and
// no file the repository lacks, such as a design note).
func TestSpecReferencesResolve(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cdp1.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} (\d+(?:\.\d+)?)\.? `).FindAllStringSubmatch(string(doc), -1) {
		sections[m[1]] = true
	}
	cited := regexp.MustCompile(`§(\d+(?:\.\d+)?)`)
	for _, s := range []Suite{ChipSuite(ChipOptions{}), CodeDeviceSuite(CodeOptions{})} {
		for _, c := range s.Checks {
			if c.Spec == "" {
				t.Errorf("%s cites no spec", c.Name)
			}
			for _, r := range specRefs(c.Spec) {
				switch {
				case strings.HasPrefix(r.Text, "CDP/1"):
					for _, m := range cited.FindAllStringSubmatch(r.Text, -1) {
						if !sections[m[1]] {
							t.Errorf("%s cites %q: docs/cdp1.md has no §%s", c.Name, r.Text, m[1])
						}
					}
				case r.URL == "":
					t.Errorf("%s cites %q, which resolves to no document", c.Name, r.Text)
				}
				if strings.Contains(r.Text, ".md") && !strings.Contains(r.Text, "docs/cdp1.md") {
					t.Errorf("%s cites a file: %q", c.Name, r.Text)
				}
			}
		}
	}
}
