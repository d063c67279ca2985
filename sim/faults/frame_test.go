package faults_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/frame/frametest"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/sim/code"
)

// epoch is the virtual time of the code-device rows: 5 s into a 30 s step.
var epoch = time.Unix(1_700_000_015, 0)

// clock is a virtual clock for the simulated code devices.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cdpRig is a CDP/1 host (frame.Host) and a simulated code display served by
// frame.Server, joined by a frametest.Pipe. Faults, when given, spoil what
// the host writes (hostFaults) or what the device writes (devFaults).
type cdpRig struct {
	host    *frame.Host
	srv     *frame.Server
	dev     *code.Device
	devEnd  *frametest.End
	hostEnd *frametest.End
}

type cdpOptions struct {
	code       code.Options
	host       frame.Options
	hostFaults *frametest.Faults
	devFaults  *frametest.Faults
	// handler, if set, wraps the device's handler.
	handler func(r *cdpRig, h frame.Handler) frame.Handler
	// serveFails: the row breaks the device's stream, so Serve's error is
	// expected.
	serveFails bool
}

func newCDPRig(t *testing.T, o cdpOptions) *cdpRig {
	t.Helper()
	if o.code.Now == nil {
		o.code.Now = (&clock{t: epoch}).Now
	}
	o.code.Seed = []byte("faults code display")
	dev, err := code.New(o.code)
	if err != nil {
		t.Fatal(err)
	}
	hostEnd, devEnd := frametest.Pipe()
	r := &cdpRig{dev: dev, devEnd: devEnd, hostEnd: hostEnd}
	var hrw, drw interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
	} = hostEnd, devEnd
	if f := o.hostFaults; f != nil {
		f.RW, hrw = hostEnd, f
	}
	if f := o.devFaults; f != nil {
		f.RW, drw = devEnd, f
	}
	if o.host.Rand == nil {
		o.host.Rand = bytes.NewReader([]byte{0x10}) // first SEQ 0x10
	}
	r.host = frame.NewHost(hrw, &o.host)
	var h frame.Handler = dev
	if o.handler != nil {
		h = o.handler(r, h)
	}
	r.srv = &frame.Server{Handler: h, IdleTimeout: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.srv.Serve(ctx, drw) }()
	t.Cleanup(func() {
		r.host.Close()
		cancel()
		if err := <-done; err != nil && !o.serveFails {
			t.Errorf("Serve: %v", err)
		}
		for _, f := range []*frametest.Faults{o.hostFaults, o.devFaults} {
			if f != nil {
				f.Stop()
			}
		}
		hostEnd.Close()
		devEnd.Close()
	})
	return r
}

