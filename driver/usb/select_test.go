package usb

import (
	"errors"
	"testing"

	"github.com/authbench/authbench/device"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in   string
		want Selector
		str  string // String of the result; "" means in
	}{
		{"usb", Selector{}, ""},
		{"usb:", Selector{}, "usb"},
		{"usb:1050:0407", Selector{VID: 0x1050, PID: 0x0407}, ""},
		{"usb:096E:0858", Selector{VID: 0x096e, PID: 0x0858}, "usb:096e:0858"},
		{"usb:096e:0858:index=1", Selector{VID: 0x096e, PID: 0x0858, Index: 1}, ""},
		{"usb:1050:0407:serial=123:index=2", Selector{VID: 0x1050, PID: 0x0407, Serial: "123", Index: 2}, ""},
		{"usb:serial=AB-12", Selector{Serial: "AB-12"}, ""},
		{"usb:path=1-2.3:1.0", Selector{Path: "1-2.3:1.0"}, ""},
		{"usb:1050:0407:path=1-2:1.1", Selector{VID: 0x1050, PID: 0x0407, Path: "1-2:1.1"}, ""},
		{"usb:index=3:path=2-1:1.0", Selector{Path: "2-1:1.0", Index: 3}, ""},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSelector(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		want := tt.str
		if want == "" {
			want = tt.in
		}
		if got.String() != want {
			t.Errorf("String of %q = %q, want %q", tt.in, got.String(), want)
		}
		if again, err := ParseSelector(got.String()); err != nil || again != got {
			t.Errorf("ParseSelector(%q) = %+v, %v; no round trip", got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "pcsc:reader", "usbx", "usb:1050", "usb:1050:04", "usb:10500407",
		"usb:1050:0407x", "usb:index=-1", "usb:index=x", "usb:serial=", "usb:path=", "usb:color=red", "usb:1050:0407:"} {
		if s, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestSelectorPick(t *testing.T) {
	list := []device.Info{
		{Path: "1-1:1.0", VendorID: 0x1050, ProductID: 0x0407, Serial: "A"},
		{Path: "1-2:1.1", VendorID: 0x096e, ProductID: 0x0858, Serial: "B"},
		{Path: "2-1.4:1.0", VendorID: 0x1050, ProductID: 0x0407, Serial: "C"},
	}
	tests := []struct {
		sel  Selector
		want int // -1: not found
	}{
		{Selector{}, 0},
		{Selector{Index: 2}, 2},
		{Selector{Index: 3}, -1},
		{Selector{VID: 0x1050}, 0},
		{Selector{VID: 0x1050, Index: 1}, 2},
		{Selector{VID: 0x1050, PID: 0x0407, Index: 2}, -1},
		{Selector{PID: 0x0858}, 1},
		{Selector{Serial: "C"}, 2},
		{Selector{Path: "1-2:1.1"}, 1},
		{Selector{Path: "1-2:1.1", VID: 0x1050}, -1},
		{Selector{VID: 0x20a0}, -1},
	}
	for _, tt := range tests {
		got, err := tt.sel.pick(list)
		if tt.want < 0 {
			if !errors.Is(err, device.ErrNotFound) {
				t.Errorf("pick(%s) = %d, %v; want device.ErrNotFound", tt.sel, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("pick(%s) = %d, %v; want %d", tt.sel, got, err, tt.want)
		}
	}
	if _, err := (Selector{}).pick(nil); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("pick from nothing = %v", err)
	}
}

func TestCTAPHIDEndpoints(t *testing.T) {
	in64 := endpointDesc{Address: 0x81, Interrupt: true, MaxPacket: 64}
	out64 := endpointDesc{Address: 0x02, Interrupt: true, MaxPacket: 64}
	fido := interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{in64, out64}}
	tests := []struct {
		name    string
		d       interfaceDesc
		in, out int
		ok      bool
	}{
		{"fido", fido, 1, 2, true},
		{"out first", interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{out64, in64}}, 1, 2, true},
		{"alternate 1", interfaceDesc{Alternate: 1, Class: 0x03, Endpoints: fido.Endpoints}, 0, 0, false},
		{"not HID", interfaceDesc{Class: 0x0B, Endpoints: fido.Endpoints}, 0, 0, false},
		{"boot keyboard", interfaceDesc{Class: 0x03, SubClass: 1, Protocol: 1, Endpoints: fido.Endpoints}, 0, 0, false},
		{"protocol set", interfaceDesc{Class: 0x03, Protocol: 2, Endpoints: fido.Endpoints}, 0, 0, false},
		{"no OUT", interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{in64}}, 0, 0, false},
		{"no IN", interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{out64}}, 0, 0, false},
		{"bulk", interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{{Address: 0x81, MaxPacket: 64}, out64}}, 0, 0, false},
		{"8-byte IN", interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{{Address: 0x81, Interrupt: true, MaxPacket: 8}, out64}}, 0, 0, false},
		{"two INs", interfaceDesc{Class: 0x03, Endpoints: []endpointDesc{in64, {Address: 0x83, Interrupt: true, MaxPacket: 64}, out64}}, 1, 2, true},
	}
	for _, tt := range tests {
		in, out, ok := ctaphidEndpoints(tt.d)
		if in != tt.in || out != tt.out || ok != tt.ok {
			t.Errorf("%s: ctaphidEndpoints = %d, %d, %v; want %d, %d, %v", tt.name, in, out, ok, tt.in, tt.out, tt.ok)
		}
	}
}

func TestSysfsPath(t *testing.T) {
	tests := []struct {
		bus           int
		ports         []int
		config, iface int
		want          string
	}{
		{1, []int{2}, 1, 0, "1-2:1.0"},
		{3, []int{1, 4, 2}, 1, 1, "3-1.4.2:1.1"},
	}
	for _, tt := range tests {
		if got := sysfsPath(tt.bus, tt.ports, tt.config, tt.iface); got != tt.want {
			t.Errorf("sysfsPath(%d, %v, %d, %d) = %q, want %q", tt.bus, tt.ports, tt.config, tt.iface, got, tt.want)
		}
	}
}

func TestSelectorMatch(t *testing.T) {
	info := device.Info{Path: "1-1:1.0", VendorID: 1, ProductID: 2, Serial: "S"}
	for _, s := range []Selector{{}, {VID: 1}, {PID: 2}, {Serial: "S"}, {Path: "1-1:1.0"}, {VID: 1, PID: 2, Serial: "S", Path: "1-1:1.0", Index: 5}} {
		if !s.Match(info) {
			t.Errorf("%+v does not match %+v", s, info)
		}
	}
	for _, s := range []Selector{{VID: 2}, {PID: 1}, {Serial: "T"}, {Path: "1-1:1.1"}} {
		if s.Match(info) {
			t.Errorf("%+v matches %+v", s, info)
		}
	}
}
