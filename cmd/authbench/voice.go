package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/driver/serial"
)

// voiceCmd is `authbench voice`: one subcommand per action.
type voiceCmd struct {
	Learn  voiceLearnCmd  `cmd:"" help:"Press an audio code reader until every digit has been heard enough times, cut what it said into words and write its prompts (WAV files and manifest.json) to a folder."`
	Decode voiceDecodeCmd `cmd:"" help:"Say which digits recordings (WAV, 16-bit mono PCM) hold, with the prompts learnt from a reader."`
}

// voiceLearnCmd is `authbench voice learn`.
type voiceLearnCmd struct {
	Device   string   `required:"" placeholder:"serial:PATH" help:"The audio code reader: serial:PATH (a serial port or pty)."`
	Out      string   `required:"" placeholder:"DIR" type:"path" help:"Write the prompts to DIR (created if missing)."`
	Presses  int      `default:"20" placeholder:"N" help:"At most N codes in each language and speed."`
	Language []string `default:"da" placeholder:"LANG" help:"The language settings to learn (da, en), comma separated."`
	Speed    []int    `default:"100" placeholder:"PERCENT" help:"The speed settings to learn, percent (50 to 200), comma separated."`
	Volume   int      `default:"100" placeholder:"PERCENT" help:"The volume setting, percent (1 to 100)."`
	Examples int      `default:"4" placeholder:"N" help:"Hear every digit at least N times."`
	Force    bool     `help:"Replace prompts already in DIR."`
	JSON     bool     `help:"Print what was learnt and written as JSON (progress goes to standard error)."`
}

