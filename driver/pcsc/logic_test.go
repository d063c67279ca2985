package pcsc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/sim/chip"
)

// Tests of the logic above the seam, with the fake PC/SC of fake_test.go.

const fakeReaderName = "Fake Reader 00"

// fakeSetup returns a fake PC/SC with one reader holding a card that serves
// h, and a Context on it. Everything is closed, and checked for leaks, at
// cleanup.
func fakeSetup(t *testing.T, h apdu.Handler, co apdu.CardOptions, opts Options) (*fakeSystem, *Context, *apdu.Card) {
	t.Helper()
	noLeaks(t)
	fs := newFakeSystem()
	fs.addReader(fakeReaderName)
	var card *apdu.Card
	if h != nil {
		card = apdu.NewCard(h, co)
		fs.insert(fakeReaderName, card)
	}
	opts.sys = fs
	pc, err := Open(testCtx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pc.Close(); err != nil {
			t.Errorf("Context.Close: %v", err)
		}
		if card != nil {
			card.Close()
		}
		if c, k := fs.open(); c != 0 || k != 0 {
			t.Errorf("%d PC/SC contexts and %d card handles left open", c, k)
		}
	})
	return fs, pc, card
}

func openFakeChip(t *testing.T, pc *Context) *Chip {
	t.Helper()
	ch, err := pc.OpenChip(testCtx(t), fakeReaderName)
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

// settle waits until the chip's worker has done everything queued so far
// (the end of the last transaction is queued, not waited for).
func settle(t *testing.T, ch *Chip) {
	t.Helper()
	if _, err := call(testCtx(t), ch.w, "settle", "", func() (int, error) { return 0, nil }); err != nil {
		t.Fatal(err)
	}
}

func TestErrorSentinels(t *testing.T) {
	tests := []struct {
		op   string
		code Code
		want error
	}{
		{opTransmit, CodeRemovedCard, device.ErrRemoved},
		{opTransmit, CodeNoSmartcard, device.ErrRemoved},
		{opBegin, CodeResetCard, device.ErrRemoved},
		{opTransmit, CodeUnpoweredCard, device.ErrRemoved},
		{opConnect, CodeNoSmartcard, device.ErrNotFound},
		{opConnect, CodeUnknownReader, device.ErrNotFound},
		{opTransmit, CodeReaderUnavailable, device.ErrNotFound},
		{opList, CodeNoReaders, device.ErrNotFound},
		{opEstablish, CodeNoService, ErrNoService},
		{opTransmit, CodeServiceStopped, ErrNoService},
		{opConnect, CodeSharingViolation, device.ErrBusy},
		{opStatus, CodeTimeout, device.ErrTimeout},
		{opTransmit, CodeUnresponsiveCard, device.ErrTimeout},
		{opTransmit, CodeNotTransacted, device.ErrProtocol},
		{opTransmit, CodeCommError, device.ErrProtocol},
		{opTransmit, CodeInvalidParameter, nil},
		{opTransmit, Code(0x80100099), nil},
	}
	sentinels := []error{device.ErrRemoved, device.ErrNotFound, ErrNoService, device.ErrBusy, device.ErrTimeout, device.ErrProtocol}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.op, tt.code), func(t *testing.T) {
			err := wrapCode(tt.op, "R", tt.code)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code || pe.Op != tt.op || pe.Reader != "R" {
				t.Fatalf("wrapCode = %#v", err)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
			if !strings.HasPrefix(err.Error(), "pcsc: "+tt.op+` on "R": `) || !strings.Contains(err.Error(), "SCARD") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestCtxError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), -1)
	defer cancel()
	err := ctxError(opTransmit, "R", ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	err = ctxError(opTransmit, "R", ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, device.ErrTimeout) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestDiff(t *testing.T) {
	atr := []byte{0x3B, 0x00}
	empty := func(n string) Reader { return Reader{Name: n, state: stateEmpty} }
	card := func(n string, counter uint32) Reader {
		return Reader{Name: n, CardPresent: true, ATR: atr, state: counter<<16 | statePresent}
	}
	tests := []struct {
		name     string
		old, new []Reader
		want     string
	}{
		{"nothing", []Reader{empty("A")}, []Reader{empty("A")}, ""},
		{"insert", []Reader{empty("A")}, []Reader{card("A", 1)}, "A: card inserted"},
		{"remove", []Reader{card("A", 1)}, []Reader{empty("A")}, "A: card removed"},
		{"swap", []Reader{card("A", 1)}, []Reader{card("A", 3)}, "A: card removed; A: card inserted"},
		{"in use only", []Reader{card("A", 1)}, []Reader{{Name: "A", CardPresent: true, ATR: atr, InUse: true, state: 1<<16 | statePresent | stateInUse}}, ""},
		{"reader added", nil, []Reader{card("B", 1), empty("A")}, "A: reader added; B: reader added; B: card inserted"},
		{"reader removed", []Reader{card("A", 1), empty("B")}, []Reader{empty("B")}, "A: card removed; A: reader removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range Diff(tt.old, tt.new) {
				got = append(got, e.String())
				if e.Kind == CardInserted && string(e.ATR) != string(atr) {
					t.Errorf("%v without the ATR", e)
				}
			}
			if s := strings.Join(got, "; "); s != tt.want {
				t.Fatalf("Diff = %q, want %q", s, tt.want)
			}
		})
	}
}

