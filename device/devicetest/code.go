package devicetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/device/voice"
)

// DefaultCDPWait is how long a raw CDP/1 check waits for one answer when
// CodeOptions.Wait is zero. A device answers within milliseconds; a false
// A5 in noise can hold its parser for its idle timeout (100 ms).
const DefaultCDPWait = time.Second

// CodeOptions configure CodeDeviceSuite. The zero value is the default.
type CodeOptions struct {
	// Secret is the device's OTP secret, when the bench knows it (from
	// provisioning, or a simulator's seed). Without it the code checks
	// compare codes with each other only.
	Secret []byte
	// CheckAudio checks that what an audio code reader said is code, said
	// once or more: device/voice's Decoder.Check, with the prompts of that
	// reader. It returns what it heard, for the report, and an error when
	// the speech says other digits or cannot be recognised for sure. When
	// nil, the audio check only checks that there is audio, and attaches
	// it.
	CheckAudio func(ctx context.Context, a *device.Audio, code string) (heard string, err error)
	// AudioTries is how many codes the audio check may hear before it
	// judges. A decode that is unsure (CheckAudio's error wraps
	// voice.ErrUnrecognised: a word too close to two digits, say) is no
	// evidence against the reader: while tries remain the check waits for
	// the device's next time step (wall clock, within the check's
	// deadline), presses again and decodes the new code. Other digits
	// heard for sure (voice.ErrMismatch), silence, and missing or
	// malformed audio fail at once. 0 or 1 means one code.
	AudioTries int
	// Destructive allows a check to SEAL a device found in factory mode;
	// without it that check is skipped for such a device.
	Destructive bool
	// Wait is how long a raw CDP/1 check waits for one answer before it
	// resends (default DefaultCDPWait).
	Wait time.Duration
	// MaxClockSkew, when positive, fails the status check when the device
	// clock is further than this from Now. Otherwise the skew is only
	// noted.
	MaxClockSkew time.Duration
	// Now is the bench's clock (nil means time.Now).
	Now func() time.Time
	// Rand chooses SEQ numbers and made-up keys (nil means crypto/rand).
	Rand io.Reader
}

