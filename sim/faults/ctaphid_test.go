package faults_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/ctaphid/ctaphidtest"
	"github.com/authbench/authbench/sim/chip"
)

// hidRig is a CTAPHID host (ctap2.Client over ctaphid.Conn) and a simulated
// chip served by ctaphid.Serve, joined by an in-memory report pipe with
// faults on the host's side of it.
type hidRig struct {
	client *ctap2.Client
	conn   *ctaphid.Conn
	faulty *ctaphidtest.Faulty
}

// hidTimeout is how long a device waits for the next packet of a request
// (CTAP 2.1 §11.2.5.2 transaction timeout) in these rigs: short, so that a
// lost continuation is reported quickly.
const hidTimeout = 20 * time.Millisecond

func newHIDRig(t *testing.T, c *chip.Chip, keepalive time.Duration, faults ...ctaphidtest.Fault) *hidRig {
	t.Helper()
	host, dev := ctaphid.NewPipe()
	ctx, cancel := context.WithCancel(context.Background())
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- ctaphid.Serve(ctx, dev, c, ctaphid.ServeOptions{MessageTimeout: hidTimeout, KeepaliveInterval: keepalive})
	}()
	f := ctaphidtest.NewFaulty(host, faults...)
	octx, ocancel := context.WithTimeout(context.Background(), guard)
	defer ocancel()
	conn, err := ctaphid.Open(octx, f, ctaphid.Options{CancelWait: 50 * time.Millisecond, Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 1024))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-serveErr; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
		f.Close()
	})
	return &hidRig{client: ctap2.NewClient(conn), conn: conn, faulty: f}
}

// hidCode matches a CTAPHID_ERROR from the device with the given code.
func hidCode(code ctaphid.ErrorCode) func(error) bool {
	return func(err error) bool {
		var e *ctaphid.Error
		return errors.As(err, &e) && e.Code == code
	}
}

// ctapStatus matches a CTAP2 status error; code 0 matches any status.
func ctapStatus(code byte) func(error) bool {
	return func(err error) bool {
		var e *ctap2.StatusError
		return errors.As(err, &e) && (code == 0 || e.Code == code)
	}
}

