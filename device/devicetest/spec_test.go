package devicetest

import (
	"io/fs"
	"os"
	"path/filepath"
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

// TestCDP1CitedFromItsDocument: doc comments and messages cite CDP/1 by
// its protocol document, docs/cdp1.md, not by the section of the design
// note it was written from (a file the repository does not have).
func TestCDP1CitedFromItsDocument(t *testing.T) {
	design := regexp.MustCompile(`DESIGN(\.md)?,? §\s*4\b`)
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".html", ".tmpl", ".json":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, loc := range design.FindAllIndex(b, -1) {
			line := 1 + strings.Count(string(b[:loc[0]]), "\n")
			t.Errorf("%s:%d cites %q: cite CDP/1 in docs/cdp1.md instead", path, line, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Errorf("only %d files read under %s", n, root)
	}
}
