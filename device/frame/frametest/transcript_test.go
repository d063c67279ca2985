package frametest_test

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/frame/frametest"
	"github.com/authbench/authbench/device/otp"
)

var update = flag.Bool("update", false, "record testdata/frame/identify_press.transcript again")

const transcript = "../../../testdata/frame/identify_press.transcript"

// display answers IDENTIFY and PRESS like a code display whose clock reads
// 59 s past the epoch (RFC 6238 Appendix B, SHA1, 6 digits).
func display(_ context.Context, cmd byte, _ []byte) (frame.Status, []byte) {
	var b []byte
	var err error
	switch cmd {
	case frame.CmdIdentify:
		b, err = (&frame.Identity{Kind: frame.KindCodeDisplay, Serial: "CD0000001", Model: "AB-100", Firmware: "1.2.0",
			ProtocolVersion: 1, Digits: 6, Period: 30, Algorithm: otp.SHA1}).Encode()
	case frame.CmdPress:
		b, err = (&frame.PressResponse{Step: 1, SecondsLeft: 1, Digits: "287082"}).Encode()
	default:
		return frame.StatusUnknownCommand, nil
	}
	if err != nil {
		panic(err)
	}
	return frame.StatusOK, b
}

func identifyPress(t *testing.T, h *frame.Host) {
	t.Helper()
	ctx := context.Background()
	info, err := h.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != device.KindCodeDisplay || info.Serial != "CD0000001" || info.Period != 30*time.Second {
		t.Fatalf("info %+v", info)
	}
	code, err := h.Press(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code.Digits != "287082" || code.Step != 1 {
		t.Fatalf("code %+v", code)
	}
}

func record(t *testing.T) {
	a, b := frametest.Pipe()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- frame.Serve(ctx, b, frame.HandlerFunc(display)) }()
	rec := frametest.Record(a)
	h := frame.NewHost(rec, &frame.Options{Rand: bytes.NewReader([]byte{0})})
	identifyPress(t, h)
	h.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := rec.Save(transcript, "CDP/1 host side: IDENTIFY then PRESS with a code display (SEQ 0 and 1).\n"+
		"Recorded by device/frame/frametest: go test -run TestIdentifyPressTranscript -update"); err != nil {
		t.Fatal(err)
	}
}

// TestIdentifyPressTranscript plays the recorded exchange back against a
// Host: the Host must write exactly the recorded frames.
func TestIdentifyPressTranscript(t *testing.T) {
	if *update {
		record(t)
	}
	p, err := frametest.Load(transcript)
	if err != nil {
		t.Fatal(err)
	}
	h := frame.NewHost(p, &frame.Options{Rand: bytes.NewReader([]byte{0})})
	identifyPress(t, h)
	h.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTranscriptMismatch: a Host that numbers its frames differently fails
// with the expected and the actual bytes.
func TestTranscriptMismatch(t *testing.T) {
	p, err := frametest.Load(transcript)
	if err != nil {
		t.Fatal(err)
	}
	h := frame.NewHost(p, &frame.Options{Rand: bytes.NewReader([]byte{1}), Retries: -1})
	defer h.Close()
	_, err = h.Identify(context.Background())
	if err == nil || !strings.Contains(err.Error(), "write differs from the transcript") ||
		!strings.Contains(err.Error(), "got  > a5000001") || !strings.Contains(err.Error(), "want > a5000000") {
		t.Fatalf("err %v", err)
	}
	if err := p.Close(); err == nil {
		t.Fatal("Close after a mismatch succeeded")
	}
}
