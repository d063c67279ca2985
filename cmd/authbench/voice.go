package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/driver/serial"
)

func init() {
	register(&command{
		name:    "voice",
		summary: "learn an audio code reader's voice from the reader, and decode recordings with it",
		usage:   "learn --device serial:PATH --out DIR [flags] | decode --prompts DIR FILE.wav...",
		run:     runVoice,
	})
}

func runVoice(ctx context.Context, e *env, args []string) error {
	c := commands["voice"]
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintf(e.stderr, "usage: authbench voice %s\n\n%s\n\n", c.usage, c.summary)
		fmt.Fprintln(e.stderr, `  learn    press the reader until every digit has been heard enough times, cut what it
           said into words and write the prompts (WAV files and manifest.json) to DIR
  decode   say which digits recordings hold, with the prompts in DIR

Run "authbench voice learn -h" or "authbench voice decode -h" for the flags.`)
		if len(args) == 0 {
			return exitError{2}
		}
		return nil
	}
	switch args[0] {
	case "learn":
		return runVoiceLearn(ctx, e, args[1:])
	case "decode":
		return runVoiceDecode(ctx, e, args[1:])
	}
	return usageError{fmt.Errorf("unknown voice command %q: want learn or decode", args[0])}
}

// voiceLearnConfig is what `authbench voice learn` was asked to do.
type voiceLearnConfig struct {
	device    string // serial:PATH
	out       string
	languages []string
	speeds    []int
	volume    int
	examples  int
	presses   int
	force     bool
}

func runVoiceLearn(ctx context.Context, e *env, args []string) error {
	fs := newFlags(&command{name: "voice learn", summary: "learn an audio code reader's voice from the reader",
		usage: "--device serial:PATH --out DIR [--presses N] [--language da,en] [--speed 100,150] [--volume N] [--examples N]"}, e)
	var (
		cfg             voiceLearnConfig
		langs, speeds   string
		examples, press int
	)
	fs.StringVar(&cfg.device, "device", "", "the audio code reader: `serial:PATH` (a serial port or pty)")
	fs.StringVar(&cfg.out, "out", "", "write the prompts to `DIR` (created if missing)")
	fs.IntVar(&press, "presses", voice.DefaultMaxPresses, "at most `N` codes in each language and speed")
	fs.StringVar(&langs, "language", "da", "the language settings to learn, comma separated (`da,en`)")
	fs.StringVar(&speeds, "speed", "100", "the speed settings to learn, percent, comma separated (`100,150`)")
	fs.IntVar(&cfg.volume, "volume", 100, "the volume setting, `percent`")
	fs.IntVar(&examples, "examples", voice.DefaultExamples, "hear every digit at least `N` times")
	fs.BoolVar(&cfg.force, "force", false, "replace prompts already in DIR")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg.presses, cfg.examples = press, examples
	for _, l := range strings.Split(langs, ",") {
		if l = strings.TrimSpace(l); l != "" {
			cfg.languages = append(cfg.languages, l)
		}
	}
	for _, s := range strings.Split(speeds, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return usageError{fmt.Errorf("--speed %q: not a list of percentages", speeds)}
		}
		cfg.speeds = append(cfg.speeds, n)
	}
	return voiceLearn(ctx, e.stdout, cfg)
}

// voiceLearn learns the prompts of the reader cfg names and writes them to
// cfg.out, printing progress to w.
func voiceLearn(ctx context.Context, w io.Writer, cfg voiceLearnConfig) error {
	path, ok := strings.CutPrefix(cfg.device, "serial:")
	if !ok || path == "" {
		return usageError{errors.New("--device serial:PATH is required (the reader's serial port or pty)")}
	}
	if cfg.out == "" {
		return usageError{errors.New("--out DIR is required")}
	}
	if cfg.presses < 1 || cfg.examples < 1 {
		return usageError{errors.New("--presses and --examples must be at least 1")}
	}
	if _, err := os.Stat(filepath.Join(cfg.out, voice.ManifestName)); err == nil && !cfg.force {
		return fmt.Errorf("%s already holds prompts; give --force to replace them", cfg.out)
	}
	dev, err := serial.Open(ctx, path, serial.Options{NoVoiceCheck: true})
	if err != nil {
		return err
	}
	defer dev.Close()
	info := dev.Info()
	fmt.Fprintf(w, "learning the voice of %s %s (%s, firmware %s) on %s\n", info.Kind, info.Serial, info.Model, info.Firmware, path)
	start := time.Now()
	p, rep, err := voice.Learn(ctx, serialReader{dev}, &voice.LearnOptions{
		Languages: cfg.languages, Speeds: cfg.speeds, Volume: cfg.volume,
		Examples: cfg.examples, MaxPresses: cfg.presses,
		Progress: func(pr voice.LearnProgress) { fmt.Fprintln(w, learnProgress(pr)) },
	})
	if rep != nil {
		for _, s := range rep.Sets {
			fmt.Fprintf(w, "%s at %d %%: %d codes, %d used; examples kept per digit %s", s.Language, s.Speed, s.Recordings, s.Used, digitCounts(s.Examples))
			if p != nil {
				fmt.Fprintf(w, "; decoding those codes again: %d right, %d refused, %d wrong", s.Right, s.Refused, s.Wrong)
			}
			fmt.Fprintln(w)
			for _, why := range s.SetAside {
				fmt.Fprintf(w, "  set aside: %s\n", why)
			}
		}
	}
	if err != nil {
		return err
	}
	files, err := p.Files()
	if err != nil {
		return err
	}
	if err := writePrompts(cfg.out, files); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %d files to %s in %v; check the reader with: authbench check --device %s --prompts %s\n",
		len(files), cfg.out, time.Since(start).Round(time.Second), cfg.device, cfg.out)
	return nil
}

