package devicetest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/frame/frametest"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/sim/code"
)

// virtualNow is a fixed instant in the middle of a 30-second step, so that
// presses in one test share a step.
func virtualNow() time.Time { return time.Unix(1_750_000_015, 0) }

func newSimCode(t *testing.T, kind device.Kind, faults code.Faults) *code.Device {
	t.Helper()
	d, err := code.New(code.Options{Kind: kind, Seed: []byte("devicetest " + string(kind)), Now: virtualNow, Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checker returns the check of spoken digits with the embedded prompts,
// which the simulator speaks.
func checker(t *testing.T) func(context.Context, *device.Audio, string) (string, error) {
	t.Helper()
	p, err := voice.DefaultPrompts()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := voice.NewDecoder(p, &voice.Options{Language: "da"}) // the simulator's default
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, a *device.Audio, code string) (string, error) {
		r, err := dec.Check(ctx, a, code)
		if r == nil {
			return "", err
		}
		return strings.Join(r.Utterances, " "), err
	}
}

// codeOpts returns the suite's options for d; with decode, the audio check
// recognises the speech (slow under the race detector, so only some tests
// do).
func codeOpts(t *testing.T, d *code.Device, decode bool) devicetest.CodeOptions {
	o := devicetest.CodeOptions{Secret: d.TOTP().Secret, Now: virtualNow}
	if decode {
		o.CheckAudio = checker(t)
	}
	return o
}

// serveCDP serves d over an in-memory byte stream and returns a target
// that speaks CDP/1 over the other end.
func serveCDP(t *testing.T, d *code.Device) *devicetest.CDPTarget {
	t.Helper()
	return serveHandler(t, d)
}

func TestCodeSuite(t *testing.T) {
	for _, kind := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		t.Run(string(kind), func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) {
				d := newSimCode(t, kind, code.Faults{})
				rep := devicetest.RunT(t, devicetest.CodeDeviceSuite(codeOpts(t, d, false)), d, devicetest.RunOptions{})
				logCounts(t, rep)
			})
			t.Run("cdp", func(t *testing.T) {
				d := newSimCode(t, kind, code.Faults{})
				rep := devicetest.RunT(t, devicetest.CodeDeviceSuite(codeOpts(t, d, true)), serveCDP(t, d), devicetest.RunOptions{})
				logCounts(t, rep)
			})
			t.Run("pipe-host", func(t *testing.T) {
				d := newSimCode(t, kind, code.Faults{})
				p := code.Pipe(d, nil)
				t.Cleanup(func() { p.Close() })
				rep := devicetest.RunT(t, devicetest.CodeDeviceSuite(codeOpts(t, d, false)), p, devicetest.RunOptions{})
				logCounts(t, rep)
			})
		})
	}
}

// TestCodeSuiteCatchesFaults shows that the code suite can fail.
func TestCodeSuiteCatchesFaults(t *testing.T) {
	tests := []struct {
		name   string
		kind   device.Kind
		faults code.Faults
		fail   []string
		msg    string
	}{
		{"WrongCode", device.KindCodeDisplay, code.Faults{WrongCode: true},
			[]string{"press.totp"}, "it is the code of step"},
		{"CorruptAudio", device.KindAudioCodeReader, code.Faults{CorruptAudio: true},
			[]string{"audio.digits"}, "the reader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimCode(t, tt.kind, tt.faults)
			rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(codeOpts(t, d, true)), serveCDP(t, d), devicetest.RunOptions{})
			if got := rep.Failed(); !slices.Equal(got, tt.fail) {
				for _, r := range rep.Results {
					t.Logf("%s: %s %s", r.Name, r.Status, r.Message)
				}
				t.Fatalf("failed checks %q, want %q", got, tt.fail)
			}
			if m := rep.Result(tt.fail[0]).Message; !strings.Contains(m, tt.msg) {
				t.Errorf("%s says %q, want it to mention %q", tt.fail[0], m, tt.msg)
			}
			t.Logf("%s: %s", tt.fail[0], rep.Result(tt.fail[0]).Message)
		})
	}
}

// bareCodeDevice offers only device.CodeDevice, as the simplest driver
// would.
type bareCodeDevice struct{ d *code.Device }

func (b bareCodeDevice) Identify(ctx context.Context) (*device.CodeDeviceInfo, error) {
	return b.d.Identify(ctx)
}
func (b bareCodeDevice) Press(ctx context.Context) (*device.Code, error) { return b.d.Press(ctx) }