func (c *voiceLearnCmd) Run(ctx context.Context, e *env) error {
	cfg := voiceLearnConfig{
		device: c.Device, out: c.Out, languages: c.Language, speeds: c.Speed, volume: c.Volume,
		examples: c.Examples, presses: c.Presses, force: c.Force,
	}
	if !c.JSON {
		_, err := voiceLearn(ctx, e.stdout, cfg)
		return err
	}
	res, err := voiceLearn(ctx, e.stderr, cfg)
	if res != nil {
		if jerr := printJSON(e.stdout, res); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// voiceLearnJSON is what `authbench voice learn --json` prints: the reader,
// one entry per language and speed, and the files written (none when the
// learning failed).
type voiceLearnJSON struct {
	Device   string          `json:"device"`
	Reader   voiceReaderJSON `json:"reader"`
	Out      string          `json:"out"`
	Sets     []voiceSetJSON  `json:"sets"`
	Files    []string        `json:"files"`
	Seconds  float64         `json:"seconds"`
	OK       bool            `json:"ok"`
	Problems string          `json:"error,omitempty"`
}

type voiceReaderJSON struct {
	Kind     string `json:"kind"`
	Serial   string `json:"serial"`
	Model    string `json:"model"`
	Firmware string `json:"firmware"`
}

// voiceSetJSON is the report of one language and speed. Right, refused
// and wrong count the codes used decoded again with the new prompts.
type voiceSetJSON struct {
	Language   string   `json:"language"`
	Speed      int      `json:"speed"`
	Recordings int      `json:"codes"`
	Used       int      `json:"used"`
	Examples   [10]int  `json:"examples_per_digit"`
	SetAside   []string `json:"set_aside"`
	Right      int      `json:"right"`
	Refused    int      `json:"refused"`
	Wrong      int      `json:"wrong"`
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

// voiceLearn learns the prompts of the reader cfg names and writes them to
// cfg.out, printing progress to w. Once the reader is open it returns what
// was learnt, also when the learning failed.
func voiceLearn(ctx context.Context, w io.Writer, cfg voiceLearnConfig) (*voiceLearnJSON, error) {
	path, ok := strings.CutPrefix(cfg.device, "serial:")
	if !ok || path == "" {
		return nil, usageError{errors.New("--device serial:PATH is required (the reader's serial port or pty)")}
	}
	if cfg.out == "" {
		return nil, usageError{errors.New("--out DIR is required")}
	}
	if cfg.presses < 1 || cfg.examples < 1 {
		return nil, usageError{errors.New("--presses and --examples must be at least 1")}
	}
	if _, err := os.Stat(filepath.Join(cfg.out, voice.ManifestName)); err == nil && !cfg.force {
		return nil, fmt.Errorf("%s already holds prompts; give --force to replace them", cfg.out)
	}
	dev, err := serial.Open(ctx, path, serial.Options{NoVoiceCheck: true})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, cause // interrupted
		}
		return nil, unreachableError{explainDevice(cfg.device, err)}
	}
	defer dev.Close()
	info := dev.Info()
	res := &voiceLearnJSON{Device: cfg.device, Out: cfg.out, Sets: []voiceSetJSON{}, Files: []string{},
		Reader: voiceReaderJSON{Kind: string(info.Kind), Serial: info.Serial, Model: info.Model, Firmware: info.Firmware}}
	fmt.Fprintf(w, "learning the voice of %s %s (%s, firmware %s) on %s\n", info.Kind, info.Serial, info.Model, info.Firmware, path)
	start := time.Now()
	err = func() error {
		p, rep, err := voice.Learn(ctx, serialReader{dev}, &voice.LearnOptions{
			Languages: cfg.languages, Speeds: cfg.speeds, Volume: cfg.volume,
			Examples: cfg.examples, MaxPresses: cfg.presses,
			Progress: func(pr voice.LearnProgress) { fmt.Fprintln(w, learnProgress(pr)) },
		})
		if rep != nil {
			for _, s := range rep.Sets {
				res.Sets = append(res.Sets, voiceSetJSON{Language: s.Language, Speed: s.Speed, Recordings: s.Recordings, Used: s.Used,
					Examples: s.Examples, SetAside: append([]string{}, s.SetAside...), Right: s.Right, Refused: s.Refused, Wrong: s.Wrong})
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
		for _, f := range files {
			res.Files = append(res.Files, f.Name)
		}
		fmt.Fprintf(w, "wrote %d files to %s in %v; check the reader with: authbench check --device %s --prompts %s\n",
			len(files), cfg.out, time.Since(start).Round(time.Second), cfg.device, cfg.out)
		return nil
	}()
	res.Seconds = time.Since(start).Seconds()
	res.OK = err == nil
	if err != nil {
		res.Problems = err.Error()
	}
	return res, err
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

// voiceDecodeCmd is `authbench voice decode`.
type voiceDecodeCmd struct {
	Prompts string   `placeholder:"DIR" type:"path" help:"The prompts learnt from the reader (authbench voice learn); default: the simulated reader's own voice."`
	Digits  int      `placeholder:"N" help:"Refuse a recording that is not a whole number of N-digit codes (0: any)."`
	Files   []string `arg:"" type:"existingfile" placeholder:"FILE.wav" help:"The recordings."`
	JSON    bool     `help:"Print the prompts used and one entry per recording as JSON."`
}

// voiceDecodeJSON is what `authbench voice decode --json` prints.
type voiceDecodeJSON struct {
	Prompts    string               `json:"prompts"`
	Recordings []voiceRecordingJSON `json:"recordings"`
	Refused    int                  `json:"refused"`
}

// voiceRecordingJSON is one recording: the codes heard (one per
// repetition), or why it was not decoded.
type voiceRecordingJSON struct {
	File      string   `json:"file"`
	Codes     []string `json:"codes,omitempty"`
	Language  string   `json:"language,omitempty"`
	Speed     int      `json:"speed,omitempty"`
	PitchKept bool     `json:"pitch_kept,omitempty"`
	Error     string   `json:"error,omitempty"`
}

func (c *voiceDecodeCmd) Run(ctx context.Context, e *env) error {
	p, desc, err := loadPrompts(c.Prompts)
	if err != nil {
		return err
	}
	dec, err := voice.NewDecoder(p, &voice.Options{Digits: c.Digits})
	if err != nil {
		return err
	}
	res := voiceDecodeJSON{Prompts: desc, Recordings: []voiceRecordingJSON{}}
	if !c.JSON {
		fmt.Fprintf(e.stdout, "prompts: %s\n", desc)
	}
	for _, name := range c.Files {
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
			res.Refused++
			res.Recordings = append(res.Recordings, voiceRecordingJSON{File: name, Error: err.Error()})
			if !c.JSON {
				fmt.Fprintf(e.stdout, "%s: not decoded: %v\n", name, err)
			}
			continue
		}
		res.Recordings = append(res.Recordings, voiceRecordingJSON{File: name, Codes: r.Utterances, Language: r.Language, Speed: r.Speed, PitchKept: r.PitchKept})
		if c.JSON {
			continue
		}
		pitch := "resampled"
		if r.PitchKept {
			pitch = "pitch kept"
		}
		fmt.Fprintf(e.stdout, "%s: %s (%s, speed %d %%, %s)\n", name, strings.Join(r.Utterances, " "), r.Language, r.Speed, pitch)
	}
	if c.JSON {
		if err := printJSON(e.stdout, res); err != nil {
			return err
		}
	}
	if res.Refused > 0 {
		return exitError{exitFailed}
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
