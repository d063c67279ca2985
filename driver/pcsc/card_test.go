package pcsc

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
)

// selectFIDO is SELECT of the FIDO applet (CTAP 2.1 §11.3.3).
var selectFIDO = []byte{0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01}

// TestFakeRawCard: a raw Card sends APDUs as they are and returns the
// card's answers with their status words, all inside one transaction; a
// card that answers with nothing is gone.
func TestFakeRawCard(t *testing.T) {
	fs, pc, _ := fakeSetup(t, newSim(t, "raw card"), apdu.CardOptions{}, Options{})
	fs.calls()
	cd, err := pc.OpenCard(testCtx(t), fakeReaderName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cd.ATR()) == 0 {
		t.Error("no ATR")
	}
	// Before SELECT the card knows no CTAP instruction.
	resp, err := cd.Transmit(testCtx(t), []byte{0x80, 0x10, 0x00, 0x00, 0x01, 0x04})
	if err != nil || !bytes.Equal(resp, []byte{0x6D, 0x00}) {
		t.Fatalf("NFCCTAP_MSG before SELECT: % X, %v", resp, err)
	}
	resp, err = cd.Transmit(testCtx(t), selectFIDO)
	if err != nil || !bytes.Equal(resp, append([]byte("U2F_V2"), 0x90, 0x00)) {
		t.Fatalf("SELECT: % X, %v", resp, err)
	}
	if err := cd.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"connect", "begin", "transmit 80 10", "transmit 00 A4", "end", "disconnect"}
	got := slices.DeleteFunc(fs.calls(), func(s string) bool { return s == "establish" || s == "release" || s == "status" })
	if !slices.Equal(got, want) {
		t.Errorf("PC/SC calls %q, want %q", got, want)
	}
	if _, err := cd.Transmit(testCtx(t), selectFIDO); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Transmit after Close: %v", err)
	}

	cd, err = pc.OpenCard(testCtx(t), fakeReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	fs.onTransmit = func(string, []byte) error { return errEmptyAnswerFake }
	if _, err := cd.Transmit(testCtx(t), selectFIDO); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("an empty answer: %v, want device.ErrRemoved", err)
	}
	fs.onTransmit = nil
	if _, err := cd.Transmit(testCtx(t), selectFIDO); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("after the card left: %v, want device.ErrRemoved", err)
	}
}
