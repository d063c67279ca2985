package usb_test

import (
	"os"
	"strings"
	"testing"

	"github.com/authbench/authbench/driver/usb"
)

// FuzzParseSelector: no panic, and a selector ParseSelector accepts prints
// (String) to a canonical form that parses back to the same selector and
// prints the same again.
func FuzzParseSelector(f *testing.F) {
	b, err := os.ReadFile("../../testdata/usb/selectors.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			f.Add(line)
		}
	}
	f.Add("usb:FFFF:0000:serial=x:index=0")
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := usb.ParseSelector(s)
		if err != nil {
			if sel != (usb.Selector{}) {
				t.Fatalf("selector %+v with an error", sel)
			}
			return
		}
		canon := sel.String()
		again, err := usb.ParseSelector(canon)
		if err != nil || again != sel {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, sel, canon, again, err)
		}
		if again.String() != canon {
			t.Fatalf("String not stable: %q then %q", canon, again.String())
		}
	})
}
