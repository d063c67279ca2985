package hid_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/driver/usb/hid"
)

const testdata = "../../../testdata/usb"

var comment = regexp.MustCompile(`#.*`)

// readHex reads a testdata file of hex digits; "#" starts a comment that
// runs to the end of the line, white space is ignored.
func readHex(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		tb.Fatal(err)
	}
	digits := strings.Join(strings.Fields(comment.ReplaceAllString(string(b), "")), "")
	out, err := hex.DecodeString(digits)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return out
}

func seeds(tb testing.TB, pattern string) [][]byte {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(testdata, pattern))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no seeds for %s: %v", pattern, err)
	}
	var out [][]byte
	for _, n := range names {
		out = append(out, readHex(tb, filepath.Base(n)))
	}
	return out
}

func h(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseVectors(t *testing.T) {
	tests := []struct {
		file string
		want []hid.Collection
	}{
		{"report-fido.hex", []hid.Collection{{Type: 1, UsagePage: 0xF1D0, Usage: 1,
			Reports: []hid.Report{{InputBits: 512, OutputBits: 512}}}}},
		{"report-fido-extended.hex", []hid.Collection{{Type: 1, UsagePage: 0xF1D0, Usage: 1,
			Reports: []hid.Report{{InputBits: 512, OutputBits: 512}}}}},
		{"report-keyboard.hex", []hid.Collection{{Type: 1, UsagePage: 0x01, Usage: 0x06,
			Reports: []hid.Report{{InputBits: 64, OutputBits: 8}}}}},
		{"report-composite.hex", []hid.Collection{
			{Type: 1, UsagePage: 0x01, Usage: 0x06, Reports: []hid.Report{{ID: 1, InputBits: 56}}},
			{Type: 1, UsagePage: 0x0C, Usage: 0x01, Reports: []hid.Report{{ID: 2, InputBits: 16}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := hid.Parse(readHex(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d.Collections, tt.want) {
				t.Errorf("collections:\n got %+v\nwant %+v", d.Collections, tt.want)
			}
		})
	}
}

func TestReportLengths(t *testing.T) {
	r := hid.Report{InputBits: 64, OutputBits: 5, FeatureBits: 0}
	if r.InputLen() != 8 || r.OutputLen() != 1 || r.FeatureLen() != 0 {
		t.Errorf("lengths %d %d %d", r.InputLen(), r.OutputLen(), r.FeatureLen())
	}
}

func TestFindFIDO(t *testing.T) {
	fido := readHex(t, "report-fido.hex")
	tests := []struct {
		name string
		desc []byte
		want error // nil: found
	}{
		{"fido", fido, nil},
		{"extended usage", readHex(t, "report-fido-extended.hex"), nil},
		{"keyboard then fido", append(readHex(t, "report-keyboard.hex"), fido...), nil},
		{"keyboard", readHex(t, "report-keyboard.hex"), hid.ErrNotFIDO},
		{"composite", readHex(t, "report-composite.hex"), hid.ErrNotFIDO},
		{"fido page, other usage", h("06 d0 f1 09 02 a1 01 75 08 95 40 81 02 91 02 c0"), hid.ErrNotFIDO},
		{"fido usage in a logical collection", h("06 d0 f1 09 01 a1 02 75 08 95 40 81 02 91 02 c0"), hid.ErrNotFIDO},
		{"report ID", h("06 d0 f1 09 01 a1 01 85 01 75 08 95 40 81 02 91 02 c0"), device.ErrNotSupported},
		{"32-byte reports", h("06 d0 f1 09 01 a1 01 75 08 95 20 81 02 91 02 c0"), device.ErrNotSupported},
		{"no output report", h("06 d0 f1 09 01 a1 01 75 08 95 40 81 02 c0"), device.ErrNotSupported},
		{"truncated", fido[:len(fido)-2], device.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := hid.FindFIDO(tt.desc)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c.UsagePage != hid.UsagePageFIDO || c.Usage != hid.UsageCTAPHID || c.Reports[0].InputLen() != 64 {
					t.Errorf("collection %+v", c)
				}
				return
			}
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("FindFIDO = %v, %v; want error %v", c, err, tt.want)
			}
		})
	}
	if !errors.Is(hid.ErrNotFIDO, device.ErrNotFound) {
		t.Error("ErrNotFIDO does not wrap device.ErrNotFound")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		desc   string
		offset int
		msg    string
	}{
		{"empty", "", 0, "empty"},
		{"short item cut", "06 d0", 0, "cut short"},
		{"long item header cut", "a1 01 fe 02", 2, "long item header"},
		{"long item data cut", "fe 03 00 01 02", 0, "long item of 3"},
		{"reserved type", "a1 01 0c c0", 2, "reserved type"},
		{"reserved type, tag F", "fd 00", 0, "reserved type"},
		{"end without collection", "c0", 0, "without Collection"},
		{"unclosed", "a1 01 a1 00 c0", 5, "not closed"},
		{"pop without push", "a1 01 b4 c0", 2, "Pop without Push"},
		{"main outside collection", "75 08 95 01 81 02", 4, "outside a collection"},
		{"report ID 0", "a1 01 85 00 c0", 2, "Report ID 0"},
		{"report ID 256", "a1 01 86 00 01 c0", 2, "Report ID 256"},
		{"no ID before ID", "a1 01 75 08 95 01 81 02 85 01 81 02 c0", 6, "before the first Report ID"},
		{"usage page too big", "07 00 00 01 00 a1 01 c0", 0, "usage page"},
		{"unknown main tag", "a1 01 d0 c0", 2, "unknown main"},
		{"unknown global tag", "a1 01 c4 c0", 2, "unknown global"},
		{"end collection with data", "a1 01 c1 00", 2, "End Collection with data"},
		{"collection with 2 bytes", "a2 01 00 c0", 0, "Collection with 2"},
		{"report too long", "a1 01 77 ff ff ff ff 97 ff ff ff ff 81 02 c0", 12, "longer than"},
		{"report too long in sum", "a1 01 76 00 80 95 08 81 02 81 02 c0", 9, "longer than"},
		{"too deep", strings.Repeat("a1 00 ", 33), 64, "deeper than 32"},
		{"push too deep", "a1 01 " + strings.Repeat("a4 ", 33) + "c0", 34, "Push deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := hid.Parse(h(tt.desc))
			var se *hid.SyntaxError
			if !errors.As(err, &se) || d != nil {
				t.Fatalf("Parse = %v, %v; want a *SyntaxError", d, err)
			}
			if !errors.Is(err, device.ErrProtocol) {
				t.Errorf("%v does not wrap device.ErrProtocol", err)
			}
			if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error %q at %d, want %q at %d", se.Msg, se.Offset, tt.msg, tt.offset)
			}
		})
	}
}

