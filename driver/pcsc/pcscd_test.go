//go:build cgo

package pcsc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/vicc"
	"github.com/ebfe/scard"
)

// Tests through the real PC/SC stack: libpcsclite, a private pcscd and its
// vpcd driver, and simulated cards connected with sim/vicc.

// TestCodesMatchPCSCLite checks this package's codes against libpcsclite's.
func TestCodesMatchPCSCLite(t *testing.T) {
	pairs := []struct {
		ours   Code
		theirs scard.Error
	}{
		{CodeCancelled, scard.ErrCancelled},
		{CodeInvalidHandle, scard.ErrInvalidHandle},
		{CodeUnknownReader, scard.ErrUnknownReader},
		{CodeTimeout, scard.ErrTimeout},
		{CodeSharingViolation, scard.ErrSharingViolation},
		{CodeNoSmartcard, scard.ErrNoSmartcard},
		{CodeCommError, scard.ErrCommError},
		{CodeNotTransacted, scard.ErrNotTransacted},
		{CodeReaderUnavailable, scard.ErrReaderUnavailable},
		{CodeNoService, scard.ErrNoService},
		{CodeServiceStopped, scard.ErrServiceStopped},
		{CodeNoReaders, scard.ErrNoReadersAvailable},
		{CodeCommDataLost, scard.ErrCommDataLost},
		{CodeUnresponsiveCard, scard.ErrUnresponsiveCard},
		{CodeUnpoweredCard, scard.ErrUnpoweredCard},
		{CodeResetCard, scard.ErrResetCard},
		{CodeRemovedCard, scard.ErrRemovedCard},
	}
	for _, p := range pairs {
		if uint32(p.ours) != uint32(p.theirs) {
			t.Errorf("%s = %#x, libpcsclite says %#x", p.ours, uint32(p.ours), uint32(p.theirs))
		}
	}
	if stateInUse != uint32(scard.StateInuse) || statePresent != uint32(scard.StatePresent) || stateEmpty != uint32(scard.StateEmpty) {
		t.Error("state flags differ from libpcsclite's")
	}
}

func TestPCSCReaders(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{})
	rs, err := pc.Readers(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range rs {
		names[r.Name] = true
	}
	for _, want := range pcscdtest.Readers {
		if !names[want] {
			t.Errorf("reader %q missing from %+v", want, rs)
		}
	}
}

func TestPCSCWaitInsertRemove(t *testing.T) {
	d := pcscdTest(t)
	pc := openContext(t, Options{})
	ctx := testCtx(t)
	known := waitFor(t, pc, pcscdtest.Readers[0], false)

	card := apdu.NewCard(newSim(t, "wait"), apdu.CardOptions{})
	defer card.Close()
	vctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := vicc.New(d.Addrs[0], card, vicc.Options{})
	done := make(chan error, 1)
	go func() { done <- v.Run(vctx) }()

	events := func(want EventKind) {
		t.Helper()
		for {
			now, err := pc.Wait(ctx, known)
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			ev := Diff(known, now)
			known = now
			for _, e := range ev {
				if e.Reader == pcscdtest.Readers[0] && e.Kind == want {
					if want == CardInserted && string(e.ATR) != string(vicc.DefaultATR) {
						t.Fatalf("inserted card's ATR % X", e.ATR)
					}
					return
				}
				t.Logf("event %v", e)
			}
		}
	}
	events(CardInserted)
	cancel()
	<-done
	events(CardRemoved)

	// Wait ends with its context.
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer wcancel()
	if _, err := pc.Wait(wctx, known); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("Wait with nothing happening: %v", err)
	}
}

// apduLog records the header of every APDU a vicc card gets.
type apduLog struct {
	mu   sync.Mutex
	seen map[[2]byte]int
}

func (l *apduLog) fault(n int, b []byte) vicc.Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[[2]byte]int{}
	}
	if len(b) >= 2 {
		l.seen[[2]byte{b[0], b[1]}]++
	}
	return vicc.FaultNone
}

func (l *apduLog) count(cla, ins byte) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[[2]byte{cla, ins}]
}

