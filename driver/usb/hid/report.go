package hid

import (
	"fmt"

	"github.com/authbench/authbench/device"
)

// ItemType is the bType field of an item prefix (HID 1.11 §6.2.2.2).
type ItemType byte

// Item types. Type 3 is reserved for short items; the long item prefix 0xFE
// uses it (§6.2.2.3).
const (
	TypeMain   ItemType = 0
	TypeGlobal ItemType = 1
	TypeLocal  ItemType = 2
	TypeLong   ItemType = 3
)

// Main item tags (HID 1.11 §6.2.2.4).
const (
	TagInput         byte = 0x8
	TagOutput        byte = 0x9
	TagCollection    byte = 0xA
	TagFeature       byte = 0xB
	TagEndCollection byte = 0xC
)

// Global item tags (HID 1.11 §6.2.2.7).
const (
	TagUsagePage       byte = 0x0
	TagLogicalMinimum  byte = 0x1
	TagLogicalMaximum  byte = 0x2
	TagPhysicalMinimum byte = 0x3
	TagPhysicalMaximum byte = 0x4
	TagUnitExponent    byte = 0x5
	TagUnit            byte = 0x6
	TagReportSize      byte = 0x7
	TagReportID        byte = 0x8
	TagReportCount     byte = 0x9
	TagPush            byte = 0xA
	TagPop             byte = 0xB
)

// Local item tags that Parse interprets (HID 1.11 §6.2.2.8); the others
// (designators, strings, delimiters and reserved tags) are skipped.
const (
	TagUsage        byte = 0x0
	TagUsageMinimum byte = 0x1
	TagUsageMaximum byte = 0x2
)

// CollectionApplication is the collection type of a top-level application
// collection (HID 1.11 §6.2.2.6).
const CollectionApplication byte = 0x01

// longPrefix is the prefix byte of every long item (HID 1.11 §6.2.2.3).
const longPrefix = 0xFE

// Limits that keep a hostile descriptor from costing much.
const (
	// MaxReportLen is the longest report, in bytes, Parse accepts.
	MaxReportLen  = 65535
	maxReportBits = MaxReportLen * 8
	maxDepth      = 32 // nested collections, and Push depth
)

// Item is one item of a report descriptor (HID 1.11 §6.2.2.1).
type Item struct {
	Type ItemType
	// Tag is the 4-bit bTag of a short item, or bLongItemTag of a long item.
	Tag byte
	// Data holds the item's data, little-endian: 0, 1, 2 or 4 bytes for a
	// short item, up to 255 bytes for a long item.
	Data []byte
	// Long marks a long item (§6.2.2.3): prefix 0xFE, bDataSize,
	// bLongItemTag, data. No long item tags are defined; Parse skips them.
	Long bool
}

// Uint returns the item's data as a little-endian unsigned number (the first
// four bytes of a long item's data).
func (it Item) Uint() uint32 {
	var v uint32
	for i, b := range it.Data {
		if i == 4 {
			break
		}
		v |= uint32(b) << (8 * i)
	}
	return v
}

// Int returns the item's data as a little-endian two's-complement number,
// sign-extended from its size (HID 1.11 §6.2.2.7: Logical Minimum and the
// like are signed).
func (it Item) Int() int32 {
	switch n := len(it.Data); {
	case n == 0:
		return 0
	case n == 1:
		return int32(int8(it.Data[0]))
	case n == 2:
		return int32(int16(it.Uint()))
	default:
		return int32(it.Uint())
	}
}

// SyntaxError reports a malformed descriptor: what is wrong and the byte
// offset of the item (or descriptor) at fault. It unwraps to
// device.ErrProtocol.
type SyntaxError struct {
	What   string // "report descriptor", "HID descriptor", "configuration descriptor"
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("hid: %s: offset %d: %s", e.What, e.Offset, e.Msg)
}

// Unwrap returns device.ErrProtocol.
func (e *SyntaxError) Unwrap() error { return device.ErrProtocol }