func TestWorkerSkipsAbandonedCalls(t *testing.T) {
	noLeaks(t)
	w := newWorker()
	defer func() { w.stop(); <-w.done }()
	release := make(chan struct{})
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := call(ctx, w, "block", "", func() (int, error) {
			close(started)
			<-release
			return 1, nil
		})
		errc <- err
	}()
	<-started
	var ran atomic.Bool
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() {
		_, err := call(ctx2, w, "queued", "", func() (int, error) { ran.Store(true); return 2, nil })
		errc2 <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v", err)
	}
	cancel2()
	if err := <-errc2; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued call: %v", err)
	}
	close(release)
	v, err := call(context.Background(), w, "after", "", func() (int, error) { return 3, nil })
	if v != 3 || err != nil {
		t.Fatalf("call after = %d, %v", v, err)
	}
	if ran.Load() {
		t.Fatal("a call whose context had ended ran anyway")
	}
	w.stop()
	if _, err := call(context.Background(), w, "stopped", "", func() (int, error) { return 4, nil }); !errors.Is(err, device.ErrClosed) {
		t.Fatalf("call after stop: %v", err)
	}
}

func TestFakeCTAP2(t *testing.T) {
	fs, pc, _ := fakeSetup(t, newSim(t, "fake ctap2"), apdu.CardOptions{}, Options{TxLinger: -1})
	ch := openFakeChip(t, pc)
	if got := ch.DeviceInfo(); got.Kind != device.KindChip || got.Transport != "pcsc" || got.Path != fakeReaderName || got.Model != "FIDO2 applet U2F_V2 (ATR 3B80800101)" || ch.Protocols() != device.ProfileFIDO2 {
		t.Fatalf("DeviceInfo = %+v", got)
	}
	settle(t, ch)
	fs.calls()
	checkCTAP2(t, ch)
	settle(t, ch)
	// Every command is one transaction (TxLinger -1), with all its APDUs inside.
	in := false
	sawChaining, sawGetResponse := false, false
	for _, c := range fs.calls() {
		switch {
		case c == "begin":
			if in {
				t.Fatal("nested begin")
			}
			in = true
		case c == "end":
			if !in {
				t.Fatal("end without begin")
			}
			in = false
		case strings.HasPrefix(c, "transmit"):
			if !in {
				t.Fatalf("%s outside a transaction", c)
			}
			sawChaining = sawChaining || c == "transmit 90 10"
			sawGetResponse = sawGetResponse || c == "transmit 00 C0"
		}
	}
	if !sawChaining || !sawGetResponse {
		t.Fatalf("chaining seen: %v, GET RESPONSE seen: %v", sawChaining, sawGetResponse)
	}
}

func TestFakeU2FOnly(t *testing.T) {
	_, pc, _ := fakeSetup(t, newProfileSim(t, "fake u2f", chip.ProfileU2F), apdu.CardOptions{}, Options{U2FPollInterval: time.Millisecond})
	checkU2FOnly(t, openFakeChip(t, pc))
}

