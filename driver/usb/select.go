package usb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/driver/usb/hid"
)

// Selector picks one key from what List finds. Empty fields match every
// key; the zero Selector picks the first key.
type Selector struct {
	VID, PID uint16 // USB vendor and product ID; 0 matches any
	Serial   string // serial number string
	Path     string // Info.Path as List reports it, e.g. "1-2.3:1.0"
	Index    int    // which of the matching keys, counting from 0 in List order
}

// Match reports whether info satisfies every field of s but Index.
func (s Selector) Match(info device.Info) bool {
	return (s.VID == 0 || info.VendorID == s.VID) &&
		(s.PID == 0 || info.ProductID == s.PID) &&
		(s.Serial == "" || info.Serial == s.Serial) &&
		(s.Path == "" || info.Path == s.Path)
}

// String returns s in the form ParseSelector reads.
func (s Selector) String() string {
	var b strings.Builder
	b.WriteString("usb")
	if s.VID != 0 || s.PID != 0 {
		fmt.Fprintf(&b, ":%04x:%04x", s.VID, s.PID)
	}
	if s.Serial != "" {
		b.WriteString(":serial=" + s.Serial)
	}
	if s.Index != 0 {
		fmt.Fprintf(&b, ":index=%d", s.Index)
	}
	if s.Path != "" {
		b.WriteString(":path=" + s.Path) // last: a path has colons
	}
	return b.String()
}

// ParseSelector reads a selector as the command line and the -hw test flag
// spell it: "usb" alone (the first key), optionally followed by
// ":VID:PID" in hex, then any of ":serial=S", ":index=N" and ":path=P"
// (path last, since a path contains colons; a serial number cannot contain
// one). Examples: "usb:1050:0407",
// "usb:096e:0858:index=1", "usb:path=1-2.3:1.0".
//
// Errors: for anything else, an error (wrapping no sentinel) that names the
// part it cannot read.
func ParseSelector(str string) (Selector, error) {
	var s Selector
	rest, ok := strings.CutPrefix(str, "usb")
	if !ok || (rest != "" && rest[0] != ':') {
		return Selector{}, fmt.Errorf("usb: selector %q does not start with \"usb\"", str)
	}
	if rest == "" {
		return s, nil
	}
	rest = rest[1:]
	if v, p, ok := vidpid(rest); ok {
		s.VID, s.PID = v, p
		rest = rest[9:]
		if rest == "" {
			return s, nil
		}
		if rest[0] != ':' || len(rest) == 1 {
			return Selector{}, fmt.Errorf("usb: selector %q: bad vendor:product", str)
		}
		rest = rest[1:]
	}
	for rest != "" {
		if p, ok := strings.CutPrefix(rest, "path="); ok {
			if p == "" {
				return Selector{}, fmt.Errorf("usb: selector %q: empty path", str)
			}
			s.Path = p
			break
		}
		field, next, _ := strings.Cut(rest, ":")
		key, val, ok := strings.Cut(field, "=")
		switch {
		case ok && key == "serial" && val != "":
			s.Serial = val
		case ok && key == "index":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return Selector{}, fmt.Errorf("usb: selector %q: bad index %q", str, val)
			}
			s.Index = n
		default:
			return Selector{}, fmt.Errorf("usb: selector %q: unknown field %q (want VID:PID, serial=, index= or path=)", str, field)
		}
		rest = next
	}
	return s, nil
}

// vidpid reads "VVVV:PPPP" (hex) at the start of s.
func vidpid(s string) (vid, pid uint16, ok bool) {
	if len(s) < 9 || s[4] != ':' {
		return 0, 0, false
	}
	v, err1 := strconv.ParseUint(s[:4], 16, 16)
	p, err2 := strconv.ParseUint(s[5:9], 16, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint16(v), uint16(p), true
}

// pick returns the key s selects from list, which is in List order.
func (s Selector) pick(list []device.Info) (int, error) {
	n := 0
	for i, info := range list {
		if !s.Match(info) {
			continue
		}
		if n == s.Index {
			return i, nil
		}
		n++
	}
	if n == 0 {
		return -1, fmt.Errorf("usb: %w: no FIDO key matches %s (%d key(s) found)", device.ErrNotFound, s, len(list))
	}
	return -1, fmt.Errorf("usb: %w: %s: only %d key(s) match", device.ErrNotFound, s, n)
}

// sysfsPath names an interface as Linux sysfs does:
// BUS-PORT[.PORT...]:CONFIG.INTERFACE.
func sysfsPath(bus int, ports []int, config, iface int) string {
	p := make([]string, len(ports))
	for i, n := range ports {
		p[i] = strconv.Itoa(n)
	}
	return fmt.Sprintf("%d-%s:%d.%d", bus, strings.Join(p, "."), config, iface)
}

// endpointDesc is what the enumeration looks at in an endpoint descriptor
// (USB 2.0 §9.6.6).
type endpointDesc struct {
	Address   byte // bEndpointAddress: bit 7 set for IN
	Interrupt bool // bmAttributes transfer type is interrupt
	MaxPacket int  // wMaxPacketSize
}

// interfaceDesc is what the enumeration looks at in an interface
// descriptor (USB 2.0 §9.6.5).
type interfaceDesc struct {
	Number, Alternate         int
	Class, SubClass, Protocol byte
	Endpoints                 []endpointDesc
}

// ctaphidEndpoints says whether an interface has the shape of a CTAPHID
// interface (CTAP 2.1 §11.2.8.1): alternate setting 0 of HID class without
// a boot subclass or protocol, with an interrupt IN and an interrupt OUT
// endpoint of ReportSize bytes. It returns their endpoint numbers.
func ctaphidEndpoints(d interfaceDesc) (in, out int, ok bool) {
	if d.Alternate != 0 || d.Class != hid.ClassInterfaceHID || d.SubClass != 0 || d.Protocol != 0 {
		return 0, 0, false
	}
	in, out = -1, -1
	for _, e := range d.Endpoints {
		if !e.Interrupt || e.MaxPacket != ReportSize {
			continue
		}
		n := int(e.Address & 0x0F)
		if e.Address&0x80 != 0 {
			if in < 0 {
				in = n
			}
		} else if out < 0 {
			out = n
		}
	}
	if in < 0 || out < 0 {
		return 0, 0, false
	}
	return in, out, true
}
