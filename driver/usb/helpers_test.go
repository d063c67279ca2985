package usb_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/internal/umockdevtest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/udphid"
	"github.com/authbench/authbench/sim/umockdev"
)

// hw selects a real key for the opt-in hardware run, e.g.
// -hw=usb:1050:0407 (see usb.ParseSelector).
var hw = flag.String("hw", "", "run the chip checks against a real key: usb[:VID:PID][:serial=S][:index=N][:path=P]")

// guard is the failure guard for anything a test waits for; it is never
// reached when the code works.
const guard = 10 * time.Second

func TestMain(m *testing.M) {
	umockdevtest.Preload()
	os.Exit(m.Run())
}

// sim is a simulated chip served by ctaphid.Serve on the device end of a
// report transport, and a usb.Chip on the host end.
type sim struct {
	chip   *usb.Chip
	sc     *chip.Chip
	unplug func()            // takes the chip away: closes the device end, or pulls the emulated key
	stop   func()            // closes everything, once; also run by Cleanup
	bus    *umockdev.Testbed // the emulated bus, if the chip is on one
}

// transport is one way to carry reports between the host and the simulated
// chip: open returns the two ends and a function that closes both. The
// emulated USB bus has no open: the chip is served by a umockdev testbed
// and found by usb.Open through libusb.
type transport struct {
	name string
	open func(tb testing.TB) (host, dev readWriteDeadliner, closeAll func())
}

type readWriteDeadliner interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error
	SetReadDeadline(time.Time) error
}

var transports = []transport{
	{"pipe", func(tb testing.TB) (readWriteDeadliner, readWriteDeadliner, func()) {
		dev, host := ctaphid.NewPipe()
		return host, dev, func() { host.Close(); dev.Close() }
	}},
	{"udphid", openUDP},
	{"usb", nil},
}

// openUDP makes a UDP HID link on 127.0.0.1 with free ports.
func openUDP(tb testing.TB) (readWriteDeadliner, readWriteDeadliner, func()) {
	tb.Helper()
	dev, err := udphid.Listen("127.0.0.1:0", "")
	if err != nil {
		tb.Fatal(err)
	}
	host, err := udphid.Dial(dev.LocalAddr().String(), "127.0.0.1:0")
	if err != nil {
		dev.Close()
		tb.Fatal(err)
	}
	return host, dev, func() { host.Close(); dev.Close() }
}

// startSim serves a simulated chip over tr and opens a usb.Chip on it.
// Cleanup closes everything and fails the test if the simulated chip was
// left with requests waiting or Serve did not stop.
func startSim(tb testing.TB, tr transport, copts chip.Options, opts usb.Options) *sim {
	tb.Helper()
	if copts.Seed == nil {
		copts.Seed = []byte("driver/usb test chip")
	}
	sc, err := chip.New(copts)
	if err != nil {
		tb.Fatal(err)
	}
	if tr.open == nil {
		return startEmulated(tb, sc, ctaphid.ServeOptions{}, opts)
	}
	host, dev, closeAll := tr.open(tb)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctaphid.Serve(ctx, dev, sc, ctaphid.ServeOptions{}) }()

	octx, ocancel := context.WithTimeout(context.Background(), guard)
	defer ocancel()
	ch, err := usb.NewChip(octx, host, device.Info{Transport: tr.name, Path: tr.name}, opts)
	if err != nil {
		cancel()
		closeAll()
		<-served
		tb.Fatal(err)
	}
	s := &sim{chip: ch, sc: sc, unplug: func() { dev.Close() }}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			if err := ch.Close(); err != nil {
				tb.Errorf("Chip.Close: %v", err)
			}
			cancel()
			select {
			case <-served:
			case <-time.After(guard):
				tb.Error("Serve did not stop")
			}
			closeAll()
			if err := sc.Close(); err != nil {
				tb.Errorf("simulated chip: %v", err)
			}
		})
	}
	tb.Cleanup(s.stop)
	return s
}

// settleGoroutines fails the test unless the number of goroutines comes
// back to at most base.
func settleGoroutines(tb testing.TB, base int) {
	tb.Helper()
	deadline := time.Now().Add(guard)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			tb.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// startEmulated plugs sc into an emulated USB bus as a key, points this
// process's libusb at the bus, and opens the key with usb.Open: the real
// path through gousb, libusb and usbdevfs. Cleanup closes the Chip, the
// bus and the simulated chip; it fails the test if the simulated chip was
// left with requests waiting.
func startEmulated(tb testing.TB, sc *chip.Chip, serve ctaphid.ServeOptions, opts usb.Options) *sim {
	tb.Helper()
	t := tb
	if _, err := usb.List(context.Background()); errors.Is(err, device.ErrNotSupported) {
		sc.Close()
		t.Skipf("no libusb: %v", err)
	}
	bed := umockdevtest.Start(t, umockdev.Key{Chip: sc, Serve: serve, Serial: sc.Serial()})
	umockdevtest.Use(t, bed.Dir())
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ch, err := usb.Open(ctx, usb.Selector{Serial: sc.Serial()}, opts)
	if err != nil {
		sc.Close()
		t.Fatal(err)
	}
	s := &sim{chip: ch, sc: sc, bus: bed, unplug: func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := bed.Unplug(ctx, 0); err != nil {
			t.Errorf("unplug: %v", err)
		}
	}}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			if err := ch.Close(); err != nil && !errors.Is(err, device.ErrRemoved) {
				t.Errorf("Chip.Close: %v", err)
			}
			if err := bed.Close(); err != nil {
				t.Errorf("testbed: %v", err)
			}
			if err := sc.Close(); err != nil {
				t.Errorf("simulated chip: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}
