package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/internal/testenv"
	simvoice "github.com/authbench/authbench/sim/code/voice"
)

// TestVoiceLearnThenCheck is issue 14's end-to-end check: the simulated
// audio reader speaks an espeak-ng voice it was not built from, on a pty;
// `authbench voice learn` learns the voice from the reader over the pty;
// `authbench check --prompts` then passes, and `authbench voice decode`
// reads the recordings the check kept.
func TestVoiceLearnThenCheck(t *testing.T) {
	testenv.LookPath(t, "espeak-ng", "espeak-ng", "install the Debian package espeak-ng (make test-deps)")
	const secret = "3132333435363738393031323334353637383930"
	secretPath := secretFile(t, secret)
	devs := startSim(t, "--audio-reader", "pty", "--voice", "en+f3", "--otp-period", "1", "--otp-secret-file", secretPath)
	if len(devs) != 1 || devs[0].Transport != "serial" {
		t.Fatalf("devices %+v", devs)
	}
	sel := "serial:" + devs[0].Path

	dir := t.TempDir()
	prompts := filepath.Join(dir, "prompts")
	// With --json the progress goes to standard error and standard output
	// holds one JSON document saying what was learnt. The codes are TOTP
	// codes of the wall clock: learning stops once every digit was heard
	// four times (a dozen codes, usually), and 40 presses leave room for
	// a run of codes short of one digit (20 were once not enough: three
	// 2s in 120 digits).
	code, out, progress := runCmdSplit(t, "voice", "learn", "--device", sel, "--out", prompts, "--presses", "40", "--language", "en", "--json")
	t.Logf("voice learn:\n%s", progress)
	if code != 0 {
		t.Fatalf("voice learn exited %d:\n%s", code, out)
	}
	for _, want := range []string{"learning the voice of audio-code-reader " + devs[0].Serial, "waiting", "every digit heard enough times"} {
		if !strings.Contains(progress, want) {
			t.Errorf("voice learn did not say %q", want)
		}
	}
	var learnt voiceLearnJSON
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&learnt); err != nil || dec.More() {
		t.Fatalf("voice learn --json printed what is not one JSON document (%v):\n%s", err, out)
	}
	if !learnt.OK || learnt.Reader.Serial != devs[0].Serial || len(learnt.Sets) != 1 || learnt.Sets[0].Language != "en" ||
		learnt.Sets[0].Used == 0 || !slices.Contains(learnt.Files, voice.ManifestName) {
		t.Errorf("voice learn --json: %s", out)
	}
	p, err := voice.LoadPrompts(os.DirFS(prompts))
	if err != nil {
		t.Fatal(err)
	}
	if p.Reader.Serial != devs[0].Serial || p.Set("en", 100) == nil || p.Set("en", 100).Presses > 40 {
		t.Errorf("prompts of reader %+v, sets %d", p.Reader, len(p.Sets))
	}
	if code, out := runCmd(t, "voice", "learn", "--device", sel, "--out", prompts); code == 0 || !strings.Contains(out, "--force") {
		t.Errorf("voice learn over existing prompts exited %d:\n%s", code, out)
	}

	audio := filepath.Join(dir, "audio")
	checkPasses(t, sel, 5, "--otp-secret-file", secretPath, "--prompts", prompts, "--audio-dir", audio)

	wavs, _ := filepath.Glob(filepath.Join(audio, "*.wav"))
	if len(wavs) == 0 {
		wavs, _ = filepath.Glob(filepath.Join(audio, "*", "*.wav"))
	}
	if len(wavs) == 0 {
		t.Fatal("the check kept no recording")
	}
	if len(wavs) > 1 {
		// The check heard more than one code (--audio-tries): the decoder
		// was unsure of every recording but the last, and voice decode,
		// the same decoder, must agree: the one the check passed on says
		// its code, the others are refused.
		voiceDecodeAgrees(t, prompts, devs[0].Serial, wavs)
		return
	}
	code, out = runCmd(t, append([]string{"voice", "decode", "--prompts", prompts, "--digits", "6"}, wavs...)...)
	if code != 0 || !strings.Contains(out, "learnt from reader "+devs[0].Serial) {
		t.Errorf("voice decode exited %d:\n%s", code, out)
	}
	t.Logf("voice decode:\n%s", out)
}

