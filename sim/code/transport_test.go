package code

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/internal/testenv"
)

// settle fails t unless the number of goroutines drops back to at most
// want; the deadline only guards against a hang.
func settle(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// testCodeDevice is the one check that runs against every way of reaching
// a simulated device: the answers must be those of twin, an identical
// device (same options, same clock) used in-process.
func testCodeDevice(t *testing.T, dev device.CodeDevice, twin *Device) {
	t.Helper()
	ctx := context.Background()
	info, err := dev.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := twin.Identify(ctx)
	if *info != *want {
		t.Errorf("Identify: %+v, want %+v", info, want)
	}
	for i := 0; i < 2; i++ {
		c, err := dev.Press(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w, err := twin.Press(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Digits != w.Digits || c.Step != w.Step || c.ValidFor != w.ValidFor || (c.Audio == nil) != (w.Audio == nil) {
			t.Errorf("Press: %+v, want %+v", c, w)
		}
		if c.Audio != nil && (c.Audio.SampleRate != w.Audio.SampleRate || !bytes.Equal(c.Audio.PCM, w.Audio.PCM)) {
			t.Errorf("Press: audio of %d bytes differs from %d bytes", len(c.Audio.PCM), len(w.Audio.PCM))
		}
	}
}

func twins(t *testing.T, kind device.Kind) (*Device, *Device) {
	clk := newClock(1_700_000_000)
	o := Options{Kind: kind, Seed: []byte("twin " + kind), Now: clk.Now}
	return newDev(t, o), newDev(t, o)
}

func TestTransports(t *testing.T) {
	for _, kind := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		t.Run(string(kind)+"/in-process", func(t *testing.T) {
			d, twin := twins(t, kind)
			testCodeDevice(t, d, twin)
		})
		t.Run(string(kind)+"/pipe", func(t *testing.T) {
			before := runtime.NumGoroutine()
			d, twin := twins(t, kind)
			p := Pipe(d, nil)
			testCodeDevice(t, p, twin)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal("second Close:", err)
			}
			settle(t, before)
			if _, err := p.Press(context.Background()); !errors.Is(err, device.ErrClosed) {
				t.Errorf("Press after Close: %v", err)
			}
		})
		t.Run(string(kind)+"/pty", func(t *testing.T) {
			before := runtime.NumGoroutine()
			d, twin := twins(t, kind)
			pt := servePTY(t, d)
			port, err := serial.Open(pt.Path, &serial.Mode{BaudRate: 115200, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
			if err != nil {
				t.Fatalf("open %s: %v", pt.Path, err)
			}
			h := frame.NewHost(port, &frame.Options{Timeout: 2 * time.Second})
			testCodeDevice(t, h, twin)
			if st := pt.ServerStats(); st.Requests == 0 || st.Parser.BadCRC != 0 {
				t.Errorf("server stats %+v", st)
			}
			h.Close()
			if err := port.Close(); err != nil {
				t.Fatal(err)
			}
			if err := pt.Close(); err != nil {
				t.Fatal(err)
			}
			settle(t, before)
		})
	}
}

func servePTY(t *testing.T, d *Device) *PTY {
	t.Helper()
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		testenv.Missing(t, "pty", "/dev/ptmx: "+err.Error())
	}
	pt, err := ServePTY(context.Background(), d)
	if errors.Is(err, device.ErrNotSupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pt.Close() })
	return pt
}

// TestPTYClients: a client may go away and another come; each pty is new;
// the context stops the device side.
func TestPTYClients(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	d := newDev(t, Options{Seed: []byte("pty")})
	pt, err := ServePTY(ctx, d)
	if errors.Is(err, device.ErrNotSupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	other := servePTY(t, newDev(t, Options{}))
	if other.Path == pt.Path {
		t.Errorf("two devices share %s", pt.Path)
	}
	for i := 0; i < 2; i++ {
		port, err := serial.Open(pt.Path, &serial.Mode{BaudRate: 115200})
		if err != nil {
			t.Fatal(err)
		}
		h := frame.NewHost(port, &frame.Options{Timeout: 2 * time.Second})
		info, err := h.Identify(ctx)
		if err != nil || info.Serial != d.Serial() {
			t.Fatalf("client %d: %+v, %v", i, info, err)
		}
		h.Close()
		port.Close()
	}
	other.Close()
	cancel()
	if err := pt.Close(); err != nil {
		t.Fatal(err)
	}
	settle(t, before)
}

func BenchmarkPress(b *testing.B) {
	for _, kind := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		b.Run(fmt.Sprint(kind, "/pipe"), func(b *testing.B) {
			clk := newClock(1_700_000_000)
			p := Pipe(newDev(b, Options{Kind: kind, Now: clk.Now}), nil)
			defer p.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Press(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprint(kind, "/in-process"), func(b *testing.B) {
			clk := newClock(1_700_000_000)
			d := newDev(b, Options{Kind: kind, Now: clk.Now})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Press(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func netPipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