func openPCSCChip(t *testing.T, pc *Context, reader string) *Chip {
	t.Helper()
	ch, err := pc.OpenChip(testCtx(t), reader)
	if err != nil {
		t.Fatalf("OpenChip: %v", err)
	}
	t.Cleanup(func() {
		if err := ch.Close(); err != nil {
			t.Errorf("Chip.Close: %v", err)
		}
	})
	return ch
}

func TestPCSCChip(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{})
	var log apduLog
	s := insert(t, pc, 0, newSim(t, "pcscd ctap2"), apdu.CardOptions{}, vicc.Options{Fault: log.fault})
	ch := openPCSCChip(t, pc, s.reader)
	if ch.Reader() != s.reader || string(ch.ATR()) != string(vicc.DefaultATR) || ch.Version() != apdu.VersionU2F {
		t.Fatalf("reader %q, ATR % X, version %q", ch.Reader(), ch.ATR(), ch.Version())
	}
	checkCTAP2(t, ch)
	if log.count(0x90, apdu.INSNFCCTAPMsg) == 0 || log.count(0x00, apdu.INSGetResponse) == 0 {
		t.Fatalf("chained pieces: %d, GET RESPONSE: %d; want both", log.count(0x90, 0x10), log.count(0x00, 0xC0))
	}
}

func TestPCSCU2FOnly(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{U2FPollInterval: 5 * time.Millisecond})
	s := insert(t, pc, 0, newProfileSim(t, "pcscd u2f", chip.ProfileU2F), apdu.CardOptions{}, vicc.Options{})
	checkU2FOnly(t, openPCSCChip(t, pc, s.reader))
}

func TestPCSCRemovedMidCommand(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{})
	var stop atomic.Pointer[context.CancelFunc]
	var from atomic.Int64
	fault := func(n int, b []byte) vicc.Fault {
		if f := from.Load(); f > 0 && int64(n) >= f {
			(*stop.Load())() // no reconnect: the card stays out
			return vicc.FaultRemove
		}
		return vicc.FaultNone
	}
	s := insert(t, pc, 0, newSim(t, "pcscd removal"), apdu.CardOptions{}, vicc.Options{Fault: fault})
	stop.Store(&s.cancel)
	ch := openPCSCChip(t, pc, s.reader)
	from.Store(int64(s.conn.Stats().APDUs) + 3) // the third piece of the chained request

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := ch.MakeCredential(ctx, bigMakeCredential(t))
	var pe *Error
	if !errors.Is(err, device.ErrRemoved) || !errors.As(err, &pe) || pe.Reader != s.reader {
		t.Fatalf("MakeCredential with the card pulled: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the error came only after the deadline: %v", err)
	}
	if _, err := ch.Info(testCtx(t)); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("Info after removal: %v", err)
	}
	s.remove()
}