// notFIDO is a card without a FIDO applet.
type notFIDO struct{}

func (notFIDO) Transmit([]byte) ([]byte, error) { return []byte{0x6A, 0x82}, nil }

func TestFakeOpenErrors(t *testing.T) {
	fs, pc, _ := fakeSetup(t, nil, apdu.CardOptions{}, Options{})
	if _, err := pc.OpenChip(testCtx(t), fakeReaderName); !errors.Is(err, device.ErrNotFound) || !isCode(err, CodeNoSmartcard) {
		t.Fatalf("empty reader: %v", err)
	}
	if _, err := pc.OpenChip(testCtx(t), "No Such Reader"); !errors.Is(err, device.ErrNotFound) || !isCode(err, CodeUnknownReader) {
		t.Fatalf("unknown reader: %v", err)
	}
	fs.insert(fakeReaderName, notFIDO{})
	_, err := pc.OpenChip(testCtx(t), fakeReaderName)
	var se *apdu.StatusError
	if !errors.Is(err, device.ErrNotFound) || !errors.As(err, &se) || se.SW != 0x6A82 {
		t.Fatalf("card without FIDO applet: %v", err)
	}
	if want := `card in "` + fakeReaderName + `" is not a FIDO authenticator`; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not say %q", err, want)
	}
}

// blocker blocks the transmits of NFCCTAP_MSG while armed, as a card that
// stops answering.
type blocker struct {
	armed   atomic.Bool
	once    sync.Once
	release chan struct{}
	started chan struct{}
}

func newBlocker(t *testing.T) *blocker {
	b := &blocker{release: make(chan struct{}), started: make(chan struct{}, 16)}
	t.Cleanup(b.unblock)
	return b
}

func (b *blocker) hook(reader string, cmd []byte) error {
	if b.armed.Load() && cmd[1] == apdu.INSNFCCTAPMsg {
		b.started <- struct{}{}
		<-b.release
		return CodeNotTransacted
	}
	return nil
}

func (b *blocker) unblock() {
	b.armed.Store(false)
	b.once.Do(func() { close(b.release) })
}

func TestFakeDeadlineDuringTransmit(t *testing.T) {
	want := map[string][2]string{
		"per command": {"begin, transmit 80 10", "end, begin, transmit 00 A4, transmit 80 10, end"},
		// A failed command ends its transaction at once: no lingering.
		"linger": {"transmit 80 10", "end, begin, transmit 00 A4, transmit 80 10"},
	}
	for _, m := range lingerModes {
		t.Run(m.name, func(t *testing.T) {
			opts := m.opts
			opts.RemovalCheck = 10 * time.Millisecond
			testDeadlineDuringTransmit(t, opts, want[m.name][0], want[m.name][1])
		})
	}
}

func testDeadlineDuringTransmit(t *testing.T, opts Options, stuck, after string) {
	fs, pc, _ := fakeSetup(t, newSim(t, "fake deadline"), apdu.CardOptions{}, opts)
	b := newBlocker(t)
	fs.onTransmit = b.hook
	ch := openFakeChip(t, pc)
	b.armed.Store(true)
	settle(t, ch)
	fs.calls()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := ch.Info(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("Info while the card is mute: %v", err)
	}
	<-b.started
	// The transmit is still with "pcscd": the next command waits for it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := ch.Info(ctx2); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "wait for the card") {
		t.Fatalf("second Info while the first is stuck: %v", err)
	}
	if got := joined(fs.calls()); got != stuck {
		t.Fatalf("calls while stuck: %s, want %s", got, stuck)
	}
	b.unblock()
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatalf("Info after the card answered: %v", err)
	}
	settle(t, ch)
	// The stuck command's transaction ended after its transmit; the next
	// command selected the applet again before its request.
	if got := joined(fs.calls()); got != after {
		t.Fatalf("calls = %s, want %s", got, after)
	}
}

