package voice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authbench/authbench/device"
)

// Reader is an audio code reader that Learn can calibrate on: Press
// returns the code with what the reader said (Code.Audio), SetSpeech sets
// its language, speed and volume (CDP/1 §4 SETTINGS, docs/cdp1.md). A
// driver/serial CodeDevice opened without a voice check, with SetSpeech
// sending SETTINGS through its Host, is one.
type Reader interface {
	Identify(ctx context.Context) (*device.CodeDeviceInfo, error)
	Press(ctx context.Context) (*device.Code, error)
	SetSpeech(ctx context.Context, lang string, speed, volume int) error
}

// DefaultMaxPresses is how many codes Learn asks for at most in each
// language and speed when LearnOptions.MaxPresses is 0.
const DefaultMaxPresses = 20

// LearnOptions tune Learn. The zero value learns Danish at 100 % speed
// and volume from at most DefaultMaxPresses codes, until every digit has
// been heard DefaultExamples times.
type LearnOptions struct {
	Languages []string // the language settings to learn; nil means {"da"}
	Speeds    []int    // the speed settings (percent); nil means {100}
	Volume    int      // the volume setting (percent); 0 means 100

	// Examples and MaxExamples are the Calibrator's (CalibrateOptions).
	Examples, MaxExamples int
	// MaxPresses bounds the codes asked for in each language and speed;
	// 0 means DefaultMaxPresses.
	MaxPresses int

	// Progress, when not nil, is called after every press and before
	// every wait.
	Progress func(LearnProgress)
	// Wait waits for d or until ctx ends (a reader gives a new code once
	// per time step); nil waits on the system clock.
	Wait func(ctx context.Context, d time.Duration) error
	// Now is the clock Wait waits on; nil means time.Now.
	Now func() time.Time
}

// LearnProgress says how learning goes.
type LearnProgress struct {
	Language   string
	Speed      int
	Press      int     // codes heard so far at this language and speed
	MaxPresses int     // at most
	Code       string  // the code of the last press, "" before a wait
	Missing    [10]int // how many more times each digit is needed
	Wait       time.Duration
	Err        error // why the last recording cannot be used, or nil
}