// voiceDecodeAgrees checks the recordings of an audio check that heard
// several codes: exactly one of them decodes, as the code its name says.
func voiceDecodeAgrees(t *testing.T, prompts, serial string, wavs []string) {
	t.Helper()
	code, out, _ := runCmdSplit(t, append([]string{"voice", "decode", "--prompts", prompts, "--digits", "6", "--json"}, wavs...)...)
	t.Logf("voice decode of %d recordings exited %d:\n%s", len(wavs), code, out)
	var res voiceDecodeJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("voice decode --json: %v", err)
	}
	decoded := 0
	for _, r := range res.Recordings {
		want := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(r.File), "code-"), ".wav")
		switch {
		case r.Error == "" && slices.Equal(r.Codes, []string{want}):
			decoded++
		case r.Error == "":
			t.Errorf("%s decodes as %q", r.File, r.Codes)
		}
	}
	if code != exitFailed || decoded != 1 || res.Refused != len(wavs)-1 || !strings.Contains(res.Prompts, "learnt from reader "+serial) {
		t.Errorf("voice decode exited %d, decoded %d of %d recordings (%d refused), prompts %q", code, decoded, len(wavs), res.Refused, res.Prompts)
	}
}

// TestVoiceDecodeJSON: `voice decode --json` prints the prompts used and
// one entry per recording, the codes heard or why not, and still exits 1
// when one was not decoded.
func TestVoiceDecodeJSON(t *testing.T) {
	dir := t.TempDir()
	wav := func(name string, pcm []byte) string {
		p := filepath.Join(dir, name)
		b, err := voice.EncodeWAV(&device.Audio{SampleRate: simvoice.SampleRate, PCM: pcm})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	said, err := simvoice.Speak("402715", simvoice.Settings{Language: "da", Speed: 100, Volume: 100, Repeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	good := wav("good.wav", said)
	silent := wav("silent.wav", make([]byte, 2*simvoice.SampleRate))

	var v voiceDecodeJSON
	runJSON(t, "", &v, "voice", "decode", "--digits", "6", "--json", good)
	if len(v.Recordings) != 1 || v.Refused != 0 || !strings.Contains(v.Prompts, "embedded") {
		t.Fatalf("%+v", v)
	}
	if r := v.Recordings[0]; r.File != good || !slices.Equal(r.Codes, []string{"402715", "402715"}) || r.Language != "da" || r.Error != "" {
		t.Errorf("%+v", r)
	}

	code, out, _ := runCmdSplit(t, "voice", "decode", "--json", good, silent)
	if code != exitFailed {
		t.Errorf("voice decode of a silent recording exited %d", code)
	}
	v = voiceDecodeJSON{}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if v.Refused != 1 || len(v.Recordings) != 2 || v.Recordings[1].File != silent || v.Recordings[1].Error == "" || len(v.Recordings[1].Codes) != 0 {
		t.Errorf("%s", out)
	}
}

func TestVoiceUsage(t *testing.T) {
	for _, args := range [][]string{
		{"voice"},
		{"voice", "train"},
		{"voice", "learn"},
		{"voice", "learn", "--device", "usb:1", "--out", "x"},
		{"voice", "learn", "--device", "serial:/dev/x", "--speed", "fast", "--out", "x"},
		{"voice", "decode"},
	} {
		if code, out := runCmd(t, args...); code != 2 {
			t.Errorf("%q exited %d, want 2:\n%s", args, code, out)
		}
	}
	if code, out := runCmd(t, "voice", "learn", "--device", "serial:/dev/nonexistent", "--out", t.TempDir()); code != exitUnreachable || !strings.Contains(out, "/dev/nonexistent") {
		t.Errorf("voice learn of a missing port exited %d:\n%s", code, out)
	}
	wav := filepath.Join(t.TempDir(), "x.wav")
	if err := os.WriteFile(wav, []byte("RIFF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runCmd(t, "voice", "decode", "--prompts", t.TempDir(), wav); code != 1 || !strings.Contains(out, "no prompts") {
		t.Errorf("voice decode without prompts exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "voice", "decode", wav); code != 1 || !strings.Contains(out, "x.wav") {
		t.Errorf("voice decode of a damaged file exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "check", "--device", "sim:audio-code-reader", "--prompts", t.TempDir()); code != 1 || !strings.Contains(out, "no prompts") {
		t.Errorf("check --prompts of an empty folder exited %d:\n%s", code, out)
	}
}

// TestSimPrompts: `authbench sim --prompts DIR` speaks the prompts of a
// folder (here the English half of the simulator's own, so it starts in
// English), and `check --prompts DIR` understands it.
func TestSimPrompts(t *testing.T) {
	p, err := voice.DefaultPrompts()
	if err != nil {
		t.Fatal(err)
	}
	p.Sets = []voice.PromptSet{*p.Set("en", 100)}
	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writePrompts(dir, files); err != nil {
		t.Fatal(err)
	}
	devs := startSim(t, "--audio-reader", "pty", "--prompts", dir)
	checkPasses(t, "serial:"+devs[0].Path, 5, "--prompts", dir, "--run", "audio")
	if code, out := runCmd(t, "sim", "--audio-reader", "pty", "--prompts", dir, "--voice", "en"); code != 2 {
		t.Errorf("sim with --prompts and --voice exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "sim", "--audio-reader", "pty", "--voice", "fr+m3"); code != 2 {
		t.Errorf("sim with a voice of another language exited %d:\n%s", code, out)
	}
}