func TestFakeCloseWhileStuck(t *testing.T) {
	fs, pc, _ := fakeSetup(t, newSim(t, "fake close"), apdu.CardOptions{}, Options{CloseWait: 20 * time.Millisecond})
	b := newBlocker(t)
	fs.onTransmit = b.hook
	ch, err := pc.OpenChip(testCtx(t), fakeReaderName)
	if err != nil {
		t.Fatal(err)
	}
	b.armed.Store(true)
	errc := make(chan error, 1)
	go func() {
		_, err := ch.Info(context.Background()) // no deadline: only Close stops it
		errc <- err
	}()
	<-b.started
	if err := ch.Close(); !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("Close with a stuck transmit = %v, want ErrTimeout", err)
	}
	if err := <-errc; !errors.Is(err, device.ErrClosed) {
		t.Fatalf("command cut short by Close: %v", err)
	}
	if _, err := ch.Info(testCtx(t)); !errors.Is(err, device.ErrClosed) {
		t.Fatalf("Info after Close: %v", err)
	}
	b.unblock()
	<-ch.w.done // the card is released once the transmit returned
	if c, k := fs.open(); c != 1 || k != 0 {
		t.Fatalf("after the stuck call: %d contexts (want the Context's 1), %d cards", c, k)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFakeRemovedMidCommand(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error // what the transmit that meets the removal returns
		stays bool  // the reader still shows the card (pulled and back between pcscd's looks)
	}{
		{"removed", CodeRemovedCard, false},
		{"not transacted", CodeNotTransacted, false}, // the chip then asks pcscd
		// vpcd answers an APDU with no bytes when its card leaves
		// mid-command: that is the removal, at once, also when the card is
		// back before pcscd looks again (not "malformed response APDU").
		{"empty answer", errEmptyAnswerFake, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			removalCheck := 100 * time.Millisecond
			if tt.stays {
				removalCheck = time.Hour // a removal check would hang the test
			}
			fs, pc, _ := fakeSetup(t, newSim(t, "fake removal"), apdu.CardOptions{}, Options{RemovalCheck: removalCheck})
			ch := openFakeChip(t, pc)
			var n atomic.Int32
			fs.onTransmit = func(reader string, cmd []byte) error {
				if n.Add(1) == 3 { // the third piece of the chained request
					if !tt.stays {
						fs.eject(reader)
					}
					return tt.err
				}
				return nil
			}
			_, err := ch.MakeCredential(testCtx(t), bigMakeCredential(t))
			var pe *Error
			if !errors.Is(err, device.ErrRemoved) || !errors.As(err, &pe) || pe.Reader != fakeReaderName {
				t.Fatalf("MakeCredential with the card pulled: %v", err)
			}
			var fe *apdu.FormatError
			if errors.As(err, &fe) {
				t.Fatalf("a pulled card reported as a malformed APDU: %v", err)
			}
			settle(t, ch)
			fs.calls()
			if _, err := ch.Info(testCtx(t)); !errors.Is(err, device.ErrRemoved) {
				t.Fatalf("Info after removal: %v", err)
			}
			if c := fs.calls(); len(c) != 0 {
				t.Fatalf("a removed chip still talks to PC/SC: %v", c)
			}
		})
	}
}

func TestFakeExchangeFailedCardStillThere(t *testing.T) {
	fs, pc, _ := fakeSetup(t, newSim(t, "fake flaky"), apdu.CardOptions{}, Options{RemovalCheck: 10 * time.Millisecond})
	ch := openFakeChip(t, pc)
	var once atomic.Bool
	fs.onTransmit = func(reader string, cmd []byte) error {
		if cmd[1] == apdu.INSNFCCTAPMsg && once.CompareAndSwap(false, true) {
			return CodeNotTransacted
		}
		return nil
	}
	if _, err := ch.Info(testCtx(t)); !errors.Is(err, device.ErrProtocol) || errors.Is(err, device.ErrRemoved) {
		t.Fatalf("Info with a failed exchange: %v", err)
	}
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatalf("Info after a failed exchange: %v", err)
	}
}

// lingerModes are the transaction modes the recovery tests run in: one
// transaction per command, and a linger longer than the test, so that every
// command after OpenChip carries on the transaction OpenChip began.
var lingerModes = []struct {
	name string
	opts Options
}{
	{"per command", Options{TxLinger: -1}},
	{"linger", Options{TxLinger: time.Hour}},
}