// Learn calibrates a decoder on r: for each language and speed asked for,
// it sets the reader to them (SetSpeech), then presses it for new codes,
// each a time step after the last (waiting out the step, as
// Code.ValidFor says), and adds what it said to a Calibrator until every
// digit has been heard opts.Examples times or opts.MaxPresses codes have
// been asked for. Then it learns the prompts (Calibrator.Prompts), with
// the reader's serial, model and firmware. When recordings had to be set
// aside and a digit is short of examples, it presses on in that setting
// while presses are left.
//
// Errors: an error wrapping device.ErrNotSupported when r is not an audio
// code reader or refuses a setting; r's errors from Identify, Press and
// SetSpeech (a busy reader is waited for, at most 10 times running); an
// error wrapping ErrTooFewExamples when the presses run out first;
// ctx.Err(), wrapped, when ctx ends first.
func Learn(ctx context.Context, r Reader, opts *LearnOptions) (*Prompts, *CalibrationReport, error) {
	var o LearnOptions
	if opts != nil {
		o = *opts
	}
	if len(o.Languages) == 0 {
		o.Languages = []string{"da"}
	}
	if len(o.Speeds) == 0 {
		o.Speeds = []int{100}
	}
	if o.Volume == 0 {
		o.Volume = 100
	}
	if o.MaxPresses <= 0 {
		o.MaxPresses = DefaultMaxPresses
	}
	if o.Wait == nil {
		o.Wait = device.Sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, s := range o.Speeds {
		if s < MinSpeed || s > MaxSpeed {
			return nil, nil, fmt.Errorf("voice: learn: speed %d%%, want %d to %d", s, MinSpeed, MaxSpeed)
		}
	}
	if o.Volume < 1 || o.Volume > 100 {
		return nil, nil, fmt.Errorf("voice: learn: volume %d%%, want 1 to 100", o.Volume)
	}
	info, err := r.Identify(ctx)
	if err != nil {
		return nil, nil, err
	}
	if info.Kind != device.KindAudioCodeReader {
		return nil, nil, fmt.Errorf("voice: learn: a %s does not speak: %w", info.Kind, device.ErrNotSupported)
	}
	cal := NewCalibrator(&CalibrateOptions{Examples: o.Examples, MaxExamples: o.MaxExamples})
	type setting struct {
		lang    string
		speed   int
		presses int
		next    time.Time // when the reader gives a new code
		steps   []uint64  // the time steps heard
	}
	var settings []*setting
	for _, l := range o.Languages {
		for _, s := range o.Speeds {
			settings = append(settings, &setting{lang: l, speed: s})
		}
	}
	var current *setting
	press := func(s *setting) error {
		if current != s {
			if err := r.SetSpeech(ctx, s.lang, s.speed, o.Volume); err != nil {
				return fmt.Errorf("voice: learn: set the reader to %s at %d %%, volume %d %%: %w", s.lang, s.speed, o.Volume, err)
			}
			current = s
		}
		busy := 0
		for {
			if d := s.next.Sub(o.Now()); d > 0 {
				if o.Progress != nil {
					o.Progress(LearnProgress{Language: s.lang, Speed: s.speed, Press: s.presses, MaxPresses: o.MaxPresses, Missing: cal.Missing(s.lang, s.speed), Wait: d})
				}
				if err := o.Wait(ctx, d); err != nil {
					return fmt.Errorf("voice: learn: %w", err)
				}
			}
			c, err := r.Press(ctx)
			if errors.Is(err, device.ErrBusy) && busy < 10 {
				busy++
				s.next = o.Now().Add(time.Second)
				continue
			}
			if err != nil {
				return err
			}
			if slices.Contains(s.steps, c.Step) { // the same code again
				s.next = o.Now().Add(c.ValidFor + 50*time.Millisecond)
				continue
			}
			s.steps = append(s.steps, c.Step)
			s.next = o.Now().Add(c.ValidFor + 50*time.Millisecond)
			s.presses++
			if c.Audio == nil {
				return fmt.Errorf("voice: learn: code %s came without audio: %w", c.Digits, device.ErrProtocol)
			}
			addErr := cal.Add(s.lang, s.speed, o.Volume, c.Digits, c.Audio)
			if addErr != nil && ctx.Err() != nil {
				return fmt.Errorf("voice: learn: %w", ctx.Err())
			}
			if o.Progress != nil {
				o.Progress(LearnProgress{Language: s.lang, Speed: s.speed, Press: s.presses, MaxPresses: o.MaxPresses,
					Code: c.Digits, Missing: cal.Missing(s.lang, s.speed), Err: addErr})
			}
			return nil
		}
	}
	missing := func(s *setting) bool {
		m := cal.Missing(s.lang, s.speed)
		return slices.ContainsFunc(m[:], func(n int) bool { return n > 0 })
	}
	for _, s := range settings {
		for s.presses < o.MaxPresses && missing(s) {
			if err := press(s); err != nil {
				return nil, nil, err
			}
		}
	}
	for {
		p, rep, err := cal.Prompts(ctx, ReaderInfo{Serial: info.Serial, Model: info.Model, Firmware: info.Firmware})
		if err == nil || !errors.Is(err, ErrTooFewExamples) {
			return p, rep, err
		}
		// Some recordings were set aside: more codes where digits are short.
		more := false
		for _, s := range settings {
			short := false
			for _, sr := range rep.Sets {
				if sr.Language == s.lang && sr.Speed == s.speed {
					short = slices.ContainsFunc(sr.Examples[:], func(n int) bool { return n < cal.opts.Examples })
				}
			}
			if short && s.presses < o.MaxPresses {
				more = true
				if err := press(s); err != nil {
					return nil, nil, err
				}
			}
		}
		if !more {
			return nil, rep, fmt.Errorf("%w (after %d presses in each setting; ask for more presses)", err, o.MaxPresses)
		}
	}
}