func TestParseSkips(t *testing.T) {
	// Unknown local tags, designators, strings, delimiters and long items
	// change nothing.
	plain := h("06 d0 f1 09 01 a1 01 75 08 95 40 81 02 91 02 c0")
	noisy := h("06 d0 f1 39 05 79 02 a9 01 69 00 09 01 a1 01 fe 00 01 75 08 95 40 81 02 a9 00 91 02 c0")
	a, err := hid.Parse(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hid.Parse(noisy)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%+v != %+v", a, b)
	}
}

func TestUsageMinimumNamesCollection(t *testing.T) {
	d, err := hid.Parse(h("06 d0 f1 19 01 29 02 a1 01 c0"))
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Collections[0]; c.UsagePage != 0xF1D0 || c.Usage != 1 || len(c.Reports) != 0 {
		t.Errorf("%+v", c)
	}
}

func TestItems(t *testing.T) {
	b := h("06 d0 f1 15 81 27 ff ff ff ff fe 02 f0 12 34 c0")
	items, err := hid.ParseItems(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []hid.Item{
		{Type: hid.TypeGlobal, Tag: hid.TagUsagePage, Data: []byte{0xd0, 0xf1}},
		{Type: hid.TypeGlobal, Tag: hid.TagLogicalMinimum, Data: []byte{0x81}},
		{Type: hid.TypeGlobal, Tag: hid.TagLogicalMaximum, Data: []byte{0xff, 0xff, 0xff, 0xff}},
		{Type: hid.TypeLong, Tag: 0xf0, Data: []byte{0x12, 0x34}, Long: true},
		{Type: hid.TypeMain, Tag: hid.TagEndCollection},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("items\n got %+v\nwant %+v", items, want)
	}
	if items[0].Uint() != 0xf1d0 || items[1].Int() != -127 || items[2].Int() != -1 || items[2].Uint() != 0xffffffff {
		t.Errorf("values %#x %d %d %#x", items[0].Uint(), items[1].Int(), items[2].Int(), items[2].Uint())
	}
	if v := (hid.Item{Data: []byte{0x00, 0x80}}).Int(); v != -32768 {
		t.Errorf("Int of 2 bytes = %d", v)
	}
	if v := (hid.Item{}).Int(); v != 0 {
		t.Errorf("Int of no bytes = %d", v)
	}
	if v := (hid.Item{Long: true, Data: []byte{1, 2, 3, 4, 5}}).Uint(); v != 0x04030201 {
		t.Errorf("Uint of a long item = %#x", v)
	}
	out, err := hid.EncodeItems(items)
	if err != nil || !bytes.Equal(out, b) {
		t.Errorf("EncodeItems = %x, %v; want %x", out, err, b)
	}
	for _, bad := range []hid.Item{
		{Type: hid.TypeMain, Tag: 1, Data: make([]byte, 3)},
		{Type: hid.TypeMain, Tag: 0x10},
		{Type: hid.TypeLong, Tag: 0},
		{Long: true, Data: make([]byte, 256)},
	} {
		if _, err := hid.EncodeItems([]hid.Item{bad}); !errors.Is(err, device.ErrProtocol) {
			t.Errorf("EncodeItems(%+v) = %v", bad, err)
		}
	}
}

func TestClassDescriptor(t *testing.T) {
	b := readHex(t, "hid-descriptor.hex")
	d, err := hid.ParseClassDescriptor(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &hid.ClassDescriptor{HIDVersion: 0x0111, Entries: []hid.ClassEntry{{Type: hid.DescriptorTypeReport, Length: 34}}}
	if !reflect.DeepEqual(d, want) || d.ReportLength() != 34 {
		t.Errorf("got %+v", d)
	}
	out, err := d.Encode()
	if err != nil || !bytes.Equal(out, b) {
		t.Errorf("Encode = %x, %v", out, err)
	}
	if n := (&hid.ClassDescriptor{Entries: []hid.ClassEntry{{Type: hid.DescriptorTypePhysical, Length: 9}}}).ReportLength(); n != 0 {
		t.Errorf("ReportLength without a report entry = %d", n)
	}
	if _, err := (&hid.ClassDescriptor{}).Encode(); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("Encode without entries: %v", err)
	}
	if _, err := (&hid.ClassDescriptor{Entries: make([]hid.ClassEntry, 84)}).Encode(); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("Encode with 84 entries: %v", err)
	}

	bad := []struct{ name, desc, msg string }{
		{"short", "09 21 11 01 00 01 22 22", "at least 9"},
		{"bLength", "0a 21 11 01 00 01 22 22 00", "bLength 10 in 9"},
		{"type", "09 22 11 01 00 01 22 22 00", "bDescriptorType"},
		{"no entries", "09 21 11 01 00 00 22 22 00", "bNumDescriptors is 0"},
		{"count mismatch", "09 21 11 01 00 02 22 22 00", "does not fit"},
	}
	for _, tt := range bad {
		d, err := hid.ParseClassDescriptor(h(tt.desc))
		var se *hid.SyntaxError
		if !errors.As(err, &se) || d != nil || !strings.Contains(se.Msg, tt.msg) || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%s: ParseClassDescriptor = %v, %v; want %q", tt.name, d, err, tt.msg)
		}
	}
}