func TestFakeResetByAnotherProgram(t *testing.T) {
	want := map[string]string{
		"per command": "begin, reconnect, begin, transmit 00 A4, transmit 80 10, end",
		// The reset shows on the first transmit: the lingering transaction
		// ends and the command starts over as after a fresh begin.
		"linger": "transmit 80 10, end, reconnect, begin, transmit 00 A4, transmit 80 10",
	}
	for _, m := range lingerModes {
		t.Run(m.name, func(t *testing.T) {
			fs, pc, card := fakeSetup(t, newSim(t, "fake reset"), apdu.CardOptions{}, m.opts)
			ch := openFakeChip(t, pc)
			fs.resetCard(fakeReaderName)
			card.Reset() // the power cycle makes the card forget its selection
			settle(t, ch)
			fs.calls()
			if _, err := ch.Info(testCtx(t)); err != nil {
				t.Fatalf("Info after a reset by another program: %v", err)
			}
			settle(t, ch)
			if got := joined(fs.calls()); got != want[m.name] {
				t.Fatalf("calls = %s, want %s", got, want[m.name])
			}
			if _, err := ch.Info(testCtx(t)); err != nil {
				t.Fatalf("second Info: %v", err)
			}
		})
	}
}

// TestFakeResetMidCommandLinger: a reset after some of a command's APDUs
// got through fails that command (the card lost what it had been sent),
// ends the lingering transaction at once, and the next command reconnects.
func TestFakeResetMidCommandLinger(t *testing.T) {
	fs, pc, card := fakeSetup(t, newSim(t, "fake reset mid"), apdu.CardOptions{}, Options{TxLinger: time.Hour})
	ch := openFakeChip(t, pc)
	var n atomic.Int32
	fs.onTransmit = func(reader string, cmd []byte) error {
		if n.Add(1) == 3 { // the third piece of the chained request
			fs.resetCard(reader)
			card.Reset()
			return CodeResetCard
		}
		return nil
	}
	_, err := ch.MakeCredential(testCtx(t), bigMakeCredential(t))
	if !errors.Is(err, device.ErrRemoved) || !isCode(err, CodeResetCard) {
		t.Fatalf("MakeCredential with a reset mid-command: %v", err)
	}
	settle(t, ch)
	if got := fs.calls(); len(got) == 0 || got[len(got)-1] != "end" {
		t.Fatalf("the failed command's transaction still lingers: %v", got)
	}
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatalf("Info after the reset: %v", err)
	}
	settle(t, ch)
	if got, want := joined(fs.calls()), "begin, reconnect, begin, transmit 00 A4, transmit 80 10"; got != want {
		t.Fatalf("calls = %s, want %s", got, want)
	}
}

func TestFakeOtherAppletSelected(t *testing.T) {
	want := map[string]string{
		"per command": "begin, transmit 80 10, transmit 00 A4, transmit 80 10, end",
		"linger":      "transmit 80 10, end, begin, transmit 00 A4, transmit 80 10",
	}
	for _, m := range lingerModes {
		t.Run(m.name, func(t *testing.T) {
			fs, pc, card := fakeSetup(t, newSim(t, "fake other applet"), apdu.CardOptions{}, m.opts)
			ch := openFakeChip(t, pc)
			// Another program selects some other application between our commands.
			other := &apdu.Command{INS: apdu.INSSelect, P1: 0x04, Data: []byte{0xA0, 0x00, 0x00, 0x03, 0x08}}
			raw, _ := other.Encode()
			if resp, _ := card.Transmit(raw); len(resp) != 2 || resp[0] != 0x6A {
				t.Fatalf("select of another applet: % X", resp)
			}
			settle(t, ch)
			fs.calls()
			if _, err := ch.Info(testCtx(t)); err != nil {
				t.Fatalf("Info after another applet was selected: %v", err)
			}
			settle(t, ch)
			if got := joined(fs.calls()); got != want[m.name] {
				t.Fatalf("calls = %s, want %s", got, want[m.name])
			}
			// The same for a U2F APDU, whose 6D00 is an answer, not an error.
			if _, err := card.Transmit(raw); err != nil {
				t.Fatal(err)
			}
			if _, err := ch.U2F().Version(testCtx(t)); err != nil {
				t.Fatalf("U2F version: %v", err)
			}
			settle(t, ch)
			if got := joined(fs.calls()); !strings.Contains(got, "transmit 00 A4") {
				t.Fatalf("U2F calls without a new SELECT: %s", got)
			}
		})
	}
}

