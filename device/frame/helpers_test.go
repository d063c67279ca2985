package frame

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device/frame/frametest"
	"github.com/authbench/authbench/device/otp"
)

// Fixed keys and values shared by the golden frames and the fake device.
var (
	stationPriv = mustX25519(bytes.Repeat([]byte{0x11}, 32))
	devicePriv  = mustX25519(bytes.Repeat([]byte{0x22}, 32))
	testNonce   = [12]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	// RFC 6238 Appendix B SHA1 secret.
	testSecret = []byte("12345678901234567890")
)

func mustX25519(b []byte) *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		panic(err)
	}
	return k
}

func stationRequest() *ProvisionRequest {
	r := &ProvisionRequest{}
	copy(r.StationKey[:], stationPriv.PublicKey().Bytes())
	return r
}

// fakeDevice is a small code device for tests: a code display or audio
// reader whose codes are fixed, counting handler calls per command.
type fakeDevice struct {
	mu       sync.Mutex
	id       Identity
	calls    map[byte]int
	step     uint64
	pcm      []byte // audio reader: what the last press said
	factory  bool
	sealed   bool
	clock    uint64
	settings Settings
	noCode   bool
	answer   func(cmd byte) []byte // if set, overrides the answer data
}

func newFakeDevice(kind Kind) *fakeDevice {
	return &fakeDevice{
		id: Identity{
			Kind: kind, Serial: "CD0000001", Model: "AB-100", Firmware: "1.2.0",
			ProtocolVersion: 1, Digits: 6, Period: 30, Algorithm: otp.SHA1,
		},
		calls:   map[byte]int{},
		factory: true,
		clock:   1700000000,
	}
}

func (d *fakeDevice) Calls(cmd byte) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[cmd]
}

func (d *fakeDevice) HandleFrame(ctx context.Context, cmd byte, p []byte) (Status, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[cmd]++
	if d.answer != nil {
		return StatusOK, d.answer(cmd)
	}
	empty := func(f func() (Status, []byte)) (Status, []byte) {
		if len(p) != 0 {
			return StatusBadRequest, nil
		}
		return f()
	}
	factoryOnly := func(f func() (Status, []byte)) (Status, []byte) {
		switch {
		case d.sealed:
			return StatusSealed, nil
		case !d.factory:
			return StatusNotFactory, nil
		}
		return f()
	}
	must := func(b []byte, err error) []byte {
		if err != nil {
			panic(err)
		}
		return b
	}
	switch cmd {
	case CmdIdentify:
		return empty(func() (Status, []byte) { return StatusOK, must(d.id.Encode()) })
	case CmdPress:
		return empty(func() (Status, []byte) {
			if d.noCode {
				return StatusNoCode, nil
			}
			d.step++
			r := &PressResponse{Step: d.step, SecondsLeft: 17, Digits: fmt.Sprintf("%06d", d.step*111111%1000000)}
			if d.id.Kind == KindAudioReader {
				d.pcm = make([]byte, 2500) // more than two AUDIO chunks
				for i := range d.pcm {
					d.pcm[i] = byte(i) ^ byte(d.step)
				}
				r.Audio = &AudioFormat{SampleRate: 16000, Length: uint32(len(d.pcm))}
			}
			return StatusOK, must(r.Encode())
		})
	case CmdDisplay:
		return empty(func() (Status, []byte) { return StatusOK, []byte(fmt.Sprintf("%06d", d.step*111111%1000000)) })
	case CmdAudio:
		r, err := ParseAudioRequest(p)
		if err != nil || d.id.Kind != KindAudioReader {
			return StatusBadRequest, nil
		}
		if d.pcm == nil {
			return StatusNoCode, nil
		}
		if int64(r.Offset) >= int64(len(d.pcm)) {
			return StatusOK, nil
		}
		end := min(int(r.Offset)+int(r.Max), len(d.pcm), int(r.Offset)+MaxData)
		return StatusOK, d.pcm[r.Offset:end]
	case CmdSettings:
		s, err := ParseSettings(p)
		if err != nil || (s.Language != "da" && s.Language != "en") {
			return StatusBadRequest, nil
		}
		d.settings = *s
		return StatusOK, nil
	case CmdStatus:
		return empty(func() (Status, []byte) {
			return StatusOK, must((&DeviceStatus{Battery: 87, Clock: d.clock, Presses: uint32(d.step), FactoryMode: d.factory}).Encode())
		})
	case CmdProvision:
		return factoryOnly(func() (Status, []byte) {
			req, err := ParseProvisionRequest(p)
			if err != nil {
				return StatusBadRequest, nil
			}
			r, err := SealSecret(devicePriv, req, d.id.Serial, testNonce, testSecret)
			if err != nil {
				return StatusBadRequest, nil
			}
			return StatusOK, must(r.Encode())
		})
	case CmdSetClock:
		return factoryOnly(func() (Status, []byte) {
			c, err := ParseSetClock(p)
			if err != nil {
				return StatusBadRequest, nil
			}
			d.clock = c.Unix
			return StatusOK, nil
		})
	case CmdSeal:
		return factoryOnly(func() (Status, []byte) {
			d.factory, d.sealed = false, true
			return StatusOK, nil
		})
	}
	return StatusUnknownCommand, nil
}

// Stream modes of the lineReader, as a Host or Serve sees them.
var modes = []string{"deadline", "timeout", "goroutine"}

// wrap presents a pipe end to Host or Serve in the given mode.
func wrap(e *frametest.End, mode string) io.ReadWriter {
	switch mode {
	case "deadline":
		return e
	case "timeout":
		return &timeoutPort{e: e}
	}
	return plain{e}
}

// plain hides everything but Read and Write.
type plain struct{ io.ReadWriter }

// timeoutPort behaves like go.bug.st/serial.Port: SetReadTimeout (and no
// SetReadDeadline), and a Read that times out returns 0, nil.
type timeoutPort struct {
	e  *frametest.End
	mu sync.Mutex
	d  time.Duration
}

func (p *timeoutPort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.d = d
	p.mu.Unlock()
	return nil
}

func (p *timeoutPort) Write(b []byte) (int, error) { return p.e.Write(b) }

func (p *timeoutPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	d := p.d
	p.mu.Unlock()
	if d > 0 {
		p.e.SetReadDeadline(time.Now().Add(d))
	} else {
		p.e.SetReadDeadline(time.Time{})
	}
	n, err := p.e.Read(b)
	if os.IsTimeout(err) {
		return n, nil
	}
	return n, err
}

// readHex reads a hex file: '#' lines are comments, whitespace is ignored.
func readHex(path string) ([]byte, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var comment, hx strings.Builder
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			comment.WriteString(strings.TrimSpace(line[1:]) + "\n")
			continue
		}
		hx.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(hx.String())
	if err != nil {
		return nil, "", fmt.Errorf("%s: %v", path, err)
	}
	return b, comment.String(), nil
}

const goldenDir = "../../testdata/frame"

// goldenFiles returns the frames in testdata/frame/*.hex by file name.
func goldenFiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, _, err := readHex(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}
