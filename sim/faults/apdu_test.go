package faults_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/sim/chip"
)

// wire is the Transmitter between apdu.Client and apdu.Card. It counts
// commands and answer bytes, and can break the line: from command failAt
// on, Transmit returns fail (with the card never seeing the command), or,
// when cut is set, the card's answer cut to its first byte.
type wire struct {
	card *apdu.Card

	mu          sync.Mutex
	n           int
	byINS       map[byte]int
	answerBytes int // data bytes of answers to NFCCTAP_MSG, NFCCTAP_GETRESPONSE and GET RESPONSE, without 9100 updates
	failAt      int
	fail        error
	cut         bool
	after       int                // call cancel once this many commands went through
	cancel      context.CancelFunc // see after
}

func (w *wire) Transmit(cmd []byte) ([]byte, error) {
	w.mu.Lock()
	w.n++
	n := w.n
	if w.byINS == nil {
		w.byINS = map[byte]int{}
	}
	if len(cmd) >= 2 {
		w.byINS[cmd[1]]++
	}
	failing := w.failAt > 0 && n >= w.failAt
	if w.after > 0 && n == w.after {
		w.cancel()
	}
	w.mu.Unlock()
	if failing && w.fail != nil {
		return nil, fmt.Errorf("reader: %w", w.fail)
	}
	resp := w.card.Process(context.Background(), cmd)
	if failing && w.cut {
		return resp[:1], nil
	}
	if len(cmd) >= 2 && (cmd[1] == apdu.INSNFCCTAPMsg || cmd[1] == apdu.INSNFCCTAPGetResponse || cmd[1] == apdu.INSGetResponse) &&
		len(resp) >= 2 && resp[len(resp)-2] != 0x91 {
		w.mu.Lock()
		w.answerBytes += len(resp) - 2
		w.mu.Unlock()
	}
	return resp, nil
}

func (w *wire) count(ins byte) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byINS[ins]
}

func (w *wire) commands() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// apduRig is a CTAP2 host (ctap2.Client over apdu.Client) and a simulated
// chip behind apdu.Card, with the FIDO applet selected.
type apduRig struct {
	client *ctap2.Client
	apdu   *apdu.Client
	wire   *wire
}

func newAPDURig(t *testing.T, c *chip.Chip, co apdu.CardOptions, cl apdu.ClientOptions) *apduRig {
	t.Helper()
	card := apdu.NewCard(c, co)
	t.Cleanup(func() {
		if err := card.Close(); err != nil {
			t.Errorf("card.Close: %v", err)
		}
	})
	w := &wire{card: card}
	ac := apdu.NewClient(w, cl)
	if v, err := ac.Select(context.Background()); err != nil || v != apdu.VersionU2F {
		t.Fatalf("Select: %q, %v", v, err)
	}
	return &apduRig{client: ctap2.NewClient(ac), apdu: ac, wire: w}
}