func TestFakeReaderGone(t *testing.T) {
	fs, pc, _ := fakeSetup(t, newSim(t, "fake reader gone"), apdu.CardOptions{}, Options{})
	ch := openFakeChip(t, pc)
	fs.removeReader(fakeReaderName)
	_, err := ch.Info(testCtx(t))
	if !errors.Is(err, device.ErrNotFound) || !isCode(err, CodeReaderUnavailable) {
		t.Fatalf("Info with the reader gone: %v", err)
	}
}

func TestFakeWait(t *testing.T) {
	fs, pc, _ := fakeSetup(t, nil, apdu.CardOptions{}, Options{WaitSlice: 20 * time.Millisecond})
	ctx := testCtx(t)
	known, err := pc.Readers(ctx)
	if err != nil || len(known) != 1 || known[0].CardPresent {
		t.Fatalf("Readers = %+v, %v", known, err)
	}
	steps := []struct {
		do   func()
		want string
	}{
		{func() { fs.insert(fakeReaderName, notFIDO{}) }, fakeReaderName + ": card inserted"},
		{func() { fs.eject(fakeReaderName) }, fakeReaderName + ": card removed"},
		{func() { fs.addReader("Fake Reader 01") }, "Fake Reader 01: reader added"},
		{func() { fs.removeReader("Fake Reader 01") }, "Fake Reader 01: reader removed"},
	}
	for _, s := range steps {
		got := make(chan []Reader, 1)
		go func() {
			rs, err := pc.Wait(ctx, known)
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			got <- rs
		}()
		s.do()
		now := <-got
		var ev []string
		for _, e := range Diff(known, now) {
			ev = append(ev, e.String())
		}
		if strings.Join(ev, "; ") != s.want {
			t.Fatalf("Diff = %v, want %s", ev, s.want)
		}
		known = now
	}
	// Wait returns when its context ends.
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := pc.Wait(wctx, known)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v", err)
	}
}

func TestFakeClosed(t *testing.T) {
	_, pc, _ := fakeSetup(t, newSim(t, "fake closed"), apdu.CardOptions{}, Options{})
	ch, err := pc.OpenChip(testCtx(t), fakeReaderName)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Readers(testCtx(t)); !errors.Is(err, device.ErrClosed) {
		t.Fatalf("Readers after Close: %v", err)
	}
	if _, err := pc.OpenChip(testCtx(t), fakeReaderName); !errors.Is(err, device.ErrClosed) {
		t.Fatalf("OpenChip after Close: %v", err)
	}
	// The chip has its own PC/SC context and outlives the Context.
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatalf("Info after the Context closed: %v", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.GetAssertion(testCtx(t), &ctap2.GetAssertionRequest{RPID: testRP, ClientDataHash: hash("x")}); !errors.Is(err, device.ErrClosed) {
		t.Fatalf("GetAssertion after Close: %v", err)
	}
}

func TestFakeTransactionModes(t *testing.T) {
	tests := []struct {
		name           string
		opts           Options
		commands, last string
	}{
		{"per command", Options{TxLinger: -1}, "begin, transmit 80 10, end, begin, transmit 80 10, end", "disconnect"},
		// A linger longer than the test: the burst, from OpenChip on, shares
		// one transaction, which Close ends.
		{"linger", Options{TxLinger: time.Hour}, "transmit 80 10, transmit 80 10", "end, disconnect"},
		{"exclusive", Options{Exclusive: true}, "transmit 80 10, transmit 80 10", "disconnect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, pc, _ := fakeSetup(t, newSim(t, "fake modes"), apdu.CardOptions{}, tt.opts)
			ch := openFakeChip(t, pc)
			settle(t, ch)
			fs.calls()
			for range 2 {
				if _, err := ch.Info(testCtx(t)); err != nil {
					t.Fatal(err)
				}
			}
			settle(t, ch)
			if got := joined(fs.calls()); got != tt.commands {
				t.Fatalf("calls = %s, want %s", got, tt.commands)
			}
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			if got := joined(fs.calls()); got != tt.last {
				t.Fatalf("calls of Close = %s, want %s", got, tt.last)
			}
		})
	}
}