// TestCDP: faults on the frames of one PRESS, and what frame.Host reports
// (CDP/1 §2, docs/cdp1.md). The host's first frame is its write 1 (SEQ 0x10), the
// device's answer its write 1; a resend is write 2, and so on.
//
// CDP/1 recovers by itself from loss and damage: a receiver drops a frame
// with a bad CRC silently, the host resends the identical frame with the
// same SEQ when a try times out, and the device answers a repeated request
// from its cache without pressing again. So most rows succeed, and the
// interesting column is how: resends, answers from the cache, frames
// ignored, and how many codes the device used (presses).
func TestCDP(t *testing.T) {
	const timeout = 50 * time.Millisecond // one try of the host
	tests := []struct {
		name       string
		host, dev  *frametest.Faults
		timeout    time.Duration // 0: timeout
		is         error         // what the error wraps; nil: success
		presses    uint32        // codes the device used
		resends    int           // exact count of host resends, -1 for any
		replayed   uint64        // answers from the device's cache, at least
		ignoredMin uint64        // frames the host ignored, after a second command
	}{
		{name: "no fault", presses: 1},

		// The request, on its way to the device.

		{name: "request lost", host: &frametest.Faults{Drop: []int{1}}, presses: 1, resends: 1},
		// A bad CRC is dropped silently; the host's resend gets through.
		{name: "request with a bad CRC", host: &frametest.Faults{BadCRC: []int{1}}, presses: 1, resends: 1},
		{name: "request corrupted", host: &frametest.Faults{Corrupt: []int{1}}, presses: 1, resends: 1},
		// The repeat is answered from the cache: one press, two answers;
		// the host takes the first and ignores the stale second one.
		{name: "request repeated", host: &frametest.Faults{Duplicate: []int{1}}, presses: 1, replayed: 1, ignoredMin: 1},
		// Held until the host's resend, then delivered after it: two
		// identical requests, one press.
		{name: "request delivered after its resend", host: &frametest.Faults{Reorder: []int{1}}, presses: 1, resends: 1, replayed: 1, ignoredMin: 1},
		// A well-formed request with another SEQ is another request: the
		// device presses and answers it under that SEQ, which the host
		// ignores; the resend with the right SEQ is pressed again. CDP/1
		// knows a repeat only by its SEQ, so this fault costs a code.
		{name: "request with a wrong SEQ", host: &frametest.Faults{WrongSeq: []int{1}}, presses: 2, resends: 1, ignoredMin: 1},
		{name: "request late, within the timeout", host: &frametest.Faults{Delay: []int{1}, DelayBy: 20 * time.Millisecond}, timeout: 5 * time.Second, presses: 1, resends: -1},

		// The answer, on its way to the host.

		// The resend is answered from the cache: the same code, one press.
		{name: "answer lost", dev: &frametest.Faults{Drop: []int{1}}, presses: 1, resends: 1, replayed: 1},
		{name: "answer with a bad CRC", dev: &frametest.Faults{BadCRC: []int{1}}, presses: 1, resends: 1, replayed: 1},
		{name: "answer corrupted", dev: &frametest.Faults{Corrupt: []int{1}}, presses: 1, resends: 1, replayed: 1},
		{name: "answer repeated", dev: &frametest.Faults{Duplicate: []int{1}}, presses: 1, ignoredMin: 1},
		// An answer with another SEQ is stale to the host: ignored, then
		// the resend gets the cached answer.
		{name: "answer with a wrong SEQ", dev: &frametest.Faults{WrongSeq: []int{1}}, presses: 1, resends: 1, replayed: 1, ignoredMin: 1},
		// Held until the device's next write, the cached answer to the
		// resend: both arrive, the host takes the first.
		{name: "answer delivered after the next one", dev: &frametest.Faults{Reorder: []int{1}}, presses: 1, resends: 1, replayed: 1, ignoredMin: 1},
		{name: "answer late, within the timeout", dev: &frametest.Faults{Delay: []int{1}, DelayBy: 20 * time.Millisecond}, timeout: 5 * time.Second, presses: 1, resends: -1},
		// Later than one try: the resend's cached answer comes first.
		{name: "answer later than one try", dev: &frametest.Faults{Delay: []int{1}, DelayBy: 300 * time.Millisecond}, presses: 1, resends: -1},
		// Every answer later than all tries: the host gives up with
		// device.ErrTimeout after Timeout × (1 + Retries).
		{name: "every answer later than every try", dev: &frametest.Faults{Delay: []int{1, 2, 3}, DelayBy: time.Hour}, is: device.ErrTimeout, presses: 1, resends: 2, replayed: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			o := cdpOptions{hostFaults: tt.host, devFaults: tt.dev, host: frame.Options{Timeout: tt.timeout, Retries: 2}}
			if o.host.Timeout == 0 {
				o.host.Timeout = timeout
			}
			r := newCDPRig(t, o)
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			c, err := r.host.Press(ctx)
			if tt.is != nil {
				if !errors.Is(err, tt.is) {
					t.Fatalf("Press: %v, want an error wrapping %v", err, tt.is)
				}
			} else if err != nil || len(c.Digits) != 6 {
				t.Fatalf("Press: %+v, %v", c, err)
			}
			if err == nil {
				// The code is the one for the device's step: a verifier
				// with no skew accepts it.
				tp := r.dev.TOTP()
				if m, err := tp.Verify(c.Digits, epoch, 0, 0); err != nil || m.Step != c.Step {
					t.Fatalf("code %s for step %d: %+v, %v", c.Digits, c.Step, m, err)
				}
			}
			hs := r.host.Stats()
			if tt.resends >= 0 && hs.Resends != uint64(tt.resends) {
				t.Errorf("host resent %d times, want %d", hs.Resends, tt.resends)
			}
			// A second command: it works, and a stale frame still on its way
			// is ignored while the host waits for its answer. The device
			// has dealt with every earlier frame once it answers.
			if _, err := r.host.Status(ctx); err != nil {
				t.Fatalf("STATUS after the fault: %v", err)
			}
			if got := r.dev.Presses(); got != tt.presses {
				t.Errorf("device pressed %d times, want %d", got, tt.presses)
			}
			if ss := r.srv.Stats(); ss.Replayed < tt.replayed {
				t.Errorf("device answered %d times from its cache, want at least %d", ss.Replayed, tt.replayed)
			}
			if hs := r.host.Stats(); hs.Ignored < tt.ignoredMin {
				t.Errorf("host ignored %d frames, want at least %d", hs.Ignored, tt.ignoredMin)
			}
		})
	}
}