// TestAPDU: what ctap2.Client over apdu.Client reports when the card, or the
// line to it, misbehaves during a makeCredential (CTAP 2.1 §11.3). The
// request (317 bytes) goes as two chained pieces; the answer (about 915
// bytes) comes in pieces behind 61xx.
func TestAPDU(t *testing.T) {
	tests := []struct {
		name  string
		card  apdu.CardOptions
		poll  time.Duration // ClientOptions.PollInterval; 0: -1 (no pause)
		wait  time.Duration // the host's deadline; 0: guard
		setup func(*wire, context.CancelFunc)
		is    error // what the error wraps; nil: success
		as    func(error) bool
		check func(t *testing.T, w *wire, keepalives []ctap2.KeepaliveStatus)
	}{
		{name: "no fault", check: func(t *testing.T, w *wire, _ []ctap2.KeepaliveStatus) {
			if n := w.count(apdu.INSGetResponse); n != (w.answerBytes-1)/256 {
				t.Errorf("%d GET RESPONSE for %d bytes", n, w.answerBytes)
			}
		}},
		// 61xx storm: the card hands the answer out one byte at a time,
		// though the host asks for 256 (ISO/IEC 7816-4 §7.6.1 allows it).
		// The host keeps asking and gets the whole answer.
		{name: "61xx storm: one byte per GET RESPONSE", card: apdu.CardOptions{ChunkLimit: 1},
			check: func(t *testing.T, w *wire, _ []ctap2.KeepaliveStatus) {
				if n := w.count(apdu.INSGetResponse); n != w.answerBytes-1 || n < 800 {
					t.Errorf("%d GET RESPONSE for %d bytes, want one per byte after the first", n, w.answerBytes)
				}
			}},
		// The host's context ends in the middle of a 61xx storm: it stops
		// at once, not one more command goes to the card.
		{name: "61xx storm: host gives up", card: apdu.CardOptions{ChunkLimit: 1},
			setup: func(w *wire, cancel context.CancelFunc) { w.after, w.cancel = 200, cancel },
			is:    context.Canceled,
			check: func(t *testing.T, w *wire, _ []ctap2.KeepaliveStatus) {
				if n := w.commands(); n != 200 {
					t.Errorf("%d commands, want 200: none after the cancel", n)
				}
			}},
		// 9100 storm: the card says "still processing" a hundred times
		// before a quick answer (CTAP 2.1 §11.3.4 allows any number). The
		// host reports each as a keepalive and polls on.
		{name: "9100 storm: 100 updates", card: apdu.CardOptions{UpdateStorm: 100},
			check: func(t *testing.T, w *wire, ka []ctap2.KeepaliveStatus) {
				if len(ka) < 100 || w.count(apdu.INSNFCCTAPGetResponse) != len(ka) {
					t.Errorf("%d keepalives, %d polls; want at least 100 of each", len(ka), w.count(apdu.INSNFCCTAPGetResponse))
				}
				for _, s := range ka {
					if s != ctap2.StatusProcessing {
						t.Errorf("keepalive %d, want PROCESSING", s)
					}
				}
			}},
		// An endless 9100 storm: only the host's deadline ends it.
		{name: "9100 storm: endless", card: apdu.CardOptions{UpdateStorm: -1}, poll: time.Millisecond, wait: 150 * time.Millisecond,
			is: context.DeadlineExceeded,
			check: func(t *testing.T, w *wire, ka []ctap2.KeepaliveStatus) {
				if len(ka) == 0 {
					t.Error("no keepalive reported")
				}
			}},
		// The card is pulled after the first piece of the chained request:
		// the reader's error reaches the caller, and the host does not try
		// again.
		{name: "card removed mid-command",
			setup: func(w *wire, _ context.CancelFunc) { w.failAt, w.fail = 2, device.ErrRemoved },
			is:    device.ErrRemoved,
			check: func(t *testing.T, w *wire, _ []ctap2.KeepaliveStatus) {
				if n := w.commands(); n != 2 {
					t.Errorf("%d commands, want 2: nothing after the failure", n)
				}
			}},
		// The answer to the first GET RESPONSE is cut inside its status
		// word: no response APDU, so a protocol error, not a guess.
		{name: "answer cut short", setup: func(w *wire, _ context.CancelFunc) { w.failAt, w.cut = 3, true },
			is: device.ErrProtocol, as: func(err error) bool { var fe *apdu.FormatError; return errors.As(err, &fe) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			poll := tt.poll
			if poll == 0 {
				poll = -1
			}
			rig := newAPDURig(t, newChip(t, "apdu", chip.Options{}), tt.card, apdu.ClientOptions{PollInterval: poll})
			wait := tt.wait
			if wait == 0 {
				wait = guard
			}
			ka := newKeepalives()
			ctx, cancel := context.WithTimeout(ctap2.WithKeepalive(context.Background(), ka.record), wait)
			defer cancel()
			rig.wire.mu.Lock()
			rig.wire.n, rig.wire.byINS, rig.wire.answerBytes = 0, nil, 0 // count from here, after SELECT
			rig.wire.mu.Unlock()
			if tt.setup != nil {
				tt.setup(rig.wire, cancel)
			}
			att, err := rig.client.MakeCredential(ctx, registration())
			switch {
			case tt.is == nil && tt.as == nil:
				if err != nil || att.Format != ctap2.FormatPacked {
					t.Fatalf("MakeCredential: %v, want success", err)
				}
			case tt.is != nil && !errors.Is(err, tt.is), tt.as != nil && (err == nil || !tt.as(err)):
				t.Fatalf("MakeCredential: %v, want an error wrapping %v of the row's type", err, tt.is)
			}
			if tt.is == context.DeadlineExceeded && ctx.Err() == nil {
				t.Fatalf("MakeCredential returned %v before its deadline", err)
			}
			if tt.check != nil {
				tt.check(t, rig.wire, ka.seen())
			}
		})
	}
}

// TestAPDUButtonNeverPressed: the chip waits for a touch that never comes.
// The card answers 9100 with status UPNEEDED (CTAP 2.1 §11.3.4), the host
// reports it and polls until its deadline, then stops. The next command
// cancels the operation on the card, and the card works on.
func TestAPDUButtonNeverPressed(t *testing.T) {
	noLeaks(t)
	rig := newAPDURig(t, newChip(t, "never pressed", chip.Options{Presence: chip.Never}),
		apdu.CardOptions{StatusAfter: 10 * time.Millisecond}, apdu.ClientOptions{PollInterval: 5 * time.Millisecond})
	ka := newKeepalives()
	ctx, cancel := context.WithTimeout(ctap2.WithKeepalive(context.Background(), ka.record), 200*time.Millisecond)
	defer cancel()
	_, err := rig.client.MakeCredential(ctx, registration())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("MakeCredential: %v, want context.DeadlineExceeded", err)
	}
	checkUPNeeded(t, ka.seen())
	ictx, icancel := context.WithTimeout(context.Background(), guard)
	defer icancel()
	if _, err := rig.client.Info(ictx); err != nil {
		t.Fatalf("Info after the abandoned request: %v", err)
	}
}