func reportErr(off int, format string, args ...any) error {
	return &SyntaxError{What: "report descriptor", Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// shortSizes maps bSize to the number of data bytes (HID 1.11 §6.2.2.2).
var shortSizes = [4]int{0, 1, 2, 4}

// ParseItems splits a report descriptor into its items (HID 1.11 §6.2.2.2
// short items and §6.2.2.3 long items) without interpreting them. The items
// own copies of their data. EncodeItems gives back exactly b.
//
// Errors: a *SyntaxError (device.ErrProtocol) for an item cut short by the
// end of b and for a short item of the reserved type 3.
func ParseItems(b []byte) ([]Item, error) {
	items := []Item{}
	for off := 0; off < len(b); {
		p := b[off]
		if p == longPrefix {
			if len(b)-off < 3 {
				return nil, reportErr(off, "long item header cut short")
			}
			n := int(b[off+1])
			if len(b)-off-3 < n {
				return nil, reportErr(off, "long item of %d data bytes cut short", n)
			}
			items = append(items, Item{Type: TypeLong, Tag: b[off+2], Data: clone(b[off+3 : off+3+n]), Long: true})
			off += 3 + n
			continue
		}
		typ := ItemType(p >> 2 & 3)
		if typ == TypeLong {
			return nil, reportErr(off, "short item of reserved type 3 (prefix %#02x)", p)
		}
		n := shortSizes[p&3]
		if len(b)-off-1 < n {
			return nil, reportErr(off, "item with %d data bytes cut short", n)
		}
		items = append(items, Item{Type: typ, Tag: p >> 4, Data: clone(b[off+1 : off+1+n])})
		off += 1 + n
	}
	return items, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// EncodeItems writes items as a report descriptor, the inverse of
// ParseItems.
//
// Errors: an error wrapping device.ErrProtocol for an item that cannot be
// written: a short item whose data is not 0, 1, 2 or 4 bytes, whose tag is
// above 0xF or whose type is 3, or a long item with more than 255 data
// bytes.
func EncodeItems(items []Item) ([]byte, error) {
	var out []byte
	for i, it := range items {
		if it.Long {
			if len(it.Data) > 255 {
				return nil, fmt.Errorf("hid: item %d: %w: long item of %d data bytes", i, device.ErrProtocol, len(it.Data))
			}
			out = append(out, longPrefix, byte(len(it.Data)), it.Tag)
			out = append(out, it.Data...)
			continue
		}
		var size byte
		switch len(it.Data) {
		case 0, 1, 2:
			size = byte(len(it.Data))
		case 4:
			size = 3
		default:
			return nil, fmt.Errorf("hid: item %d: %w: short item of %d data bytes", i, device.ErrProtocol, len(it.Data))
		}
		if it.Tag > 0xF || it.Type >= TypeLong {
			return nil, fmt.Errorf("hid: item %d: %w: tag %#x type %d", i, device.ErrProtocol, it.Tag, it.Type)
		}
		out = append(out, it.Tag<<4|byte(it.Type)<<2|size)
		out = append(out, it.Data...)
	}
	return out, nil
}

// Descriptor is what a report descriptor declares, as far as a host needs it
// to pick an interface: its top-level collections and their reports.
type Descriptor struct {
	Collections []Collection
}

// Collection is one top-level collection (HID 1.11 §6.2.2.6) with the
// reports its main items make up. Nested collections count towards their
// top-level collection.
type Collection struct {
	Type      byte   // collection type; CollectionApplication for devices
	UsagePage uint16 // usage page of the collection's usage
	Usage     uint16 // usage ID of the collection's usage (0 when none)
	Reports   []Report
}

// Report is the size of one report of a collection, by direction (HID 1.11
// §5.6 and §6.2.2.7: Report Size times Report Count per main item).
type Report struct {
	ID          byte // Report ID; 0 when the descriptor declares none
	InputBits   int
	OutputBits  int
	FeatureBits int
}

// InputLen returns the input report's length in bytes, without the report
// ID byte.
func (r Report) InputLen() int { return (r.InputBits + 7) / 8 }

// OutputLen returns the output report's length in bytes, without the report
// ID byte.
func (r Report) OutputLen() int { return (r.OutputBits + 7) / 8 }

// FeatureLen returns the feature report's length in bytes, without the
// report ID byte.
func (r Report) FeatureLen() int { return (r.FeatureBits + 7) / 8 }

// globals is the global item state (HID 1.11 §6.2.2.7), saved by Push.
type globals struct {
	usagePage   uint16
	reportSize  uint64
	reportCount uint64
	reportID    byte
}

// Parse reads a report descriptor (HID 1.11 §6.2.2) and returns its
// top-level collections with the usage of each and the length of each of
// their reports. Long items, designator and string items, delimiters and
// reserved local tags are skipped, as a host parser does.
//
// Errors: a *SyntaxError (device.ErrProtocol) when b is empty, when an item
// is cut short or has the reserved type, for an unknown main or global tag,
// an End Collection without its Collection or a Collection left open, a Pop
// without Push, nesting deeper than 32, a main item outside any collection,
// a Report ID of 0 or above 255, a main item before the first Report ID of
// a descriptor that uses them, a usage page above 0xFFFF, and a report
// longer than MaxReportLen bytes.
func Parse(b []byte) (*Descriptor, error) {
	if len(b) == 0 {
		return nil, reportErr(0, "empty")
	}
	items, err := ParseItems(b)
	if err != nil {
		return nil, err
	}
	var (
		g       globals
		stack   []globals
		usages  []uint32 // local Usage items, extended to page<<16 | id
		usageMn *uint32  // local Usage Minimum, extended
		depth   int
		cols    []Collection
		usesIDs bool
		noIDOff = -1 // offset of the first main item that made a report without an ID
	)
	off := 0
	for _, it := range items {
		at := off
		off += itemLen(it)
		if it.Long {
			continue
		}
		switch it.Type {
		case TypeMain:
			switch it.Tag {
			case TagCollection:
				if len(it.Data) > 1 {
					return nil, reportErr(at, "Collection with %d data bytes", len(it.Data))
				}
				if depth == maxDepth {
					return nil, reportErr(at, "collections nested deeper than %d", maxDepth)
				}
				if depth == 0 {
					c := Collection{Type: byte(it.Uint())}
					var u uint32
					switch {
					case len(usages) > 0:
						u = usages[0]
					case usageMn != nil:
						u = *usageMn
					}
					c.UsagePage, c.Usage = uint16(u>>16), uint16(u)
					cols = append(cols, c)
				}
				depth++
			case TagEndCollection:
				if len(it.Data) != 0 {
					return nil, reportErr(at, "End Collection with data")
				}
				if depth == 0 {
					return nil, reportErr(at, "End Collection without Collection")
				}
				depth--
			case TagInput, TagOutput, TagFeature:
				if depth == 0 {
					return nil, reportErr(at, "main item outside a collection")
				}
				bits := g.reportSize * g.reportCount
				if bits > maxReportBits {
					return nil, reportErr(at, "report longer than %d bytes", MaxReportLen)
				}
				c := &cols[len(cols)-1]
				r := report(c, g.reportID)
				var sum *int
				switch it.Tag {
				case TagInput:
					sum = &r.InputBits
				case TagOutput:
					sum = &r.OutputBits
				default:
					sum = &r.FeatureBits
				}
				if uint64(*sum)+bits > maxReportBits {
					return nil, reportErr(at, "report longer than %d bytes", MaxReportLen)
				}
				*sum += int(bits)
				if g.reportID == 0 && bits > 0 && noIDOff < 0 {
					noIDOff = at
				}
			default:
				return nil, reportErr(at, "unknown main item tag %#x", it.Tag)
			}
			usages, usageMn = usages[:0], nil // main items end the local state (§6.2.2.8)
		case TypeGlobal:
			v := it.Uint()
			switch it.Tag {
			case TagUsagePage:
				if v > 0xFFFF {
					return nil, reportErr(at, "usage page %#x above 0xFFFF", v)
				}
				g.usagePage = uint16(v)
			case TagReportSize:
				g.reportSize = uint64(v)
			case TagReportCount:
				g.reportCount = uint64(v)
			case TagReportID:
				if v == 0 || v > 0xFF {
					return nil, reportErr(at, "Report ID %d (must be 1 to 255)", v)
				}
				g.reportID = byte(v)
				usesIDs = true
			case TagPush:
				if len(stack) == maxDepth {
					return nil, reportErr(at, "Push deeper than %d", maxDepth)
				}
				stack = append(stack, g)
			case TagPop:
				if len(stack) == 0 {
					return nil, reportErr(at, "Pop without Push")
				}
				g = stack[len(stack)-1]
				stack = stack[:len(stack)-1]
			case TagLogicalMinimum, TagLogicalMaximum, TagPhysicalMinimum, TagPhysicalMaximum, TagUnitExponent, TagUnit:
				// Value ranges and units do not change report sizes.
			default:
				return nil, reportErr(at, "unknown global item tag %#x", it.Tag)
			}
		case TypeLocal:
			u := extend(it, g.usagePage)
			switch it.Tag {
			case TagUsage:
				usages = append(usages, u)
			case TagUsageMinimum:
				usageMn = &u
			}
		}
	}
	if depth != 0 {
		return nil, reportErr(len(b), "%d collection(s) not closed", depth)
	}
	if usesIDs && noIDOff >= 0 {
		return nil, reportErr(noIDOff, "main item before the first Report ID")
	}
	return &Descriptor{Collections: cols}, nil
}

// extend returns a Usage, Usage Minimum or Usage Maximum item as an extended
// usage, page<<16 | id: a 4-byte item carries its own page (§6.2.2.8),
// shorter ones use the current usage page.
func extend(it Item, page uint16) uint32 {
	if len(it.Data) == 4 {
		return it.Uint()
	}
	return uint32(page)<<16 | it.Uint()&0xFFFF
}

func itemLen(it Item) int {
	if it.Long {
		return 3 + len(it.Data)
	}
	return 1 + len(it.Data)
}

// report returns the collection's report with the given ID, adding it.
func report(c *Collection, id byte) *Report {
	for i := range c.Reports {
		if c.Reports[i].ID == id {
			return &c.Reports[i]
		}
	}
	c.Reports = append(c.Reports, Report{ID: id})
	return &c.Reports[len(c.Reports)-1]
}

// The CTAPHID collection (CTAP 2.1 §11.2.8.2; HID Usage Tables, FIDO
// Alliance page, HUTRR48).
const (
	UsagePageFIDO     uint16 = 0xF1D0 // FIDO Alliance usage page
	UsageCTAPHID      uint16 = 0x01   // U2F / CTAP authenticator device
	UsageFIDODataIn   uint16 = 0x20   // input report data
	UsageFIDODataOut  uint16 = 0x21   // output report data
	FIDOReportLen            = 64     // report length driver/usb supports
	fidoUsageExtended        = uint32(UsagePageFIDO)<<16 | uint32(UsageCTAPHID)
)

// ErrNotFIDO says that a report descriptor declares no CTAPHID collection:
// the interface is some other HID device. It wraps device.ErrNotFound.
var ErrNotFIDO = fmt.Errorf("hid: no CTAPHID collection (usage page 0xF1D0, usage 0x01): %w", device.ErrNotFound)

// FindFIDO parses a report descriptor and returns its CTAPHID collection:
// the top-level application collection with usage page 0xF1D0 and usage
// 0x01 (CTAP 2.1 §11.2.8.2). It checks that the collection has input and
// output reports of FIDOReportLen (64) bytes without a report ID, which is
// what CTAPHID over libusb interrupt transfers needs.
//
// Errors: those of Parse; an error wrapping ErrNotFIDO (and so
// device.ErrNotFound) when there is no such collection; an error wrapping
// device.ErrNotSupported when the collection uses report IDs or other
// report lengths.
func FindFIDO(b []byte) (*Collection, error) {
	d, err := Parse(b)
	if err != nil {
		return nil, err
	}
	for i := range d.Collections {
		c := &d.Collections[i]
		if c.Type != CollectionApplication || uint32(c.UsagePage)<<16|uint32(c.Usage) != fidoUsageExtended {
			continue
		}
		if len(c.Reports) != 1 || c.Reports[0].ID != 0 {
			return nil, fmt.Errorf("hid: CTAPHID collection: %w: it uses report IDs", device.ErrNotSupported)
		}
		r := c.Reports[0]
		if r.InputBits != FIDOReportLen*8 || r.OutputBits != FIDOReportLen*8 {
			return nil, fmt.Errorf("hid: CTAPHID collection: %w: input report of %d bits and output report of %d bits, want %d bytes each",
				device.ErrNotSupported, r.InputBits, r.OutputBits, FIDOReportLen)
		}
		return c, nil
	}
	return nil, ErrNotFIDO
}