// TestDefaultTxLinger: by default a transaction lingers (back-to-back
// commands share it); a negative TxLinger ends it after every command.
func TestDefaultTxLinger(t *testing.T) {
	if got := (Options{}).withDefaults().TxLinger; got != DefaultTxLinger || got <= 0 {
		t.Errorf("default TxLinger %v", got)
	}
	if got := (Options{TxLinger: -1}).withDefaults().TxLinger; got >= 0 {
		t.Errorf("TxLinger -1 became %v", got)
	}
}

func TestFakeTxLingerEnds(t *testing.T) {
	fs, pc, _ := fakeSetup(t, newSim(t, "fake linger"), apdu.CardOptions{}, Options{TxLinger: time.Millisecond})
	ch := openFakeChip(t, pc)
	waitEnd(t, fs) // of OpenChip's transaction
	if _, err := ch.Info(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := waitEnd(t, fs); got != "begin, transmit 80 10, end" {
		t.Fatalf("calls = %s", got)
	}
}

// waitEnd collects PC/SC calls until a transaction ends on its own (the
// guard only catches a transaction that never ends).
func waitEnd(t *testing.T, fs *fakeSystem) string {
	t.Helper()
	deadline := time.Now().Add(guard)
	var got []string
	for !strings.HasSuffix(joined(got), "end") {
		if time.Now().After(deadline) {
			t.Fatalf("transaction never ended: %v", got)
		}
		time.Sleep(time.Millisecond)
		got = append(got, fs.calls()...)
	}
	return joined(got)
}

// transmitCodeCase is a PC/SC code met by a command's first transmit.
type transmitCodeCase struct {
	code     Code
	want     error
	nextWork bool // the next command succeeds
	// With a lingering transaction the command itself recovers: the code
	// came with its first APDU, which never reached the card.
	lingerRecovers bool
}

// TestFakeTransmitCodes: what a command returns, and what the next one does,
// for each PC/SC code a transmit can meet, per command and lingering.
func TestFakeTransmitCodes(t *testing.T) {
	tests := []transmitCodeCase{
		{CodeServiceStopped, ErrNoService, false, false},
		{CodeNoService, ErrNoService, false, false},
		{CodeReaderUnavailable, device.ErrNotFound, false, false},
		{CodeRemovedCard, device.ErrRemoved, false, false},
		{CodeResetCard, device.ErrRemoved, true, true}, // reconnected before the next command
		{CodeTimeout, device.ErrTimeout, true, false},
	}
	for _, m := range lingerModes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.code.String(), func(t *testing.T) {
				testTransmitCode(t, m.opts, tt)
			})
		}
	}
}

func testTransmitCode(t *testing.T, opts Options, tt transmitCodeCase) {
	fs, pc, card := fakeSetup(t, newSim(t, "fake codes"), apdu.CardOptions{}, opts)
	ch := openFakeChip(t, pc)
	var once atomic.Bool
	fs.onTransmit = func(reader string, cmd []byte) error {
		if once.CompareAndSwap(false, true) {
			if tt.code == CodeResetCard {
				fs.resetCard(reader)
				card.Reset()
			}
			return tt.code
		}
		return nil
	}
	_, err := ch.Info(testCtx(t))
	var pe *Error
	if tt.lingerRecovers && opts.TxLinger > 0 {
		if err != nil {
			t.Fatalf("Info = %v, want it to recover from %s", err, tt.code)
		}
	} else if !errors.Is(err, tt.want) || !errors.As(err, &pe) || pe.Code != tt.code || pe.Op != opTransmit {
		t.Fatalf("Info = %v, want %v from %s", err, tt.want, tt.code)
	}
	_, err = ch.Info(testCtx(t))
	if tt.nextWork && err != nil {
		t.Fatalf("next Info: %v", err)
	}
	if !tt.nextWork && !errors.Is(err, tt.want) {
		t.Fatalf("next Info = %v, want the same error again", err)
	}
}
