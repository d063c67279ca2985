package voice

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	dvoice "github.com/authbench/authbench/device/voice"
)

// Espeak is a voice synthesised by espeak-ng (Debian espeak-ng) on every
// press, as a reader with a speech synthesiser would speak: the digits
// read one by one in the reader's language, as connected speech (each
// digit runs into the next) unless Gap asks for pauses. Speed changes the
// speaking rate (175 words a minute at 100 %), keeping the pitch; volume
// scales the samples; repetitions are 600 ms apart at normal speed. The
// output (22050 Hz) is resampled to SampleRate. The same code and settings
// give the same bytes with one version of espeak-ng.
type Espeak struct {
	// Voice is an espeak-ng voice, such as "en+f3", "da+klatt" or "en-us":
	// a language (with a region) and a variant after '+'. The reader's
	// language setting replaces the language unless the region belongs to
	// it: with language "da", "en+f3" speaks as "da+f3" and "en-us" as "da".
	Voice string
	// Gap is the pause between two digits at normal speed, in steps of
	// 10 ms (espeak-ng -g); 0 runs them together.
	Gap time.Duration
	// Program is the espeak-ng binary; "" finds espeak-ng in PATH.
	Program string
}

var _ Voice = (*Espeak)(nil)

// espeakRate is espeak-ng's rate, in words per minute, at 100 % speed; it
// accepts 80 to 450.
const (
	espeakRate                   = 175
	espeakMinRate, espeakMaxRate = 80, 450
)

// espeakTimeout bounds one synthesis.
const espeakTimeout = 20 * time.Second

// ErrNoEspeak is wrapped by Say when espeak-ng cannot be run.
var ErrNoEspeak = errors.New("voice: espeak-ng not available (Debian package espeak-ng)")

// Speaks reports whether lang is one of CDP/1's languages (espeak-ng
// speaks both).
func (e *Espeak) Speaks(lang string) bool { return slices.Contains(Languages, lang) }

// VoiceFor returns the espeak-ng voice that e speaks in lang.
func (e *Espeak) VoiceFor(lang string) string {
	base, variant, hasVariant := strings.Cut(e.Voice, "+")
	if l, _, _ := strings.Cut(base, "-"); l != lang {
		base = lang
	}
	if hasVariant {
		return base + "+" + variant
	}
	return base
}

// Say implements Voice. It also returns an error wrapping ErrNoEspeak
// when espeak-ng is missing, and one wrapping device/voice's ErrFormat
// when its output is not what it should be.
func (e *Espeak) Say(code string, s Settings) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := checkCode(code); err != nil {
		return nil, err
	}
	prog := e.Program
	if prog == "" {
		prog = "espeak-ng"
	}
	rate := max(espeakMinRate, min(espeakMaxRate, (espeakRate*s.Speed+50)/100))
	args := []string{"-v", e.VoiceFor(s.Language), "-s", strconv.Itoa(rate), "--stdout"}
	if g := int(e.Gap / (10 * time.Millisecond)); g > 0 {
		args = append(args, "-g", strconv.Itoa(g))
	}
	text := strings.Join(strings.Split(code, ""), " ")
	ctx, cancel := context.WithTimeout(context.Background(), espeakTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, append(args, text)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("voice: %s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("%w: %v", ErrNoEspeak, err)
	}
	rateIn, pcm, err := streamedWAV(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("voice: espeak-ng output: %w", err)
	}
	x, err := dvoice.Samples(pcm)
	if err != nil {
		return nil, err
	}
	one := dvoice.Resample(x, rateIn, SampleRate)
	buf := make([]int16, 0, s.Repeat*len(one))
	gap := repeatGap * 100 / s.Speed
	for r := range s.Repeat {
		if r > 0 {
			buf = append(buf, make([]int16, gap)...)
		}
		buf = append(buf, one...)
	}
	scale(buf, s.Volume)
	return dvoice.PCM(buf), nil
}

// streamedWAV reads the WAV file espeak-ng writes to a pipe: a canonical
// 44-byte header of 16-bit mono PCM whose sizes are placeholders, and the
// samples up to the end. It returns the sample rate and the samples.
func streamedWAV(b []byte) (int, []byte, error) {
	if len(b) < dvoice.HeaderLen || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		return 0, nil, fmt.Errorf("%w: not a WAV stream", dvoice.ErrFormat)
	}
	if binary.LittleEndian.Uint16(b[20:]) != 1 || binary.LittleEndian.Uint16(b[22:]) != 1 || binary.LittleEndian.Uint16(b[34:]) != 16 {
		return 0, nil, fmt.Errorf("%w: not 16-bit mono PCM", dvoice.ErrFormat)
	}
	rate := int(binary.LittleEndian.Uint32(b[24:]))
	if rate < 1000 || rate > dvoice.MaxSampleRate {
		return 0, nil, fmt.Errorf("%w: sample rate %d", dvoice.ErrFormat, rate)
	}
	pcm := b[dvoice.HeaderLen:]
	return rate, pcm[:len(pcm)&^1], nil
}