// CodeDeviceSuite returns the conformance suite for code displays and audio
// code readers (CDP/1, docs/cdp1.md; RFC 6238). The target is a
// device.CodeDevice; these optional abilities, found by type assertion,
// enable more checks:
//   - StatusReader (STATUS: the device clock and its press counter);
//   - Commander, or a device-side frame.Handler in-process (any command:
//     the factory commands);
//   - Displayer (DISPLAY);
//   - CDPStreamer (the byte stream itself: repeated SEQ, noise and bad
//     CRCs), which CDPTarget offers.
func CodeDeviceSuite(opts CodeOptions) Suite {
	o := &opts
	if o.Wait <= 0 {
		o.Wait = DefaultCDPWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	checks := []Check{
		o.check("identify.fields", "IDENTIFY reports a known kind, a serial, 6 to 8 digits, a period, a known algorithm and protocol version 1.",
			"CDP/1 §4.1 IDENTIFY; RFC 6238 §4", checkIdentify),
		o.check("status.fields", "STATUS reports a battery level, a plausible clock and the press counter.",
			"CDP/1 §4 STATUS", checkStatus),
		o.check("press.totp", "The code is the TOTP of the step the device reports, and that step is the device clock's.",
			"RFC 6238 §4; CDP/1 §4 PRESS", checkTOTP),
		o.check("press.one-code-per-step", "Two presses in one step give the same code, the step never goes back, and each press counts once.",
			"CDP/1 §2.3, §4 PRESS, STATUS", checkOneCodePerStep),
		o.check("display.shows-code", "After a press the display shows the code.",
			"CDP/1 §4 DISPLAY", checkDisplay),
		o.check("audio.digits", "An audio code reader says the digits of the code it gave.",
			"CDP/1 §4 PRESS, AUDIO", checkAudio),
		o.check("cdp.repeated-seq", "A request repeated with the same SEQ gets the cached answer and does not consume a second code.",
			"CDP/1 §2.3 (a repeated SEQ gets the cached response)", checkRepeatedSeq),
		o.check("cdp.resync", "After noise, a false A5 and a frame with a bad CRC, the device answers the next good frame and ignores the bad one.",
			"CDP/1 §2.1 (skip bytes until A5 and a frame whose CRC checks; bad CRC dropped silently)", checkResync),
		o.check("cdp.factory-sealed", "Outside factory mode PROVISION, SET_CLOCK and SEAL are refused with status 0x07 (sealed) or 0x03 (not in factory mode).",
			"CDP/1 §4.3 PROVISION, SET_CLOCK, SEAL", checkFactorySealed),
	}
	return Suite{
		Name:     "code-device",
		Checks:   checks,
		Accept:   accepts[device.CodeDevice]("device.CodeDevice"),
		Describe: describeCodeDevice,
		Probe:    probeCodeDevice,
	}
}

// codeRun is what a code device check works with.
type codeRun struct {
	*Run
	dev device.CodeDevice
	o   *CodeOptions
}

func (o *CodeOptions) check(name, desc, spec string, f func(ctx context.Context, c *codeRun) error) Check {
	return Check{Name: name, Description: desc, Spec: spec, Run: func(ctx context.Context, r *Run) error {
		dev, err := targetAs[device.CodeDevice](r.Target, "device.CodeDevice")
		if err != nil {
			return err
		}
		return f(ctx, &codeRun{Run: r, dev: dev, o: o})
	}}
}

func (c *codeRun) random(n int) []byte {
	b := make([]byte, n)
	if c.o.Rand != nil {
		if _, err := io.ReadFull(c.o.Rand, b); err == nil {
			return b
		}
	}
	rand.Read(b)
	return b
}

// identity returns IDENTIFY's answer, asked once per suite run.
func (c *codeRun) identity(ctx context.Context) (*device.CodeDeviceInfo, error) {
	v, err := c.Memo("identify", func() (any, error) {
		info, err := c.dev.Identify(ctx)
		if err != nil {
			return nil, fmt.Errorf("IDENTIFY failed: %w", err)
		}
		return info, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*device.CodeDeviceInfo), nil
}

// commander returns the target's ability to send any command, or nil.
func (c *codeRun) commander() Commander {
	switch t := c.Target.(type) {
	case Commander:
		return t
	case frame.Handler:
		return handlerCommander{t}
	}
	return nil
}

// status reads STATUS, or returns nil, nil when the target cannot.
func (c *codeRun) status(ctx context.Context) (*frame.DeviceStatus, error) {
	if s, ok := c.Target.(StatusReader); ok {
		st, err := s.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("STATUS failed: %w", err)
		}
		return st, nil
	}
	cmd := c.commander()
	if cmd == nil {
		return nil, nil
	}
	st, data, err := cmd.Do(ctx, frame.CmdStatus, nil)
	if err == nil {
		err = st.Err(frame.CmdStatus)
	}
	if err != nil {
		return nil, fmt.Errorf("STATUS failed: %w", err)
	}
	ds, err := frame.ParseStatus(data)
	if err != nil {
		return nil, fmt.Errorf("STATUS answer: %w", err)
	}
	return ds, nil
}

func (c *codeRun) press(ctx context.Context) (*device.Code, error) {
	code, err := c.dev.Press(ctx)
	if err != nil {
		return nil, fmt.Errorf("PRESS failed: %w", err)
	}
	return code, nil
}

var errNoStatus = &SkipError{Reason: "the target cannot read STATUS (a StatusReader or Commander such as CDPTarget)"}

func checkIdentify(ctx context.Context, c *codeRun) error {
	id, err := c.identity(ctx)
	if err != nil {
		return err
	}
	c.Logf("%s serial %q model %q firmware %q: %d digits every %v, %v, protocol %d",
		id.Kind, id.Serial, id.Model, id.Firmware, id.Digits, id.Period, id.Algorithm, id.ProtocolVersion)
	var problems []string
	if id.Kind != device.KindCodeDisplay && id.Kind != device.KindAudioCodeReader {
		problems = append(problems, fmt.Sprintf("kind %q is neither %s nor %s", id.Kind, device.KindCodeDisplay, device.KindAudioCodeReader))
	}
	if id.Serial == "" {
		problems = append(problems, "no serial number")
	}
	if id.Digits < otp.MinDigits || id.Digits > otp.MaxDigits {
		problems = append(problems, fmt.Sprintf("%d digits, want %d to %d", id.Digits, otp.MinDigits, otp.MaxDigits))
	}
	if id.Period <= 0 || id.Period%time.Second != 0 {
		problems = append(problems, fmt.Sprintf("period %v is not a positive whole number of seconds", id.Period))
	}
	if !id.Algorithm.Valid() {
		problems = append(problems, fmt.Sprintf("unknown algorithm %v", id.Algorithm))
	}
	if id.ProtocolVersion != frame.ProtocolVersion {
		problems = append(problems, fmt.Sprintf("protocol version %d, want %d", id.ProtocolVersion, frame.ProtocolVersion))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// earliestClock is before any device was made: a clock before it was never
// set.
var earliestClock = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func checkStatus(ctx context.Context, c *codeRun) error {
	st, err := c.status(ctx)
	if err != nil {
		return err
	}
	if st == nil {
		return errNoStatus
	}
	clock := st.Time()
	skew := clock.Sub(c.o.Now())
	c.Logf("battery %d%%, clock %s (%+v from the bench), %d presses, factory mode %v",
		st.Battery, clock.UTC().Format(time.RFC3339), skew.Round(time.Second), st.Presses, st.FactoryMode)
	var problems []string
	if st.Battery > 100 {
		problems = append(problems, fmt.Sprintf("battery %d%% is over 100%%", st.Battery))
	}
	if clock.Before(earliestClock) {
		problems = append(problems, fmt.Sprintf("the device clock says %s: it was never set", clock.UTC().Format(time.RFC3339)))
	}
	if m := c.o.MaxClockSkew; m > 0 && (skew > m || skew < -m) {
		problems = append(problems, fmt.Sprintf("the device clock is %v off the bench's, more than the %v allowed", skew.Round(time.Second), m))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// stepOf returns the TOTP time step of unix time t.
func stepOf(t uint64, period time.Duration) uint64 {
	return t / uint64(period/time.Second)
}

func checkTOTP(ctx context.Context, c *codeRun) error {
	if len(c.o.Secret) == 0 {
		return Skipf("the device's OTP secret is not known: give it with --otp-secret-file FILE (hex) or $AUTHBENCH_OTP_SECRET")
	}
	id, err := c.identity(ctx)
	if err != nil {
		return err
	}
	gen := otp.TOTP{Secret: c.o.Secret, Digits: id.Digits, Period: id.Period, Algorithm: id.Algorithm}
	before, err := c.status(ctx)
	if err != nil {
		return err
	}
	code, err := c.press(ctx)
	if err != nil {
		return err
	}
	after, err := c.status(ctx)
	if err != nil {
		return err
	}
	want, err := gen.Code(code.Step)
	if err != nil {
		return fmt.Errorf("computing the TOTP of step %d: %v", code.Step, err)
	}
	c.Logf("code %s in step %d, valid for %v", code.Digits, code.Step, code.ValidFor)
	var problems []string
	if code.Digits != want {
		msg := fmt.Sprintf("code %s is not the TOTP of step %d, the step the device reports (want %s)", code.Digits, code.Step, want)
		if off, ok := findStep(&gen, code.Digits, code.Step, 3); ok {
			msg += fmt.Sprintf("; it is the code of step %d (%+d)", int64(code.Step)+int64(off), off)
		}
		problems = append(problems, msg)
	}
	if before == nil {
		c.Logf("the device clock was not read (no STATUS): the step was not compared with it")
	} else {
		lo, hi := stepOf(before.Clock, id.Period), stepOf(after.Clock, id.Period)
		if code.Step < lo || code.Step > hi {
			problems = append(problems, fmt.Sprintf("the device reports step %d, but its clock (STATUS) was in step %d", code.Step, lo))
		}
	}
	if code.ValidFor <= 0 || code.ValidFor > id.Period {
		problems = append(problems, fmt.Sprintf("seconds left %v is not within the %v period", code.ValidFor, id.Period))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// findStep looks for the step near step (±window) whose code is digits,
// for a diagnosis.
func findStep(gen *otp.TOTP, digits string, step uint64, window int) (int, bool) {
	for d := 1; d <= window; d++ {
		for _, off := range []int{d, -d} {
			s := int64(step) + int64(off)
			if s < 0 {
				continue
			}
			if c, err := gen.Code(uint64(s)); err == nil && c == digits {
				return off, true
			}
		}
	}
	return 0, false
}

func checkOneCodePerStep(ctx context.Context, c *codeRun) error {
	var problems []string
	counted := false
	for try := 1; ; try++ {
		before, err := c.status(ctx)
		if err != nil {
			return err
		}
		first, err := c.press(ctx)
		if err != nil {
			return err
		}
		second, err := c.press(ctx)
		if err != nil {
			return err
		}
		after, err := c.status(ctx)
		if err != nil {
			return err
		}
		c.Logf("presses gave %s (step %d) and %s (step %d)", first.Digits, first.Step, second.Digits, second.Step)
		if before != nil {
			counted = true
			c.Logf("press counter %d before, %d after", before.Presses, after.Presses)
			if after.Presses != before.Presses+2 {
				problems = append(problems, fmt.Sprintf("the press counter went from %d to %d after 2 presses", before.Presses, after.Presses))
			}
		}
		switch {
		case second.Step < first.Step:
			problems = append(problems, fmt.Sprintf("the step went backwards: %d then %d", first.Step, second.Step))
		case second.Step == first.Step && second.Digits != first.Digits:
			problems = append(problems, fmt.Sprintf("two presses in step %d gave different codes: %s then %s", first.Step, first.Digits, second.Digits))
		case second.Step > first.Step && try == 1 && len(problems) == 0:
			c.Logf("a new step began between the presses; trying again")
			continue
		case second.Step > first.Step:
			c.Logf("a new step began between the presses again: codes not compared")
		}
		break
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	if !counted {
		c.Logf("the press counter was not read (no STATUS)")
	}
	return nil
}

func checkDisplay(ctx context.Context, c *codeRun) error {
	id, err := c.identity(ctx)
	if err != nil {
		return err
	}
	if id.Kind != device.KindCodeDisplay {
		return Skipf("this %s has no display", id.Kind)
	}
	read := func(ctx context.Context) (string, error) {
		if d, ok := c.Target.(Displayer); ok {
			return d.Display(ctx)
		}
		cmd := c.commander()
		if cmd == nil {
			return "", Skipf("the target cannot read DISPLAY (a Displayer or Commander such as CDPTarget)")
		}
		st, data, err := cmd.Do(ctx, frame.CmdDisplay, nil)
		if err == nil {
			err = st.Err(frame.CmdDisplay)
		}
		if err != nil {
			return "", err
		}
		d, err := frame.ParseDisplay(data)
		if err != nil {
			return "", err
		}
		return d.Text, nil
	}
	if _, ok := c.Target.(Displayer); !ok && c.commander() == nil {
		return Skipf("the target cannot read DISPLAY (a Displayer or Commander such as CDPTarget)")
	}
	code, err := c.press(ctx)
	if err != nil {
		return err
	}
	shown, err := read(ctx)
	if err != nil {
		return fmt.Errorf("DISPLAY failed: %w", err)
	}
	c.Logf("pressed %s, the display shows %q", code.Digits, shown)
	if !strings.Contains(strings.ReplaceAll(shown, " ", ""), code.Digits) {
		if shown == "" && code.ValidFor < 2*time.Second {
			c.Logf("the display was off, but the code's step was about to end")
			return nil
		}
		return fmt.Errorf("the display shows %q, not the code %s just pressed", shown, code.Digits)
	}
	return nil
}

func checkAudio(ctx context.Context, c *codeRun) error {
	id, err := c.identity(ctx)
	if err != nil {
		return err
	}
	if id.Kind != device.KindAudioCodeReader {
		return Skipf("this %s does not speak", id.Kind)
	}
	tries := max(c.o.AudioTries, 1)
	var unsure []string // why each code heard was refused
	var seen []string   // the codes heard
	for try := 1; ; try++ {
		code, err := c.press(ctx)
		if err != nil {
			return err
		}
		if slices.Contains(seen, code.Digits) {
			c.Logf("pressed again, but the reader gave code %s (step %d) again: no new speech to decode", code.Digits, code.Step)
			return unsureAudio(unsure, "a press gave the same code again")
		}
		seen = append(seen, code.Digits)
		name, err := c.keepAudio(code)
		if err != nil {
			return err
		}
		if c.o.CheckAudio == nil {
			c.NotChecked(fmt.Sprintf("the speech was not decoded (no voice prompts to recognise it with): listen to %s", name))
			return nil
		}
		heard, err := c.o.CheckAudio(ctx, code.Audio, code.Digits)
		if err == nil {
			c.Logf("heard %q", heard)
			return nil
		}
		if !errors.Is(err, voice.ErrUnrecognised) || ctx.Err() != nil {
			return fmt.Errorf("the reader's speech for code %s: %v (recording %s)", code.Digits, err, name)
		}
		unsure = append(unsure, fmt.Sprintf("code %s: %v (recording %s)", code.Digits, err, name))
		c.Logf("code %s not recognised for sure: %v", code.Digits, err)
		if try >= tries {
			return unsureAudio(unsure, "")
		}
		wait := code.ValidFor
		if wait <= 0 || wait > id.Period {
			wait = id.Period
		}
		wait += nextStepMargin
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			c.Logf("the next code comes in %v, after the check's deadline", wait.Round(time.Millisecond))
			return unsureAudio(unsure, "the next code would come after the check's deadline")
		}
		c.Logf("waiting %v for the next code, then pressing again (try %d of %d)", wait.Round(time.Millisecond), try+1, tries)
		if err := device.Sleep(ctx, wait); err != nil {
			return unsureAudio(unsure, fmt.Sprintf("waiting for the next code: %v", err))
		}
	}
}

// nextStepMargin is how long past the end of a code's step (Code.ValidFor,
// whole seconds rounded up) the audio check presses for the next code.
const nextStepMargin = 50 * time.Millisecond

// keepAudio checks that code came with well-formed audio and attaches it
// to the report, returning the attachment's name.
func (c *codeRun) keepAudio(code *device.Code) (string, error) {
	a := code.Audio
	if a == nil || len(a.PCM) == 0 {
		return "", fmt.Errorf("the reader gave code %s but no audio", code.Digits)
	}
	if a.SampleRate <= 0 || len(a.PCM)%2 != 0 {
		return "", fmt.Errorf("the audio of code %s is malformed: %d bytes at %d Hz", code.Digits, len(a.PCM), a.SampleRate)
	}
	name := "code-" + code.Digits + ".wav"
	if err := c.Attach(name, "audio/wav", encodeWAV(a)); err != nil {
		c.Logf("could not keep the recording: %v", err)
	}
	c.Logf("code %s: %v of audio at %d Hz, kept as %s", code.Digits, a.Duration().Round(time.Millisecond), a.SampleRate, name)
	return name, nil
}

// unsureAudio is the failure of an audio check whose every code heard was
// refused as unsure; stopped says why it heard no more, if it had tries
// left.
func unsureAudio(unsure []string, stopped string) error {
	msg := fmt.Sprintf("the reader's speech was not recognised for sure in any of the %d codes heard", len(unsure))
	if len(unsure) == 1 {
		msg = "the reader's speech was not recognised for sure in the one code heard"
	}
	if stopped != "" {
		msg += " (" + stopped + ")"
	}
	return errors.New(msg + ": " + strings.Join(unsure, "; "))
}

// encodeWAV returns a as a RIFF/WAVE file of 16-bit mono PCM.
func encodeWAV(a *device.Audio) []byte {
	b := make([]byte, 44, 44+len(a.PCM))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+len(a.PCM)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(a.SampleRate))
	binary.LittleEndian.PutUint32(b[28:], uint32(a.SampleRate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(len(a.PCM)))
	return append(b, a.PCM...)
}

// raw returns a raw CDP/1 connection to the target, or a skip.
func (c *codeRun) raw() (*rawCDP, error) {
	s, ok := c.Target.(CDPStreamer)
	if !ok || s.CDPStream() == nil {
		return nil, Skipf("the target does not hand out its CDP/1 byte stream (CDPStreamer, such as CDPTarget)")
	}
	r := newRawCDP(s.CDPStream(), c.o.Wait)
	if r == nil {
		return nil, Skipf("the CDP/1 stream has no read deadline or timeout, so raw frames cannot be read safely")
	}
	return r, nil
}

// seqs returns n distinct SEQ numbers from a random start.
func (c *codeRun) seqs(n int) []byte {
	start := c.random(1)[0]
	s := make([]byte, n)
	for i := range s {
		s[i] = start + byte(i)*37 // spread out, distinct for n ≤ 6
	}
	return s
}

func checkRepeatedSeq(ctx context.Context, c *codeRun) error {
	r, err := c.raw()
	if err != nil {
		return err
	}
	defer r.close()
	seq := c.seqs(3)
	before, err := r.status(ctx, seq[0])
	if err != nil {
		return err
	}
	press := frame.Frame{Seq: seq[1], Cmd: frame.CmdPress}
	first, resent, err := r.exchange(ctx, press, 3)
	if err != nil {
		return err
	}
	if resent > 0 {
		c.Logf("the first PRESS was sent %d more times before it was answered", resent)
	}
	if st := frame.Status(first.Payload[0]); st != frame.StatusOK {
		return fmt.Errorf("PRESS answered status 0x%02X (%v)", byte(st), st)
	}
	again, _, err := r.exchange(ctx, press, 3)
	if err != nil {
		return fmt.Errorf("the repeated PRESS: %w", err)
	}
	// The last request is STATUS, so the device's cache holds no PRESS
	// that the Host's next SEQ could hit by chance.
	after, err := r.status(ctx, seq[2])
	if err != nil {
		return err
	}
	c.Logf("press counter %d before, %d after a PRESS sent twice with SEQ 0x%02X", before.Presses, after.Presses, seq[1])
	var problems []string
	if !bytes.Equal(first.Payload, again.Payload) {
		problems = append(problems, fmt.Sprintf("the repeated PRESS (SEQ 0x%02X) got another answer: %x, then %x", seq[1], first.Payload, again.Payload))
	}
	if after.Presses != before.Presses+1 {
		problems = append(problems, fmt.Sprintf("a PRESS repeated with the same SEQ 0x%02X counted as %d presses (counter %d → %d): a resent PRESS consumed another code",
			seq[1], int64(after.Presses)-int64(before.Presses), before.Presses, after.Presses))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkResync(ctx context.Context, c *codeRun) error {
	r, err := c.raw()
	if err != nil {
		return err
	}
	defer r.close()
	seq := c.seqs(3)
	before, err := r.status(ctx, seq[0])
	if err != nil {
		return err
	}
	// Noise with false start bytes, the last announcing a payload that
	// never comes, then a PRESS whose CRC is wrong.
	noise := []byte{0x00, 0xFF, 0x13, frame.SOF, frame.SOF, 0x00, 0x02, 0x42, 0x5A, frame.SOF, 0x03, 0xF0, 0x07}
	bad, err := (&frame.Frame{Seq: seq[1], Cmd: frame.CmdPress}).Encode()
	if err != nil {
		return err
	}
	bad[len(bad)-1] ^= 0x01
	if err := r.write(noise); err != nil {
		return err
	}
	if err := r.write(bad); err != nil {
		return err
	}
	resp, resent, err := r.exchange(ctx, frame.Frame{Seq: seq[2], Cmd: frame.CmdStatus}, 4)
	if err != nil {
		return fmt.Errorf("after noise and a bad frame: %w", err)
	}
	c.Logf("the device answered the STATUS after the noise (resent %d times)", resent)
	var problems []string
	for _, f := range r.seen {
		if f.Seq == seq[1] && f.Cmd == frame.CmdPress|frame.ResponseBit {
			problems = append(problems, fmt.Sprintf("the device answered a PRESS frame whose CRC was wrong (SEQ 0x%02X)", seq[1]))
		}
	}
	if st := frame.Status(resp.Payload[0]); st != frame.StatusOK {
		problems = append(problems, fmt.Sprintf("STATUS after the noise answered status 0x%02X (%v)", byte(st), st))
	} else if after, err := frame.ParseStatus(resp.Payload[1:]); err != nil {
		problems = append(problems, fmt.Sprintf("STATUS after the noise: %v", err))
	} else if after.Presses != before.Presses {
		problems = append(problems, fmt.Sprintf("the press counter went from %d to %d: the PRESS with a bad CRC was carried out", before.Presses, after.Presses))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkFactorySealed(ctx context.Context, c *codeRun) error {
	cmd := c.commander()
	if cmd == nil {
		return Skipf("the target cannot send factory commands (a Commander such as CDPTarget)")
	}
	st, err := c.status(ctx)
	if err != nil {
		return err
	}
	if st == nil {
		return errNoStatus
	}
	if st.FactoryMode {
		if !c.o.Destructive {
			return Skipf("the device is in factory mode; sealing it is for good, so this check runs only with --destructive")
		}
		s, _, err := cmd.Do(ctx, frame.CmdSeal, nil)
		if err != nil {
			return fmt.Errorf("SEAL failed: %w", err)
		}
		if s != frame.StatusOK {
			return fmt.Errorf("SEAL in factory mode answered status 0x%02X (%v)", byte(s), s)
		}
		c.Logf("the device was in factory mode and is now sealed")
	}
	// Harmless values, should a faulty device accept them: its own clock,
	// a key nobody holds.
	clock, err := (&frame.SetClock{Unix: st.Clock}).Encode()
	if err != nil {
		return err
	}
	var key [32]byte
	copy(key[:], c.random(32))
	prov, err := (&frame.ProvisionRequest{StationKey: key}).Encode()
	if err != nil {
		return err
	}
	var problems []string
	for _, req := range []struct {
		cmd     byte
		payload []byte
	}{{frame.CmdProvision, prov}, {frame.CmdSetClock, clock}, {frame.CmdSeal, nil}} {
		s, _, err := cmd.Do(ctx, req.cmd, req.payload)
		if err != nil {
			return fmt.Errorf("%s failed: %w", frame.CmdName(req.cmd), err)
		}
		c.Logf("%s answered status 0x%02X (%v)", frame.CmdName(req.cmd), byte(s), s)
		if s != frame.StatusSealed && s != frame.StatusNotFactory {
			problems = append(problems, fmt.Sprintf("%s outside factory mode answered status 0x%02X (%v), want 0x07 (sealed) or 0x03 (not in factory mode)",
				frame.CmdName(req.cmd), byte(s), s))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
