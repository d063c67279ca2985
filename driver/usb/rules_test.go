package usb

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestUdevRules checks the shipped rule file for the mistakes udev does not
// report loudly: a GOTO without its LABEL, a malformed line, an ID in upper
// case or of the wrong length (udev compares strings).
func TestUdevRules(t *testing.T) {
	b, err := os.ReadFile("70-authbench-fido.rules")
	if err != nil {
		t.Fatal(err)
	}
	pair := regexp.MustCompile(`^([A-Z_]+(\{[A-Za-z_]+\})?)(==|!=|\+=|=)"([^"]*)"$`)
	id := regexp.MustCompile(`^[0-9a-f]{4}(\|[0-9a-f]{4})*$`)
	labels, gotos := map[string]bool{}, map[string]bool{}
	vendors := 0
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.Split(line, ", ") {
			m := pair.FindStringSubmatch(field)
			if m == nil {
				t.Errorf("line %d: cannot read %q", n+1, field)
				continue
			}
			key, op, val := m[1], m[3], m[4]
			switch key {
			case "LABEL":
				labels[val] = true
			case "GOTO":
				gotos[val] = true
			case "ATTR{idVendor}", "ATTRS{idVendor}", "ATTR{idProduct}", "ATTRS{idProduct}":
				if !id.MatchString(val) {
					t.Errorf("line %d: %s %q is not lower-case hex", n+1, key, val)
				}
				if strings.HasSuffix(key, "{idVendor}") {
					vendors++
				}
			case "TAG":
				if op != "+=" || val != "uaccess" {
					t.Errorf("line %d: %s", n+1, field)
				}
			}
		}
	}
	for g := range gotos {
		if !labels[g] {
			t.Errorf("GOTO %q has no LABEL", g)
		}
	}
	if vendors < 10 {
		t.Errorf("only %d vendor matches", vendors)
	}
}
