package hid_test

import (
	"bytes"
	"testing"

	"github.com/authbench/authbench/driver/usb/hid"
)

// FuzzParseItems: no panic, and items re-encode to exactly the input.
func FuzzParseItems(f *testing.F) {
	for _, s := range seeds(f, "report-*.hex") {
		f.Add(s)
	}
	f.Add([]byte{0xfe, 0x00, 0x00})
	f.Add([]byte{0x27, 0x01, 0x02, 0x03, 0x04})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := hid.ParseItems(b)
		if err != nil {
			if items != nil {
				t.Fatal("items with an error")
			}
			return
		}
		out, err := hid.EncodeItems(items)
		if err != nil {
			t.Fatalf("EncodeItems: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x", b, out)
		}
	})
}

// FuzzParse: no panic; a descriptor Parse accepts has items that round
// trip, sizes within the limits, and FindFIDO agrees with Parse.
func FuzzParse(f *testing.F) {
	for _, s := range seeds(f, "report-*.hex") {
		f.Add(s)
	}
	f.Add([]byte{0xa1, 0x01, 0xa4, 0xb4, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := hid.Parse(b)
		if err != nil {
			if d != nil {
				t.Fatal("descriptor with an error")
			}
			return
		}
		items, err := hid.ParseItems(b)
		if err != nil {
			t.Fatalf("Parse accepted what ParseItems refuses: %v", err)
		}
		if out, err := hid.EncodeItems(items); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x, %v", b, out, err)
		}
		for _, c := range d.Collections {
			for _, r := range c.Reports {
				if r.InputLen() > hid.MaxReportLen || r.OutputLen() > hid.MaxReportLen || r.FeatureLen() > hid.MaxReportLen {
					t.Fatalf("report %+v too long", r)
				}
			}
		}
		c, err := hid.FindFIDO(b)
		if err == nil && (c.UsagePage != hid.UsagePageFIDO || c.Reports[0].OutputLen() != hid.FIDOReportLen) {
			t.Fatalf("FindFIDO found %+v", c)
		}
	})
}

// FuzzClassDescriptor: no panic, and a parsed HID descriptor re-encodes to
// exactly the input.
func FuzzClassDescriptor(f *testing.F) {
	for _, s := range seeds(f, "hid-descriptor.hex") {
		f.Add(s)
	}
	f.Add([]byte{0x0c, 0x21, 0x11, 0x01, 0x00, 0x02, 0x22, 0x22, 0x00, 0x23, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := hid.ParseClassDescriptor(b)
		if err != nil {
			if d != nil {
				t.Fatal("descriptor with an error")
			}
			return
		}
		out, err := d.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x, %v", b, out, err)
		}
	})
}

// FuzzFindClassDescriptor: no panic, and the HID descriptor found
// re-encodes to the bytes at the offset it was found at.
func FuzzFindClassDescriptor(f *testing.F) {
	for _, s := range seeds(f, "config-*.hex") {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, iface uint8) {
		d, off, err := hid.FindClassDescriptor(b, int(iface))
		if err != nil {
			if d != nil {
				t.Fatal("descriptor with an error")
			}
			return
		}
		out, err := d.Encode()
		if err != nil || off+len(out) > len(b) || !bytes.Equal(out, b[off:off+len(out)]) {
			t.Fatalf("descriptor at %d re-encodes to %x, %v", off, out, err)
		}
	})
}