func TestCodeSuiteBareTarget(t *testing.T) {
	d := newSimCode(t, device.KindCodeDisplay, code.Faults{})
	rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(codeOpts(t, d, false)), bareCodeDevice{d}, devicetest.RunOptions{})
	want := map[string]devicetest.Status{
		"identify.fields": devicetest.Pass, "status.fields": devicetest.Skip, "press.totp": devicetest.Pass,
		"press.one-code-per-step": devicetest.Pass, "display.shows-code": devicetest.Skip, "audio.digits": devicetest.Skip,
		"cdp.repeated-seq": devicetest.Skip, "cdp.resync": devicetest.Skip, "cdp.factory-sealed": devicetest.Skip,
	}
	for _, r := range rep.Results {
		if r.Status != want[r.Name] {
			t.Errorf("%s: %s %q, want %s", r.Name, r.Status, r.Message, want[r.Name])
		}
	}
	// Without the secret, codes are compared with each other only.
	rep = devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(devicetest.CodeOptions{}), bareCodeDevice{d}, devicetest.RunOptions{})
	if r := rep.Result("press.totp"); r.Status != devicetest.Skip || !strings.Contains(r.Message, "secret") {
		t.Errorf("press.totp without a secret: %s %q", r.Status, r.Message)
	}
}

func TestCodeSuiteFactoryMode(t *testing.T) {
	d, err := code.New(code.Options{Seed: []byte("factory"), Now: virtualNow, Factory: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := codeOpts(t, d, false)
	rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(opts), serveCDP(t, d), devicetest.RunOptions{Select: func(n string) bool { return n == "cdp.factory-sealed" }})
	if r := rep.Result("cdp.factory-sealed"); r.Status != devicetest.Skip || !strings.Contains(r.Message, "factory mode") {
		t.Errorf("not destructive: %s %q", r.Status, r.Message)
	}
	opts.Destructive = true
	rep = devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(opts), serveCDP(t, d), devicetest.RunOptions{})
	if f := rep.Failed(); len(f) != 0 {
		t.Errorf("destructive: failed %q", f)
	}
	if r := rep.Result("cdp.factory-sealed"); !slices.Contains(r.Log, "the device was in factory mode and is now sealed") {
		t.Errorf("log %q", r.Log)
	}
}

// TestCodeSuiteCatchesProtocolFaults serves devices that break CDP/1 rules
// the simulator keeps: the checks for those rules fail.
func TestCodeSuiteCatchesProtocolFaults(t *testing.T) {
	tests := []struct {
		name string
		// wrap changes how the device answers.
		wrap func(h frame.Handler) frame.Handler
		fail string
		msg  string
	}{
		{"accepts SET_CLOCK after SEAL", func(h frame.Handler) frame.Handler {
			return frame.HandlerFunc(func(ctx context.Context, cmd byte, p []byte) (frame.Status, []byte) {
				if cmd == frame.CmdSetClock {
					return frame.StatusOK, nil
				}
				return h.HandleFrame(ctx, cmd, p)
			})
		}, "cdp.factory-sealed", "SET_CLOCK outside factory mode answered status 0x00"},
		{"counts presses twice", func(h frame.Handler) frame.Handler {
			return frame.HandlerFunc(func(ctx context.Context, cmd byte, p []byte) (frame.Status, []byte) {
				if cmd == frame.CmdPress {
					h.HandleFrame(ctx, cmd, p)
				}
				return h.HandleFrame(ctx, cmd, p)
			})
		}, "press.one-code-per-step", "the press counter went from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSimCode(t, device.KindCodeDisplay, code.Faults{})
			target := serveHandler(t, tt.wrap(d))
			rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(codeOpts(t, d, false)), target, devicetest.RunOptions{})
			r := rep.Result(tt.fail)
			if r.Status != devicetest.Fail || !strings.Contains(r.Message, tt.msg) {
				t.Errorf("%s: %s %q, want a failure mentioning %q", tt.fail, r.Status, r.Message, tt.msg)
			}
			t.Logf("failed: %q", rep.Failed())
		})
	}
}

// serveHandler serves h over an in-memory byte stream.
func serveHandler(t *testing.T, h frame.Handler) *devicetest.CDPTarget {
	t.Helper()
	hostEnd, devEnd := frametest.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- frame.Serve(ctx, devEnd, h) }()
	target := devicetest.NewCDPTarget(hostEnd, &frame.Options{Timeout: 200 * time.Millisecond})
	t.Cleanup(func() {
		target.Close()
		cancel()
		<-served
		hostEnd.Close()
		devEnd.Close()
	})
	return target
}