func TestFindClassDescriptor(t *testing.T) {
	fido := readHex(t, "config-fido.hex")
	composite := readHex(t, "config-composite.hex")
	tests := []struct {
		name   string
		config []byte
		iface  int
		length int // report descriptor length; 0: error
		off    int
		err    error
	}{
		{"fido", fido, 0, 34, 18, nil},
		{"fido with spare bytes", append(append([]byte(nil), fido...), 0, 0, 0), 0, 34, 18, nil},
		{"composite keyboard", composite, 0, 63, 18, nil},
		{"composite fido", composite, 1, 34, 43, nil},
		{"no interface 2", composite, 2, 0, 0, device.ErrNotFound},
		{"not HID", h("09 02 12 00 01 01 00 80 32 09 04 00 00 02 08 06 50 00"), 0, 0, 0, device.ErrNotFound},
		{"no HID descriptor", h("09 02 19 00 01 01 00 80 32 09 04 00 00 02 03 00 00 00 07 05 81 03 40 00 05"), 0, 0, 0, device.ErrNotFound},
		{"alternate 1 only", h("09 02 1b 00 01 01 00 80 32 09 04 00 01 02 03 00 00 00 09 21 11 01 00 01 22 22 00"), 0, 0, 0, device.ErrNotFound},
		{"truncated", fido[:40], 0, 0, 0, device.ErrProtocol},
		{"not a config", fido[9:], 0, 0, 0, device.ErrProtocol},
		{"zero length", h("09 02 0b 00 01 01 00 80 32 00 04"), 0, 0, 0, device.ErrProtocol},
		{"short interface", h("09 02 10 00 01 01 00 80 32 07 04 00 00 02 03 00"), 0, 0, 0, device.ErrProtocol},
		{"bad HID descriptor", h("09 02 1b 00 01 01 00 80 32 09 04 00 00 02 03 00 00 00 09 21 11 01 00 00 22 22 00"), 0, 0, 0, device.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, off, err := hid.FindClassDescriptor(tt.config, tt.iface)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || d != nil {
					t.Fatalf("FindClassDescriptor = %v, %v; want %v", d, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.ReportLength() != tt.length || off != tt.off {
				t.Errorf("report length %d at %d, want %d at %d", d.ReportLength(), off, tt.length, tt.off)
			}
		})
	}
	_, _, err := hid.FindClassDescriptor(h("09 02 1b 00 01 01 00 80 32 09 04 00 00 02 03 00 00 00 09 21 11 01 00 00 22 22 00"), 0)
	var se *hid.SyntaxError
	if !errors.As(err, &se) || se.Offset != 23 {
		t.Errorf("offset of a bad HID descriptor: %v", err)
	}
}