// TestPCSCPulledAndBack: the card leaves in the middle of a command and is
// back (vicc reconnects at once) before pcscd looks at the reader again, so
// pcscd never reports it gone; vpcd answers the APDU with no bytes. The
// chip reports the removal (device.ErrRemoved), not a malformed response
// APDU, without waiting for a removal check, and every later command says
// the same at once: what the card was doing is lost.
func TestPCSCPulledAndBack(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{RemovalCheck: time.Hour})
	var at atomic.Int64
	fault := func(n int, b []byte) vicc.Fault {
		if a := at.Load(); a > 0 && int64(n) == a {
			at.Store(0)
			return vicc.FaultRemove // vicc.Conn.Run reconnects at once
		}
		return vicc.FaultNone
	}
	s := insert(t, pc, 0, newSim(t, "pcscd pulled and back"), apdu.CardOptions{}, vicc.Options{Fault: fault, Retry: time.Millisecond})
	ch := openPCSCChip(t, pc, s.reader)
	at.Store(int64(s.conn.Stats().APDUs) + 3) // the third piece of the chained request

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := ch.MakeCredential(ctx, bigMakeCredential(t))
	var pe *Error
	if !errors.Is(err, device.ErrRemoved) || !errors.As(err, &pe) || pe.Reader != s.reader {
		t.Fatalf("MakeCredential with the card pulled: %v", err)
	}
	var fe *apdu.FormatError
	if errors.As(err, &fe) {
		t.Fatalf("the removal is reported as a malformed APDU: %v", err)
	}
	for range 3 {
		if _, err := ch.Info(ctx); !errors.Is(err, device.ErrRemoved) {
			t.Fatalf("Info after the removal: %v", err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the removal was reported only at the deadline")
	}
}

func TestPCSCMuteCard(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{})
	var muteAt atomic.Int64
	fault := func(n int, b []byte) vicc.Fault {
		if m := muteAt.Load(); m > 0 && int64(n) >= m {
			return vicc.FaultMute
		}
		return vicc.FaultNone
	}
	s := insert(t, pc, 0, newSim(t, "pcscd mute"), apdu.CardOptions{}, vicc.Options{Fault: fault})
	ch := openPCSCChip(t, pc, s.reader)
	muteAt.Store(int64(s.conn.Stats().APDUs) + 1)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := ch.Info(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("Info with a mute card: %v", err)
	}
	// Failure guard only: the call must have returned near its deadline,
	// not when the card was unplugged below.
	if s.conn.Stats().Connects != 1 {
		t.Fatal("vicc reconnected during the test")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := ch.Info(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Info while the first APDU is still with pcscd: %v", err)
	}
	// Unplugging the card ends the stuck APDU; the chip then reports the removal.
	s.remove()
	if _, err := ch.Info(testCtx(t)); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("Info after the mute card left: %v", err)
	}
}

func TestPCSCNoCard(t *testing.T) {
	pcscdTest(t)
	pc := openContext(t, Options{})
	waitFor(t, pc, pcscdtest.Readers[1], false)
	_, err := pc.OpenChip(testCtx(t), pcscdtest.Readers[1])
	var pe *Error
	if !errors.Is(err, device.ErrNotFound) || !errors.As(err, &pe) || pe.Code != CodeNoSmartcard || pe.Op != "connect" {
		t.Fatalf("OpenChip on an empty reader: %v", err)
	}
	_, err = pc.OpenChip(testCtx(t), "No Such Reader 00 00")
	if !errors.Is(err, device.ErrNotFound) || !errors.As(err, &pe) || pe.Code != CodeUnknownReader {
		t.Fatalf("OpenChip on an unknown reader: %v", err)
	}
}

// plainCard is a smart card without a FIDO applet.
type plainCard struct{}

func (plainCard) Process(ctx context.Context, b []byte) []byte { return []byte{0x6A, 0x82} }
func (plainCard) Reset()                                       {}

func TestPCSCNotFIDO(t *testing.T) {
	d := pcscdTest(t)
	pc := openContext(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	v := vicc.New(d.Addrs[0], plainCard{}, vicc.Options{})
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		waitFor(t, pc, pcscdtest.Readers[0], false)
	}()
	<-v.Ready()
	waitFor(t, pc, pcscdtest.Readers[0], true)
	_, err := pc.OpenChip(testCtx(t), pcscdtest.Readers[0])
	want := `card in "` + pcscdtest.Readers[0] + `" is not a FIDO authenticator`
	if !errors.Is(err, device.ErrNotFound) || err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("OpenChip on a card without FIDO applet: %v", err)
	}
}

// TestPCSCOtherPrograms plays other PC/SC programs sharing the card: one
// selects another applet, one resets the card. The chip selects its applet
// again, or reconnects, and goes on.
func TestPCSCOtherPrograms(t *testing.T) {
	pcscdTest(t)
	var logs logBuffer
	pc := openContext(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	s := insert(t, pc, 0, newSim(t, "pcscd others"), apdu.CardOptions{}, vicc.Options{})
	ch := openPCSCChip(t, pc, s.reader)
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	other, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()

	card, err := other.Connect(s.reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := card.Transmit([]byte{0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatalf("Info after another program selected another applet: %v", err)
	}

	if err := card.Disconnect(scard.ResetCard); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatalf("Info after another program reset the card: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "reconnected") || !strings.Contains(l, "applet selected again") {
		t.Fatalf("no reconnect and reselect in the log:\n%s", l)
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
