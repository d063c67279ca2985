package usb_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/internal/umockdevtest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/umockdev"
)

// These tests take the driver's real path, gousb → libusb → usbdevfs, to
// simulated chips plugged into an emulated USB bus (sim/umockdev).

// emulatedBus plugs n simulated chips into an emulated bus that this
// process's libusb sees, and returns the chips in bus order.
func emulatedBus(t *testing.T, n int, serve ctaphid.ServeOptions) (*umockdev.Testbed, []*chip.Chip) {
	t.Helper()
	if _, err := usb.List(context.Background()); errors.Is(err, device.ErrNotSupported) {
		t.Skipf("no libusb: %v", err)
	}
	var (
		chips []*chip.Chip
		keys  []umockdev.Key
	)
	for i := range n {
		sc, err := chip.New(chip.Options{Seed: []byte{'k', 'e', 'y', byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sc.Close() })
		chips = append(chips, sc)
		keys = append(keys, umockdev.Key{Chip: sc, Serve: serve, Serial: sc.Serial(), ProductID: 0x0001 + uint16(i)})
	}
	bed := umockdevtest.Start(t, keys...)
	umockdevtest.Use(t, bed.Dir())
	return bed, chips
}

func TestEmulatedList(t *testing.T) {
	_, chips := emulatedBus(t, 2, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	list, err := usb.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []device.Info{
		{Kind: device.KindChip, Transport: "usb", Path: "1-1:1.0", Serial: chips[0].Serial(), Model: "authbench simulated chip", Firmware: "1.00", VendorID: 0x1209, ProductID: 0x0001},
		{Kind: device.KindChip, Transport: "usb", Path: "1-2:1.0", Serial: chips[1].Serial(), Model: "authbench simulated chip", Firmware: "1.00", VendorID: 0x1209, ProductID: 0x0002},
	}
	if !slices.Equal(list, want) {
		t.Fatalf("List =\n%+v\nwant\n%+v", list, want)
	}
	// Each selector opens the key it names, and that key answers.
	for _, tc := range []struct {
		sel  usb.Selector
		want int
	}{
		{usb.Selector{}, 0},
		{usb.Selector{Index: 1}, 1},
		{usb.Selector{Serial: chips[1].Serial()}, 1},
		{usb.Selector{VID: 0x1209, PID: 0x0001}, 0},
		{usb.Selector{Path: "1-2:1.0"}, 1},
	} {
		ch, err := usb.Open(ctx, tc.sel, usb.Options{})
		if err != nil {
			t.Fatalf("Open(%v): %v", tc.sel, err)
		}
		info, err := ch.Info(ctx)
		if err != nil {
			t.Fatalf("Open(%v): getInfo: %v", tc.sel, err)
		}
		aaguid := chips[tc.want].AAGUID()
		if ch.DeviceInfo() != want[tc.want] || !slices.Equal(info.AAGUID, aaguid[:]) {
			t.Errorf("Open(%v) opened %+v (AAGUID %x), want key %d", tc.sel, ch.DeviceInfo(), info.AAGUID, tc.want)
		}
		if err := ch.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if _, err := usb.Open(ctx, usb.Selector{Serial: "no such key"}, usb.Options{}); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Open with an unknown serial = %v, want device.ErrNotFound", err)
	}
}

// TestEmulatedBusy: a key another program has claimed cannot be opened
// (libusb: LIBUSB_ERROR_BUSY), and can once it is released.
func TestEmulatedBusy(t *testing.T) {
	emulatedBus(t, 1, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	first, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := usb.Open(ctx, usb.Selector{}, usb.Options{}); !errors.Is(err, device.ErrBusy) {
		if ch != nil {
			ch.Close()
		}
		t.Fatalf("second Open = %v, want device.ErrBusy", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatalf("Open after the first Chip closed: %v", err)
	}
	if _, err := again.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEmulatedUnplugBetweenCommands unplugs the key while the Chip is idle
// (its IN transfer waits): the next call fails with device.ErrRemoved well
// before its deadline, and the key is no longer listed or found.
func TestEmulatedUnplugBetweenCommands(t *testing.T) {
	bed, _ := emulatedBus(t, 1, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ch, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bed.Unplug(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if _, err := ch.Info(cctx); !errors.Is(err, device.ErrRemoved) || errors.Is(err, device.ErrTimeout) {
		t.Fatalf("getInfo after unplugging = %v, want device.ErrRemoved before the deadline", err)
	}
	if _, err := ch.GetAssertion(cctx, nil); err == nil {
		t.Error("getAssertion after unplugging succeeded")
	}
	if list, err := usb.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List after unplugging = %+v, %v", list, err)
	}
	if _, err := usb.Open(ctx, usb.Selector{}, usb.Options{}); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Open after unplugging = %v, want device.ErrNotFound", err)
	}
}

// TestEmulatedWatch: Watch reports the key when it starts, its departure
// when it is unplugged and its arrival when it is plugged in again, with
// its serial (see TestEmulatedWatchUnopenable for a key that cannot be
// opened at once).
func TestEmulatedWatch(t *testing.T) {
	bed, chips := emulatedBus(t, 1, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	events := make(chan usb.Event, 4)
	done := make(chan error, 1)
	go func() { done <- usb.Watch(ctx, 20*time.Millisecond, func(ev usb.Event) { events <- ev }) }()
	next := func(what string) usb.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-ctx.Done():
			t.Fatalf("no %s seen", what)
			return usb.Event{}
		}
	}
	if ev := next("arrival"); ev.Kind != usb.Arrived || ev.Info.Serial != chips[0].Serial() {
		t.Fatalf("first event %v %+v", ev, ev.Info)
	}
	if err := bed.Unplug(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if ev := next("departure"); ev.Kind != usb.Departed || ev.Info.Path != "1-1:1.0" {
		t.Errorf("second event %v", ev)
	}
	if err := bed.Plug(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ev := next("arrival after plugging in again")
	if ev.Kind == usb.Arrived && ev.Info.Serial == "" {
		// The key could not be opened for usb.HeldPolls lists (a very
		// slow machine): its serial comes in an update.
		t.Logf("arrival without strings: %+v", ev.Info)
		ev = next("update")
		if ev.Kind != usb.Updated {
			t.Errorf("after an arrival without serial, event %v %+v, want an update", ev, ev.Info)
		}
	} else if ev.Kind != usb.Arrived {
		t.Errorf("third event %v %+v, want an arrival", ev, ev.Info)
	}
	if ev.Info.Path != "1-1:1.0" || ev.Info.Serial != chips[0].Serial() {
		t.Errorf("the key plugged in again: %v %+v", ev, ev.Info)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch = %v", err)
	}
}

// TestEmulatedWatchUnopenable: a key replugged into the emulated bus whose
// usbfs node cannot be opened yet (as on Linux before udev gives the user
// access) is listed without its strings. Watch reports its arrival only
// once it can be opened, with its serial; a key it cannot open for
// HeldPolls lists is reported without, and updated when it can be opened.
func TestEmulatedWatchUnopenable(t *testing.T) {
	bed, chips := emulatedBus(t, 1, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	serial := chips[0].Serial()
	var p usb.Poller
	poll := func(step string) []usb.Event {
		t.Helper()
		evs, err := p.Poll(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return evs
	}
	// replug unplugs the key and plugs it in again with its node hidden;
	// the returned function gives the node back.
	replug := func() (show func()) {
		t.Helper()
		if err := bed.Unplug(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if evs := poll("unplugged"); len(evs) != 1 || evs[0].Kind != usb.Departed || evs[0].Info.Serial != serial {
			t.Fatalf("after unplugging: events %v", evs)
		}
		if err := bed.Plug(ctx, 0); err != nil {
			t.Fatal(err)
		}
		// Hidden are the node and umockdev's ioctl sockets for it (its
		// own and the default one): the preload then leaves open() to
		// the real /dev, where it fails. (umockdev 0.17's preload keeps
		// an entry in its table of 50 descriptors for every failed open()
		// that reaches an ioctl socket, and aborts when the table is
		// full; nothing else opens a node while they are hidden.)
		usbfs := bed.Devices()[0].USB
		if _, err := os.Stat(usbfs); err == nil {
			t.Skipf("this machine has a real %s, which libusb would open instead of the hidden emulated key", usbfs)
		}
		hidden := []string{bed.Dir() + usbfs, bed.Dir() + "/ioctl" + usbfs, bed.Dir() + "/ioctl/_default"}
		for _, p := range hidden {
			if err := os.Rename(p, p+".hidden"); err != nil {
				t.Fatal(err)
			}
		}
		shown := false
		show = func() {
			if !shown {
				shown = true
				for _, p := range hidden {
					if err := os.Rename(p+".hidden", p); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		t.Cleanup(show)
		// The race reproduced: the key is listed, without its strings.
		list, err := usb.List(ctx)
		if err != nil || len(list) != 1 || list[0].Path != "1-1:1.0" || list[0].Serial != "" || list[0].Model != "" {
			t.Fatalf("List with the node hidden = %+v, %v; want the key without strings", list, err)
		}
		return show
	}

	if evs := poll("first list"); len(evs) != 1 || evs[0].Kind != usb.Arrived || evs[0].Info.Serial != serial {
		t.Fatalf("first list: events %v", evs)
	}

	show := replug()
	if evs := poll("plugged in, not openable"); len(evs) != 0 {
		t.Errorf("a key that cannot be opened yet: events %v %+v, want none yet", evs, evs)
	}
	show()
	want := usb.Event{Kind: usb.Arrived, Info: device.Info{Kind: device.KindChip, Transport: "usb", Path: "1-1:1.0",
		Serial: serial, Model: "authbench simulated chip", Firmware: "1.00", VendorID: 0x1209, ProductID: 0x0001}}
	if evs := poll("openable"); !slices.Equal(evs, []usb.Event{want}) {
		t.Errorf("once it can be opened: events %+v, want %+v", evs, want)
	}

	show = replug()
	bare := want
	bare.Info.Serial, bare.Info.Model = "", ""
	for i := 1; i < usb.HeldPolls; i++ {
		if evs := poll("held back"); len(evs) != 0 {
			t.Fatalf("list %d of a key that cannot be opened: events %v, want none yet", i, evs)
		}
	}
	if evs := poll("reported as is"); !slices.Equal(evs, []usb.Event{bare}) {
		t.Fatalf("after %d lists: events %+v, want %+v", usb.HeldPolls, evs, bare)
	}
	if evs := poll("still not openable"); len(evs) != 0 {
		t.Errorf("the next list: events %v, want none", evs)
	}
	show()
	want.Kind = usb.Updated
	if evs := poll("openable at last"); !slices.Equal(evs, []usb.Event{want}) {
		t.Errorf("once it can be opened: events %+v, want %+v", evs, want)
	}
	if evs := poll("nothing changed"); len(evs) != 0 {
		t.Errorf("the next list: events %v, want none", evs)
	}
}

// TestEmulatedReplug: a Chip whose key was unplugged stays removed when
// the key comes back (at a new address, as on a real bus); a new Open
// reaches the chip again, which was powered up anew: authenticatorReset,
// refused 10 s after power-up (CTAP 2.1 §6.6), is allowed again.
func TestEmulatedReplug(t *testing.T) {
	if _, err := usb.List(context.Background()); errors.Is(err, device.ErrNotSupported) {
		t.Skipf("no libusb: %v", err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sc, err := chip.New(chip.Options{Seed: []byte("replug"), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	bed := umockdevtest.Start(t, umockdev.Key{Chip: sc, Serial: sc.Serial()})
	umockdevtest.Use(t, bed.Dir())
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()

	old, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	if err := old.Reset(ctx); !errors.Is(err, ctap2.ErrNotAllowed) {
		t.Fatalf("reset 11 s after power-up = %v, want CTAP2_ERR_NOT_ALLOWED", err)
	}
	first := bed.Devices()[0]
	if err := bed.Unplug(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := bed.Plug(ctx, 0); err != nil {
		t.Fatal(err)
	}
	again := bed.Devices()[0]
	if again.Address == first.Address || again.USB == first.USB || again.Path != first.Path || again.Hidraw != first.Hidraw {
		t.Errorf("plugged in again at %+v, first at %+v", again, first)
	}
	if _, err := old.Info(ctx); !errors.Is(err, device.ErrRemoved) {
		t.Errorf("the Chip of the first plug = %v, want device.ErrRemoved", err)
	}
	ch, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Reset(ctx); err != nil {
		t.Errorf("reset right after plugging in = %v", err)
	}
	if err := bed.Plug(ctx, 0); err == nil {
		t.Error("plugging in a key that is plugged in succeeded")
	}
}

// TestEmulatedKernelDriver: as on Linux, the key's HID interface belongs to
// usbhid, which offers it as a hidraw node, until Open detaches the driver
// to claim the interface; Close gives it back. fido2-token (libfido2,
// hidraw) sees the node come and go.
func TestEmulatedKernelDriver(t *testing.T) {
	testenv.LookPath(t, "fido2-tools", "fido2-token", "apt-get install fido2-tools")
	bed, _ := emulatedBus(t, 1, ctaphid.ServeOptions{})
	hidraw := func() string {
		t.Helper()
		cmd := exec.Command("fido2-token", "-L")
		cmd.Env = bed.Environ(os.Environ())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fido2-token -L: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := hidraw(); !strings.HasPrefix(got, "/dev/hidraw0:") {
		t.Fatalf("before Open, fido2-token -L = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ch, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := hidraw(); got != "" {
		t.Errorf("while the key is open through libusb, fido2-token -L = %q", got)
	}
	if _, err := ch.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hidraw(); !strings.HasPrefix(got, "/dev/hidraw0:") {
		t.Errorf("after Close, fido2-token -L = %q", got)
	}
}
