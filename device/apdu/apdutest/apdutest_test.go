package apdutest_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/apdu/apdutest"
	"github.com/authbench/authbench/device/ctap2"
)

var update = flag.Bool("update", false, "record testdata/apdu/select_getinfo.txt again")

const selectGetInfo = "../../../testdata/apdu/select_getinfo.txt"

// infoHandler is a FIDO2 card that answers getInfo and nothing else.
type infoHandler struct{}

func (infoHandler) ServeCTAP2(ctx context.Context, req []byte) []byte {
	if req[0] != ctap2.CmdGetInfo {
		return []byte{0x01} // CTAP1_ERR_INVALID_COMMAND
	}
	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	b, err := enc.Marshal(&ctap2.Info{
		Versions:   []string{"U2F_V2", "FIDO_2_0"},
		AAGUID:     bytes.Repeat([]byte{0xab}, 16),
		Options:    map[string]bool{"rk": true, "up": true},
		MaxMsgSize: 7609,
		Transports: []string{"nfc"},
	})
	if err != nil {
		panic(err)
	}
	return append([]byte{0x00}, b...)
}

func (infoHandler) ServeU2F(ctx context.Context, req []byte) []byte { return []byte{0x6d, 0x00} }

// The client's SELECT and getInfo, played back from testdata; -update
// records them again from a Card.
func TestSelectGetInfoTranscript(t *testing.T) {
	var tr apdu.Transmitter
	var rec *apdutest.Recorder
	var play *apdutest.Playback
	if *update {
		card := apdu.NewCard(infoHandler{}, apdu.CardOptions{Protocols: device.ProfileCTAP2Only})
		defer card.Close()
		rec = apdutest.NewRecorder(card)
		tr = rec
	} else {
		text, err := os.ReadFile(selectGetInfo)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := apdutest.ParseTranscript(text)
		if err != nil {
			t.Fatal(err)
		}
		play = apdutest.NewPlayback(steps)
		tr = play
	}
	c := apdu.NewClient(tr, apdu.ClientOptions{})
	ctx := context.Background()
	v, err := c.Select(ctx)
	if err != nil || v != apdu.VersionFIDO2 {
		t.Fatalf("Select = %q, %v", v, err)
	}
	resp, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
	if err != nil {
		t.Fatal(err)
	}
	if resp[0] != 0 {
		t.Fatalf("getInfo status %#x", resp[0])
	}
	var info ctap2.Info
	if err := cbor.Unmarshal(resp[1:], &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Versions) != 2 || info.Versions[1] != "FIDO_2_0" || info.MaxMsgSize != 7609 {
		t.Errorf("getInfo = %+v", info)
	}
	if *update {
		out, _ := rec.Transcript().MarshalText()
		head := "# apdu.Client: SELECT of the FIDO applet (with Le) and getInfo (NFCCTAP_MSG),\n" +
			"# recorded from an apdu.Card with a getInfo-only handler (go test -update).\n"
		if err := os.WriteFile(selectGetInfo, append([]byte(head), out...), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := play.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecorder(t *testing.T) {
	card := apdu.NewCard(infoHandler{}, apdu.CardOptions{Protocols: device.ProfileCTAP2Only})
	defer card.Close()
	rec := apdutest.NewRecorder(card)
	cmds := [][]byte{
		{0x00, 0xa4, 0x04, 0x00, 0x08, 0xa0, 0x00, 0x00, 0x06, 0x47, 0x2f, 0x00, 0x01},
		{0x00, 0xb0, 0x00, 0x00, 0x00},
	}
	var resps [][]byte
	for _, c := range cmds {
		r, err := rec.Transmit(c)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, r)
	}
	got := rec.Transcript()
	if len(got) != 2 {
		t.Fatalf("recorded %d exchanges", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i].Command, cmds[i]) || !bytes.Equal(got[i].Response, resps[i]) {
			t.Errorf("exchange %d = %x / %x", i, got[i].Command, got[i].Response)
		}
	}
	if !bytes.Equal(resps[1], []byte{0x6d, 0x00}) {
		t.Errorf("unknown instruction answered %x", resps[1])
	}
	// Errors pass through unrecorded.
	card.Close()
	if _, err := rec.Transmit(cmds[0]); err == nil {
		t.Error("no error from a closed card")
	}
	if n := len(rec.Transcript()); n != 2 {
		t.Errorf("%d exchanges after a failed call", n)
	}
}

func TestPlayback(t *testing.T) {
	tr := apdutest.Transcript{
		{Command: []byte{1, 2, 3, 4}, Response: []byte{0x90, 0x00}},
		{Command: []byte{5, 6, 7, 8}, Response: []byte{0x6a, 0x82}},
	}
	t.Run("exact", func(t *testing.T) {
		p := apdutest.NewPlayback(tr)
		for _, e := range tr {
			got, err := p.Transmit(e.Command)
			if err != nil || !bytes.Equal(got, e.Response) {
				t.Fatalf("Transmit(%x) = %x, %v", e.Command, got, err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unexpected command", func(t *testing.T) {
		p := apdutest.NewPlayback(tr)
		_, err := p.Transmit([]byte{1, 2, 3, 5})
		if err == nil || !strings.Contains(err.Error(), "want > 01020304") || !strings.Contains(err.Error(), "got  > 01020305") {
			t.Fatalf("error %v", err)
		}
		if _, err2 := p.Transmit(tr[0].Command); !errors.Is(err2, err) {
			t.Errorf("later call: %v", err2)
		}
		if err2 := p.Close(); !errors.Is(err2, err) {
			t.Errorf("Close: %v", err2)
		}
	})
	t.Run("steps left", func(t *testing.T) {
		p := apdutest.NewPlayback(tr)
		p.Transmit(tr[0].Command)
		if err := p.Close(); err == nil || !strings.Contains(err.Error(), "1 of 2 steps not played; next: > 05060708") {
			t.Fatalf("Close = %v", err)
		}
	})
	t.Run("too many commands", func(t *testing.T) {
		p := apdutest.NewPlayback(tr[:1])
		p.Transmit(tr[0].Command)
		if _, err := p.Transmit(tr[0].Command); err == nil || !strings.Contains(err.Error(), "after all 1 steps") {
			t.Fatalf("error %v", err)
		}
		if p.Close() == nil {
			t.Error("Close after an unexpected command succeeded")
		}
	})
}

func TestParseTranscript(t *testing.T) {
	if _, err := apdutest.ParseTranscript([]byte("> 00a40400\n<9000\n")); err == nil {
		t.Error("accepted '<9000' without a space")
	}
	tr, err := apdutest.ParseTranscript([]byte("# c\n\n> 00 a4 04 00\n< 90 00\n"))
	if err != nil || len(tr) != 1 || !bytes.Equal(tr[0].Command, []byte{0, 0xa4, 4, 0}) {
		t.Fatalf("got %v, %v", tr, err)
	}
	out, _ := tr.MarshalText()
	if string(out) != "> 00a40400\n< 9000\n" {
		t.Errorf("MarshalText = %q", out)
	}
	for _, bad := range []string{
		"> 00a40400\n",            // no response
		"< 9000\n",                // response first
		"> 00a40400\n> 00\n",      // two commands
		"> 0g\n< 9000\n",          // bad hex
		"> \n< 9000\n",            // empty
		"= 00\n",                  // unknown marker
		"> 00a40400\n< 9000\n<\n", // bare marker
	} {
		if tr, err := apdutest.ParseTranscript([]byte(bad)); err == nil || tr != nil {
			t.Errorf("ParseTranscript(%q) = %v, %v", bad, tr, err)
		}
	}
}

func FuzzParseTranscript(f *testing.F) {
	files, _ := filepath.Glob("../../../testdata/apdu/*.txt")
	if len(files) == 0 {
		f.Fatal("no transcripts in testdata/apdu")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("> 00 a4\n< 90 00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := apdutest.ParseTranscript(b)
		if err != nil {
			if tr != nil {
				t.Fatal("error with a non-nil transcript")
			}
			return
		}
		out, _ := tr.MarshalText()
		again, err := apdutest.ParseTranscript(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		out2, _ := again.MarshalText()
		if !bytes.Equal(out, out2) {
			t.Fatalf("canonical form not stable: %q then %q", out, out2)
		}
	})
}
