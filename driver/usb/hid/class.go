package hid

import (
	"encoding/binary"
	"fmt"

	"github.com/authbench/authbench/device"
)

// Descriptor types (USB 2.0 §9.4 Table 9-5; HID 1.11 §7.1 for the class
// descriptors).
const (
	DescriptorTypeConfig    byte = 0x02
	DescriptorTypeInterface byte = 0x04
	DescriptorTypeHID       byte = 0x21
	DescriptorTypeReport    byte = 0x22
	DescriptorTypePhysical  byte = 0x23
)

// ClassInterfaceHID is bInterfaceClass of a HID interface (HID 1.11 §4.1).
const ClassInterfaceHID byte = 0x03

// DefaultReportDescriptorLen is how many bytes a host asks for when it does
// not know a report descriptor's length: the largest HID descriptor Linux
// reads (HID_MAX_DESCRIPTOR_SIZE).
const DefaultReportDescriptorLen = 4096

// ClassEntry is one class descriptor an HID descriptor announces: its type
// (DescriptorTypeReport for the report descriptor) and length.
type ClassEntry struct {
	Type   byte
	Length uint16
}

// ClassDescriptor is the HID descriptor (HID 1.11 §6.2.1), which follows a
// HID interface's descriptor in the configuration descriptor and tells the
// length of the report descriptor.
type ClassDescriptor struct {
	HIDVersion  uint16       // bcdHID, e.g. 0x0111 for HID 1.11
	CountryCode byte         // bCountryCode, 0 when not localized
	Entries     []ClassEntry // bNumDescriptors entries, at least one
}

func classErr(off int, format string, args ...any) error {
	return &SyntaxError{What: "HID descriptor", Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// ParseClassDescriptor parses one HID descriptor (HID 1.11 §6.2.1): b is the
// whole descriptor, bLength bytes. Encode gives back exactly b.
//
// Errors: a *SyntaxError (device.ErrProtocol) when b is shorter than 9
// bytes, bLength differs from len(b) or from 6 + 3·bNumDescriptors,
// bDescriptorType is not 0x21, or bNumDescriptors is 0.
func ParseClassDescriptor(b []byte) (*ClassDescriptor, error) {
	if len(b) < 9 {
		return nil, classErr(0, "%d bytes, want at least 9", len(b))
	}
	if int(b[0]) != len(b) {
		return nil, classErr(0, "bLength %d in %d bytes", b[0], len(b))
	}
	if b[1] != DescriptorTypeHID {
		return nil, classErr(1, "bDescriptorType %#02x, want 0x21", b[1])
	}
	n := int(b[5])
	if n == 0 {
		return nil, classErr(5, "bNumDescriptors is 0")
	}
	if len(b) != 6+3*n {
		return nil, classErr(0, "bLength %d does not fit bNumDescriptors %d", b[0], n)
	}
	d := &ClassDescriptor{
		HIDVersion:  binary.LittleEndian.Uint16(b[2:]),
		CountryCode: b[4],
		Entries:     make([]ClassEntry, n),
	}
	for i := range d.Entries {
		e := b[6+3*i:]
		d.Entries[i] = ClassEntry{Type: e[0], Length: binary.LittleEndian.Uint16(e[1:])}
	}
	return d, nil
}

// Encode writes the HID descriptor.
//
// Errors: an error wrapping device.ErrProtocol when there are no entries or
// more than 83 (bLength is one byte).
func (d *ClassDescriptor) Encode() ([]byte, error) {
	n := len(d.Entries)
	if n == 0 || 6+3*n > 255 {
		return nil, fmt.Errorf("hid: HID descriptor: %w: %d class descriptor entries", device.ErrProtocol, n)
	}
	b := make([]byte, 6, 6+3*n)
	b[0] = byte(6 + 3*n)
	b[1] = DescriptorTypeHID
	binary.LittleEndian.PutUint16(b[2:], d.HIDVersion)
	b[4] = d.CountryCode
	b[5] = byte(n)
	for _, e := range d.Entries {
		b = append(b, e.Type, byte(e.Length), byte(e.Length>>8))
	}
	return b, nil
}

// ReportLength returns the length of the report descriptor the HID
// descriptor announces, and 0 when it announces none.
func (d *ClassDescriptor) ReportLength() int {
	for _, e := range d.Entries {
		if e.Type == DescriptorTypeReport {
			return int(e.Length)
		}
	}
	return 0
}

func configErr(off int, format string, args ...any) error {
	return &SyntaxError{What: "configuration descriptor", Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// FindClassDescriptor walks a configuration descriptor as GET_DESCRIPTOR
// returns it (USB 2.0 §9.4.3, §9.6.3: the configuration descriptor followed
// by its interface, class and endpoint descriptors, wTotalLength bytes in
// all) and returns the HID descriptor of interface iface, alternate setting
// 0, which must be of class HID (HID 1.11 §7.1: the HID descriptor follows
// the interface descriptor). Bytes after wTotalLength are ignored. It also
// returns the HID descriptor's offset in config.
//
// Errors: a *SyntaxError (device.ErrProtocol) when the first descriptor is
// not a configuration descriptor, wTotalLength is more than len(config), a
// descriptor's bLength is below 2 or runs past wTotalLength, an interface
// descriptor is shorter than 9 bytes, or the HID descriptor is malformed
// (see ParseClassDescriptor); an error wrapping device.ErrNotFound when
// there is no such HID interface or it has no HID descriptor.
func FindClassDescriptor(config []byte, iface int) (*ClassDescriptor, int, error) {
	if len(config) < 9 || config[1] != DescriptorTypeConfig || config[0] < 9 {
		return nil, 0, configErr(0, "not a configuration descriptor")
	}
	total := int(binary.LittleEndian.Uint16(config[2:]))
	if total > len(config) {
		return nil, 0, configErr(2, "wTotalLength %d in %d bytes", total, len(config))
	}
	config = config[:total]
	inTarget, seen := false, false
	for off := 0; off < len(config); {
		n := int(config[off])
		if n < 2 || len(config)-off < n {
			return nil, 0, configErr(off, "descriptor length %d runs past wTotalLength %d", n, total)
		}
		desc := config[off : off+n]
		switch desc[1] {
		case DescriptorTypeInterface:
			if n < 9 {
				return nil, 0, configErr(off, "interface descriptor of %d bytes", n)
			}
			inTarget = int(desc[2]) == iface && desc[3] == 0 && desc[5] == ClassInterfaceHID
			seen = seen || inTarget
		case DescriptorTypeHID:
			if inTarget {
				d, err := ParseClassDescriptor(desc)
				if err != nil {
					if se, ok := err.(*SyntaxError); ok {
						se.Offset += off // report the offset within config
					}
					return nil, 0, err
				}
				return d, off, nil
			}
		}
		off += n
	}
	if !seen {
		return nil, 0, fmt.Errorf("hid: configuration descriptor: %w: no HID interface %d", device.ErrNotFound, iface)
	}
	return nil, 0, fmt.Errorf("hid: configuration descriptor: %w: HID interface %d has no HID descriptor", device.ErrNotFound, iface)
}