// TestCDPDevice: device conditions that are not wire faults.
func TestCDPDevice(t *testing.T) {
	t.Run("cable pulled mid-command", func(t *testing.T) {
		// The device side goes away while the host waits for its answer:
		// the host reads end of stream and reports the device removed.
		noLeaks(t)
		r := newCDPRig(t, cdpOptions{serveFails: true, handler: func(r *cdpRig, h frame.Handler) frame.Handler {
			return frame.HandlerFunc(func(ctx context.Context, cmd byte, p []byte) (frame.Status, []byte) {
				if cmd == frame.CmdPress {
					r.devEnd.Close()
				}
				return h.HandleFrame(ctx, cmd, p)
			})
		}})
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if _, err := r.host.Press(ctx); !errors.Is(err, device.ErrRemoved) {
			t.Fatalf("Press: %v, want device.ErrRemoved", err)
		}
		if ctx.Err() != nil {
			t.Fatal("Press returned only at the guard deadline")
		}
	})
	t.Run("low battery", func(t *testing.T) {
		// Below code.LowBattery the device refuses PRESS with status 0x05
		// and uses no code.
		noLeaks(t)
		r := newCDPRig(t, cdpOptions{code: code.Options{Battery: code.LowBattery - 1}})
		_, err := r.host.Press(context.Background())
		var se *frame.StatusError
		if !errors.As(err, &se) || se.Status != frame.StatusBatteryLow || !strings.Contains(err.Error(), "battery low") {
			t.Fatalf("Press: %v, want status 0x05 battery low", err)
		}
		if r.dev.Presses() != 0 {
			t.Fatalf("a refused press used %d codes", r.dev.Presses())
		}
		st, err := r.host.Status(context.Background())
		if err != nil || int(st.Battery) != code.LowBattery-1 {
			t.Fatalf("STATUS: %+v, %v", st, err)
		}
	})
	t.Run("busy", func(t *testing.T) {
		noLeaks(t)
		r := newCDPRig(t, cdpOptions{code: code.Options{Faults: code.Faults{Busy: true}}})
		if _, err := r.host.Press(context.Background()); !errors.Is(err, device.ErrBusy) {
			t.Fatalf("Press: %v, want device.ErrBusy", err)
		}
	})
}

// TestCDPClockDrift: a code device whose clock is off shows codes of
// another time step (RFC 6238 §6). A verifier that allows a skew of one
// step still accepts a clock one step off, and reports the drift so that it
// can be remembered; two steps off is refused. The device clock is the
// virtual clock plus Offset, running PPM parts per million fast or slow.
func TestCDPClockDrift(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name    string
		drift   code.Drift
		elapsed time.Duration // virtual time passed before the press
		drift1  int           // the drift Verify reports with skew 1
		ok      bool          // whether Verify with skew 1 accepts the code
	}{
		{"on time", code.Drift{}, 0, 0, true},
		{"one step fast", code.Drift{Offset: 30 * time.Second}, 0, 1, true},
		{"one step slow", code.Drift{Offset: -30 * time.Second}, 0, -1, true},
		{"two steps fast", code.Drift{Offset: 60 * time.Second}, 0, 0, false},
		{"two steps slow", code.Drift{Offset: -60 * time.Second}, 0, 0, false},
		// 100 ppm is 8.64 s a day: one step after 4 days, two after 8.
		{"100 ppm fast for 4 days", code.Drift{PPM: 100}, 4 * day, 1, true},
		{"100 ppm slow for 4 days", code.Drift{PPM: -100}, 4 * day, -1, true},
		{"100 ppm fast for 8 days", code.Drift{PPM: 100}, 8 * day, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			clk := &clock{t: epoch}
			r := newCDPRig(t, cdpOptions{code: code.Options{Now: clk.Now, Drift: tt.drift}})
			clk.Add(tt.elapsed)
			c, err := r.host.Press(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tp := r.dev.TOTP()
			now := clk.Now()
			m, err := tp.Verify(c.Digits, now, 1, 0)
			switch {
			case tt.ok && (err != nil || m.Drift != tt.drift1):
				t.Fatalf("Verify with skew 1: %+v, %v; want drift %d", m, err, tt.drift1)
			case !tt.ok && !errors.Is(err, otp.ErrMismatch):
				t.Fatalf("Verify with skew 1: %+v, %v; want otp.ErrMismatch", m, err)
			}
			// With no skew only an exact clock passes.
			if _, err := tp.Verify(c.Digits, now, 0, 0); (err == nil) != (tt.ok && tt.drift1 == 0) {
				t.Fatalf("Verify with skew 0: %v", err)
			}
		})
	}
}