// learnProgress is one line of progress.
func learnProgress(p voice.LearnProgress) string {
	head := fmt.Sprintf("%s at %d %%: ", p.Language, p.Speed)
	if p.Wait > 0 {
		return head + fmt.Sprintf("waiting %v for the reader's next code", p.Wait.Round(100*time.Millisecond))
	}
	s := head + fmt.Sprintf("code %2d of at most %d: %s", p.Press, p.MaxPresses, p.Code)
	if p.Err != nil {
		s += fmt.Sprintf(" (not usable: %v)", p.Err)
	}
	missing := false
	for _, n := range p.Missing {
		missing = missing || n > 0
	}
	if !missing {
		return s + "; every digit heard enough times"
	}
	return s + "; still to hear: " + digitCounts(p.Missing)
}

// digitCounts writes a count per digit as "0×4 1×3 ...", leaving out
// zeros unless all are.
func digitCounts(n [10]int) string {
	var parts []string
	for d, c := range n {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", d, c))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// writePrompts writes files under dir, replacing what is there.
func writePrompts(dir string, files []voice.File) error {
	for _, f := range files {
		name := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// serialReader is a reader on a serial port as voice.Learn needs it.
type serialReader struct{ *serial.CodeDevice }

func (r serialReader) SetSpeech(ctx context.Context, lang string, speed, volume int) error {
	if speed < 0 || speed > 255 || volume < 0 || volume > 255 {
		return fmt.Errorf("speed %d %% or volume %d %% does not fit SETTINGS", speed, volume)
	}
	return r.Host().Settings(ctx, &frame.Settings{Language: lang, Speed: uint8(speed), Volume: uint8(volume)})
}

func runVoiceDecode(ctx context.Context, e *env, args []string) error {
	fs := newFlags(&command{name: "voice decode", summary: "say which digits recordings (WAV, 16-bit mono PCM) hold",
		usage: "--prompts DIR [--digits N] FILE.wav..."}, e)
	var dir string
	var digits int
	fs.StringVar(&dir, "prompts", "", "the prompts learnt from the reader (`DIR`); default: the simulated reader's voice")
	fs.IntVar(&digits, "digits", 0, "refuse a repetition that is not `N` digits (0: any)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no recordings given")}
	}
	p, desc, err := loadPrompts(dir)
	if err != nil {
		return err
	}
	dec, err := voice.NewDecoder(p, &voice.Options{Digits: digits})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "prompts: %s\n", desc)
	refused := 0
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		a, err := voice.ReadWAV(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r, err := dec.DecodeAudio(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			refused++
			fmt.Fprintf(e.stdout, "%s: not decoded: %v\n", name, err)
			continue
		}
		pitch := "resampled"
		if r.PitchKept {
			pitch = "pitch kept"
		}
		fmt.Fprintf(e.stdout, "%s: %s (%s, speed %d %%, %s)\n", name, strings.Join(r.Utterances, " "), r.Language, r.Speed, pitch)
	}
	if refused > 0 {
		return exitError{1}
	}
	return nil
}

// loadPrompts reads the prompts in dir, or the embedded ones when dir is
// "", and describes them.
func loadPrompts(dir string) (*voice.Prompts, string, error) {
	if dir == "" {
		p, err := voice.DefaultPrompts()
		return p, "the simulated reader's voice (embedded)", err
	}
	p, err := voice.LoadPrompts(os.DirFS(dir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%s: no prompts there (make them with authbench voice learn): %w", dir, err)
		}
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	var sets []string
	for _, s := range p.Sets {
		n := 0
		for _, ex := range s.Digits {
			n += len(ex)
		}
		sets = append(sets, fmt.Sprintf("%s at %d %% (%d examples)", s.Language, s.Speed, n))
	}
	desc := strings.Join(sets, ", ")
	if r := p.Reader; r.Serial != "" {
		desc = fmt.Sprintf("learnt from reader %s (%s, firmware %s) on %s: %s", r.Serial, r.Model, r.Firmware, r.Learnt.Format(time.DateOnly), desc)
	}
	return p, desc, nil
}

// loadDecoder returns a decoder of the prompts in dir and their
// description, or nil and "" when dir is "".
func loadDecoder(dir string) (*voice.Decoder, string, error) {
	if dir == "" {
		return nil, "", nil
	}
	p, desc, err := loadPrompts(dir)
	if err != nil {
		return nil, "", err
	}
	d, err := voice.NewDecoder(p, nil)
	return d, desc, err
}