// TestCTAPHID: faults on single reports of a makeCredential exchange, and
// what ctap2.Client over ctaphid.Conn reports.
//
// Report numbers count per direction from the start of the connection:
// write 1 and read 1 are the INIT exchange of ctaphid.Open; the request
// (317 bytes) is writes 2 to 7, an initialization packet and five
// continuations; the answer (915 bytes) is reads 2 to 17. The device sends
// no KEEPALIVE in these rows (the chip does not wait for a touch and the
// interval is long), so the numbering is fixed.
//
// CTAPHID has no retransmission (CTAP 2.1 §11.2.4): a host that loses or
// mistrusts part of an answer can only give up on the transaction. After
// every failure the next request must work again (the host resynchronizes
// its channel with INIT, §11.2.5.3), which each row checks with
// authenticatorGetInfo.
func TestCTAPHID(t *testing.T) {
	type F = ctaphidtest.Fault
	w := func(n int, k ctaphidtest.FaultKind) F { return F{Dir: ctaphidtest.Writes, N: n, Kind: k} }
	r := func(n int, k ctaphidtest.FaultKind) F { return F{Dir: ctaphidtest.Reads, N: n, Kind: k} }
	tests := []struct {
		name  string
		fault F
		wait  time.Duration // the host's deadline for MakeCredential
		is    error         // what the host's error wraps; nil: success
		as    func(error) bool
	}{
		{"no fault", F{}, guard, nil, nil},

		// Request lost or damaged on the way to the device.

		// Without its initialization packet the device ignores the
		// continuations (§11.2.4: they belong to no message) and never
		// answers; the host's deadline ends the wait.
		{"request init packet lost", w(2, ctaphidtest.Drop), 200 * time.Millisecond, context.DeadlineExceeded, nil},
		// The device sees continuation 2 where it expects 1 and answers
		// ERR_INVALID_SEQ at once (§11.2.4 "sequence").
		{"request continuation lost", w(4, ctaphidtest.Drop), guard, device.ErrProtocol, hidCode(ctaphid.CodeInvalidSeq)},
		// The last continuation never comes: the device's transaction
		// timer expires and it answers ERR_MSG_TIMEOUT (§11.2.5.2).
		{"request last continuation lost", w(7, ctaphidtest.Drop), guard, device.ErrTimeout, hidCode(ctaphid.CodeMsgTimeout)},
		// A repeated continuation has the SEQ of the one before it:
		// ERR_INVALID_SEQ, as for a lost one.
		{"request continuation repeated", w(4, ctaphidtest.Duplicate), guard, device.ErrProtocol, hidCode(ctaphid.CodeInvalidSeq)},
		{"request continuations swapped", w(4, ctaphidtest.Reorder), guard, device.ErrProtocol, hidCode(ctaphid.CodeInvalidSeq)},
		// USB has its own CRC, so this is a host or device bug rather than
		// noise; CTAPHID cannot see it, the CTAP2 layer can: the garbled
		// CBOR is refused with a CTAP2 status.
		{"request payload corrupted", F{Dir: ctaphidtest.Writes, N: 2, Kind: ctaphidtest.Corrupt, Byte: 10}, guard, nil, ctapStatus(0)},
		// On a channel the device never allocated, the request gets
		// ERR_INVALID_CHANNEL on that channel (§11.2.3), which the host does
		// not listen to; its continuations are ignored. The host waits
		// until its deadline.
		{"request on a wrong channel", w(2, ctaphidtest.WrongCID), 200 * time.Millisecond, context.DeadlineExceeded, nil},
		// The device's transaction timer (here 20 ms) runs between packets;
		// a continuation held longer gets ERR_MSG_TIMEOUT (§11.2.5.2).
		{"request continuation late", F{Dir: ctaphidtest.Writes, N: 4, Kind: ctaphidtest.Delay, Delay: 100 * time.Millisecond}, guard, device.ErrTimeout, hidCode(ctaphid.CodeMsgTimeout)},

		// Answer lost or damaged on the way to the host.

		// Continuations without their initialization packet are ignored;
		// the host waits until its deadline.
		{"answer init packet lost", r(2, ctaphidtest.Drop), 200 * time.Millisecond, context.DeadlineExceeded, nil},
		// A gap in the SEQ numbers is reported at once as a protocol error.
		{"answer continuation lost", r(5, ctaphidtest.Drop), guard, device.ErrProtocol, nil},
		// Nothing tells the host that the last piece is missing: it waits
		// until its deadline.
		{"answer last continuation lost", r(17, ctaphidtest.Drop), 200 * time.Millisecond, context.DeadlineExceeded, nil},
		// A repeated initialization packet restarts the message in the
		// middle (§11.2.4: only INIT and CANCEL may interrupt one); a
		// repeated continuation has a stale SEQ. Both are protocol errors:
		// the host cannot tell a repeat from a new packet, so it does not
		// guess.
		{"answer init packet repeated", r(2, ctaphidtest.Duplicate), guard, device.ErrProtocol, nil},
		{"answer continuation repeated", r(5, ctaphidtest.Duplicate), guard, device.ErrProtocol, nil},
		{"answer continuations swapped", r(5, ctaphidtest.Reorder), guard, device.ErrProtocol, nil},
		// Byte 7 of the initialization packet is the CTAP2 status byte: it
		// arrives as 0xFF, which the host reports as the device's status.
		{"answer status byte corrupted", F{Dir: ctaphidtest.Reads, N: 2, Kind: ctaphidtest.Corrupt, Byte: 7}, guard, nil, ctapStatus(0xFF)},
		// An answer on another channel is another program's (§11.2.3): the
		// host ignores it and waits until its deadline.
		{"answer on a wrong channel", r(2, ctaphidtest.WrongCID), 200 * time.Millisecond, context.DeadlineExceeded, nil},
		{"answer late, within the deadline", F{Dir: ctaphidtest.Reads, N: 2, Kind: ctaphidtest.Delay, Delay: 30 * time.Millisecond}, guard, nil, nil},
		// A late answer is stale once the host gave up; it arrives while
		// the host resynchronizes and is ignored.
		{"answer later than the deadline", F{Dir: ctaphidtest.Reads, N: 2, Kind: ctaphidtest.Delay, Delay: 300 * time.Millisecond}, 100 * time.Millisecond, context.DeadlineExceeded, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			rig := newHIDRig(t, newChip(t, "ctaphid", chip.Options{}), time.Hour, tt.fault)
			ctx, cancel := context.WithTimeout(context.Background(), tt.wait)
			defer cancel()
			att, err := rig.client.MakeCredential(ctx, registration())
			switch {
			case tt.is == nil && tt.as == nil:
				if err != nil || att == nil || att.Format != ctap2.FormatPacked {
					t.Fatalf("MakeCredential: %v, want success", err)
				}
			case tt.is != nil && !errors.Is(err, tt.is), tt.as != nil && (err == nil || !tt.as(err)):
				t.Fatalf("MakeCredential: %v, want an error wrapping %v of the row's type", err, tt.is)
			}
			if tt.is == context.DeadlineExceeded && ctx.Err() == nil {
				t.Fatalf("MakeCredential returned %v before its deadline", err)
			}
			// The host recovers: the next request on the same Conn works.
			ictx, icancel := context.WithTimeout(context.Background(), guard)
			defer icancel()
			if info, err := rig.client.Info(ictx); err != nil || len(info.Versions) == 0 {
				t.Fatalf("Info after the fault: %v", err)
			}
		})
	}
}

// TestCTAPHIDButtonNeverPressed: the chip waits for a touch that never
// comes. The host reports the device's KEEPALIVE packets with status
// UPNEEDED (CTAP 2.1 §11.2.9.1.7) while it waits, and returns when its
// deadline passes, after sending CTAPHID_CANCEL; the chip then answers
// CTAP2_ERR_KEEPALIVE_CANCEL and the channel is free for the next request.
func TestCTAPHIDButtonNeverPressed(t *testing.T) {
	noLeaks(t)
	rig := newHIDRig(t, newChip(t, "never pressed", chip.Options{Presence: chip.Never}), 10*time.Millisecond)
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
		t.Fatalf("Info after the cancelled request: %v", err)
	}
}
