package frame

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
)

var update = flag.Bool("update", false, "rewrite testdata/frame golden files and transcripts")

type golden struct {
	file    string
	comment string
	frame   Frame
}

func mustEnc(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func ok(b []byte) []byte { return append([]byte{byte(StatusOK)}, b...) }

// goldenFrames lists one frame per command and response of CDP/1 §4.
// The PRESS codes are RFC 6238 Appendix B vectors (SHA1, T = 59 s and
// T = 1111111109 s, 6 digits).
func goldenFrames() []golden {
	display := &Identity{Kind: KindCodeDisplay, Serial: "CD0000001", Model: "AB-100", Firmware: "1.2.0",
		ProtocolVersion: 1, Digits: 6, Period: 30, Algorithm: otp.SHA1}
	reader := &Identity{Kind: KindAudioReader, Serial: "AR0000042", Model: "Kodeoplæser",
		ProtocolVersion: 1, Digits: 8, Period: 60, Algorithm: otp.SHA256}
	prov, err := SealSecret(devicePriv, stationRequest(), display.Serial, testNonce, testSecret)
	if err != nil {
		panic(err)
	}
	pcm := []byte{0x00, 0x00, 0xff, 0x7f, 0x01, 0x80, 0x00, 0x00, 0x10, 0x27, 0xf0, 0xd8}
	return []golden{
		{"identify_request.hex", "IDENTIFY request, SEQ 0x00", Frame{0x00, CmdIdentify, nil}},
		{"identify_response_display.hex", "IDENTIFY response: code display CD0000001, AB-100, firmware 1.2.0, CDP/1, 6 digits, 30 s, SHA1",
			Frame{0x00, CmdIdentify | ResponseBit, ok(mustEnc(display.Encode()))}},
		{"identify_response_audio.hex", "IDENTIFY response: audio reader AR0000042, model in UTF-8, no firmware tag, CDP/1, 8 digits, 60 s, SHA256",
			Frame{0x07, CmdIdentify | ResponseBit, ok(mustEnc(reader.Encode()))}},
		{"identify_response_future.hex", "IDENTIFY response with an unknown tag 0x7E (skipped) and tags out of order",
			Frame{0x08, CmdIdentify | ResponseBit, ok([]byte{
				0x7E, 3, 'n', 'e', 'w',
				TagAlgorithm, 1, 1, TagPeriod, 2, 0, 30, TagDigits, 1, 6, TagVersion, 1, 1,
				TagSerial, 9, 'C', 'D', '0', '0', '0', '0', '0', '0', '1', TagKind, 1, 1})}},
		{"press_request.hex", "PRESS request, SEQ 0x01", Frame{0x01, CmdPress, nil}},
		{"press_response_display.hex", "PRESS response from a code display: step 1, 1 s left, code 287082 (RFC 6238 App. B, T = 59 s)",
			Frame{0x01, CmdPress | ResponseBit, ok(mustEnc((&PressResponse{Step: 1, SecondsLeft: 1, Digits: "287082"}).Encode()))}},
		{"press_response_audio.hex", "PRESS response from an audio reader: step 37037036, 1 s left, code 081804 (RFC 6238 App. B, T = 1111111109 s), 16000 Hz, 96000 bytes of audio",
			Frame{0x02, CmdPress | ResponseBit, ok(mustEnc((&PressResponse{Step: 37037036, SecondsLeft: 1, Digits: "081804",
				Audio: &AudioFormat{SampleRate: 16000, Length: 96000}}).Encode()))}},
		{"display_request.hex", "DISPLAY request, SEQ 0x03", Frame{0x03, CmdDisplay, nil}},
		{"display_response.hex", "DISPLAY response: the display shows 287082", Frame{0x03, CmdDisplay | ResponseBit, ok([]byte("287082"))}},
		{"display_response_off.hex", "DISPLAY response: the display is off", Frame{0x04, CmdDisplay | ResponseBit, ok(nil)}},
		{"audio_request.hex", "AUDIO request: offset 0, max 1023", Frame{0x05, CmdAudio, mustEnc((&AudioRequest{Offset: 0, Max: 1023}).Encode())}},
		{"audio_request_offset.hex", "AUDIO request: offset 95000, max 1000", Frame{0x06, CmdAudio, mustEnc((&AudioRequest{Offset: 95000, Max: 1000}).Encode())}},
		{"audio_response.hex", "AUDIO response: 6 s16le samples", Frame{0x05, CmdAudio | ResponseBit, ok(pcm)}},
		{"settings_request.hex", "SETTINGS request: Danish, speed 100 %, volume 80 %",
			Frame{0x09, CmdSettings, mustEnc((&Settings{Language: "da", Speed: 100, Volume: 80}).Encode())}},
		{"settings_response.hex", "SETTINGS response: ok", Frame{0x09, CmdSettings | ResponseBit, ok(nil)}},
		{"status_request.hex", "STATUS request", Frame{0x0A, CmdStatus, nil}},
		{"status_response.hex", "STATUS response: battery 87 %, clock 1700000000, 42 presses, factory mode",
			Frame{0x0A, CmdStatus | ResponseBit, ok(mustEnc((&DeviceStatus{Battery: 87, Clock: 1700000000, Presses: 42, FactoryMode: true}).Encode()))}},
		{"provision_request.hex", "PROVISION request: station X25519 key (private key 32 x 0x11)",
			Frame{0x0B, CmdProvision, mustEnc(stationRequest().Encode())}},
		{"provision_response.hex", "PROVISION response: device key (private key 32 x 0x22), nonce 00..0b, sealed RFC 6238 secret \"12345678901234567890\" for serial CD0000001",
			Frame{0x0B, CmdProvision | ResponseBit, ok(mustEnc(prov.Encode()))}},
		{"provision_response_not_factory.hex", "PROVISION response: status 0x03 not in factory mode",
			Frame{0x0C, CmdProvision | ResponseBit, []byte{byte(StatusNotFactory)}}},
		{"set_clock_request.hex", "SET_CLOCK request: 1700000000 (2023-11-14T22:13:20Z)",
			Frame{0x0D, CmdSetClock, mustEnc((&SetClock{Unix: 1700000000}).Encode())}},
		{"set_clock_response.hex", "SET_CLOCK response: ok", Frame{0x0D, CmdSetClock | ResponseBit, ok(nil)}},
		{"seal_request.hex", "SEAL request", Frame{0x0E, CmdSeal, nil}},
		{"seal_response.hex", "SEAL response: ok", Frame{0x0E, CmdSeal | ResponseBit, ok(nil)}},
		{"seal_response_sealed.hex", "SEAL response: status 0x07 sealed", Frame{0x0F, CmdSeal | ResponseBit, []byte{byte(StatusSealed)}}},
		{"unknown_response.hex", "response to an unknown CMD 0x42: status 0x01 unknown command",
			Frame{0xFF, 0x42 | ResponseBit, []byte{byte(StatusUnknownCommand)}}},
		{"max_payload.hex", "AUDIO response of the largest size: status and 1023 bytes",
			Frame{0x10, CmdAudio | ResponseBit, ok(bytes.Repeat([]byte{0xA5}, MaxData))}},
	}
}

// formatHex writes a frame as a commented hex file: header, payload in
// lines of 32 bytes, CRC.
func formatHex(g golden, wire []byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# A5 LEN SEQ CMD / PAYLOAD / CRC\n", g.comment)
	fmt.Fprintf(&b, "%x %x %x %x\n", wire[:1], wire[1:3], wire[3:4], wire[4:5])
	payload := wire[HeaderLen : len(wire)-2]
	for len(payload) > 0 {
		n := min(32, len(payload))
		b.WriteString(hex.EncodeToString(payload[:n]) + "\n")
		payload = payload[n:]
	}
	fmt.Fprintf(&b, "%x\n", wire[len(wire)-2:])
	return []byte(b.String())
}

// TestGolden checks every frame of testdata/frame against its typed
// values: it parses, encodes to the same bytes, and its payload decodes.
func TestGolden(t *testing.T) {
	if *update {
		for _, g := range goldenFrames() {
			wire := mustEnc(g.frame.Encode())
			if err := os.WriteFile(filepath.Join(goldenDir, g.file), formatHex(g, wire), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files := goldenFiles(t)
	for _, g := range goldenFrames() {
		t.Run(strings.TrimSuffix(g.file, ".hex"), func(t *testing.T) {
			wire, ok := files[g.file]
			if !ok {
				t.Fatalf("%s missing; run go test -run TestGolden -update", g.file)
			}
			f, err := ParseFrame(wire)
			if err != nil {
				t.Fatal(err)
			}
			if f.Seq != g.frame.Seq || f.Cmd != g.frame.Cmd || !bytes.Equal(f.Payload, g.frame.Payload) {
				t.Fatalf("parsed %+v, want %+v", f, g.frame)
			}
			if got := mustEnc(g.frame.Encode()); !bytes.Equal(got, wire) {
				t.Fatalf("encoded\n%x, file has\n%x", got, wire)
			}
			checkPayload(t, f)
		})
	}
}

// checkPayload decodes a golden frame's payload with the decoder for its
// command and checks the round trip.
func checkPayload(t *testing.T, f *Frame) {
	t.Helper()
	p := f.Payload
	if f.IsResponse() {
		if len(p) == 0 {
			t.Fatal("response without status")
		}
		if st := Status(p[0]); st != StatusOK {
			var se *StatusError
			if err := st.Err(f.Cmd); !errors.As(err, &se) || se.Status != st {
				t.Fatalf("status %v: error %v", st, err)
			}
			return
		}
		p = p[1:]
	}
	var enc []byte
	var err error
	switch f.Cmd {
	case CmdIdentify | ResponseBit:
		var v *Identity
		if v, err = ParseIdentity(p); err == nil {
			if v.Info().Kind == "" {
				t.Errorf("no device kind for %v", v.Kind)
			}
			if enc, err = v.Encode(); err == nil && !bytes.Equal(enc, p) {
				// Unknown tags and tag order are not kept: compare the
				// canonical forms.
				v2, err2 := ParseIdentity(enc)
				if err2 != nil || *v2 != *v {
					t.Errorf("canonical IDENTIFY does not round trip: %+v vs %+v (%v)", v2, v, err2)
				}
				enc = p
			}
		}
	case CmdPress | ResponseBit:
		var v *PressResponse
		if v, err = ParsePress(p); err == nil {
			enc, err = v.Encode()
		}
	case CmdDisplay | ResponseBit:
		var v *Display
		if v, err = ParseDisplay(p); err == nil {
			enc, err = v.Encode()
		}
	case CmdAudio:
		var v *AudioRequest
		if v, err = ParseAudioRequest(p); err == nil {
			enc, err = v.Encode()
		}
	case CmdSettings:
		var v *Settings
		if v, err = ParseSettings(p); err == nil {
			enc, err = v.Encode()
		}
	case CmdStatus | ResponseBit:
		var v *DeviceStatus
		if v, err = ParseStatus(p); err == nil {
			enc, err = v.Encode()
		}
	case CmdProvision:
		var v *ProvisionRequest
		if v, err = ParseProvisionRequest(p); err == nil {
			enc, err = v.Encode()
		}
	case CmdProvision | ResponseBit:
		var v *ProvisionResponse
		if v, err = ParseProvisionResponse(p); err == nil {
			enc, err = v.Encode()
			secret, err2 := v.Open(stationPriv, "CD0000001")
			if err2 != nil || !bytes.Equal(secret, testSecret) {
				t.Errorf("Open: %q, %v", secret, err2)
			}
		}
	case CmdSetClock:
		var v *SetClock
		if v, err = ParseSetClock(p); err == nil {
			enc, err = v.Encode()
		}
	default: // commands and responses with no payload, and raw AUDIO data
		if f.Cmd != CmdAudio|ResponseBit {
			err = checkEmpty(f.Cmd, p)
		}
		enc = p
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, p) {
		t.Fatalf("payload re-encodes to\n%x, want\n%x", enc, p)
	}
	_ = device.ErrProtocol
}
