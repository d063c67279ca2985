//go:build cgo

package faults_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/vicc"
)

// swapCard is the card in the vpcd reader: it passes APDUs to the apdu.Card
// of the current row, so that rows with other card options share one vpcd
// connection (pcscd takes a while to notice a new card).
type swapCard struct{ cur atomic.Pointer[apdu.Card] }

func (s *swapCard) Process(ctx context.Context, b []byte) []byte { return s.cur.Load().Process(ctx, b) }
func (s *swapCard) Reset()                                       { s.cur.Load().Reset() }

// faultPlan is the vicc Fault function of the current row: fault f for
// APDU number at (0: none), and hook called then. It also counts the APDUs
// by INS.
type faultPlan struct {
	mu    sync.Mutex
	at    int
	f     vicc.Fault
	hook  func()
	byINS map[byte]int
}

func (p *faultPlan) fault(n int, b []byte) vicc.Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byINS == nil {
		p.byINS = map[byte]int{}
	}
	if len(b) >= 2 {
		p.byINS[b[1]]++
	}
	if n != p.at {
		return vicc.FaultNone
	}
	if p.hook != nil {
		p.hook()
	}
	return p.f
}

// set plans fault f for APDU at and clears the counts.
func (p *faultPlan) set(at int, f vicc.Fault, hook func()) {
	p.mu.Lock()
	p.at, p.f, p.hook, p.byINS = at, f, hook, map[byte]int{}
	p.mu.Unlock()
}

func (p *faultPlan) count(ins byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byINS[ins]
}

// TestPCSC: what driver/pcsc reports when the simulated card behind a
// private pcscd (vpcd) misbehaves during a makeCredential: late, garbled or
// cut-short answers (sim/vicc faults), storms of 61xx and 9100 (apdu.Card
// options), and a card pulled mid-command. Needs root (for pcscd's private
// namespace) and cgo.
func TestPCSC(t *testing.T) {
	d := pcscdtest.Start(t)
	noLeaks(t) // after Start: the daemon's own goroutine stays
	ctx, cancel := context.WithTimeout(context.Background(), 7*guard)
	defer cancel()
	pc, err := pcsc.Open(ctx, pcsc.Options{PollInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("%v; %s", err, d.Report())
	}
	defer pc.Close()

	sim := newChip(t, "pcsc", chip.Options{})
	card := &swapCard{}
	use := func(co apdu.CardOptions) {
		c := apdu.NewCard(sim, co)
		t.Cleanup(func() { c.Close() })
		card.cur.Store(c)
	}
	use(apdu.CardOptions{})
	var plan faultPlan
	var (
		conn  *vicc.Conn
		vstop context.CancelFunc
		vdone chan error
	)
	connect := func() {
		vctx, stop := context.WithCancel(context.Background())
		c := vicc.New(d.Addrs[0], card, vicc.Options{
			Fault: plan.fault,
			Delay: 300 * time.Millisecond,
			Rand:  bytes.NewReader(bytes.Repeat([]byte{0x6F, 0x42, 0x17}, 1<<12)),
			Retry: 10 * time.Millisecond,
		})
		done := make(chan error, 1)
		go func() { done <- c.Run(vctx) }()
		conn, vstop, vdone = c, stop, done
	}
	disconnect := func() { vstop(); <-vdone }
	connect()
	defer func() { disconnect() }()
	reader := pcscdtest.Readers[0]
	// Setting up, not under test: on a busy machine pcscd has now and then
	// not taken up a first connection of the card; connect it again then.
	// The faults under test all come after the card is seen.
	for attempt := 1; ; attempt++ {
		wctx, wcancel := context.WithTimeout(ctx, guard)
		err := cardShows(wctx, pc, reader, true)
		wcancel()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("the card never showed in %q: %v; %s", reader, err, d.Report())
		}
		t.Logf("the card did not show in %q within %v (%v); connecting it again", reader, guard, err)
		disconnect()
		connect()
	}

	statusWord := func(sw uint16) func(error) bool {
		return func(err error) bool {
			var se *apdu.StatusError
			return errors.As(err, &se) && se.SW == sw
		}
	}
	formatError := func(err error) bool {
		var fe *apdu.FormatError
		return errors.As(err, &fe)
	}
	// APDU 1 of a makeCredential is the first chained piece of the request,
	// APDU 2 the last piece (answered with 256 bytes and 61xx), APDU 3 the
	// first GET RESPONSE.
	tests := []struct {
		name    string
		card    apdu.CardOptions
		fault   vicc.Fault // for APDU 2
		wait    time.Duration
		is      error // nil: success
		as      func(error) bool
		endless bool // the card never answers CTAP2 again: use a plain one afterwards
	}{
		{name: "no fault"},
		// Delay is 300 ms.
		{name: "answer late, within the deadline", fault: vicc.FaultDelay},
		// The PC/SC call cannot be interrupted; the chip gives up waiting
		// for it and reports the deadline, also as device.ErrTimeout, and
		// the next command waits for the stuck call before it starts.
		{name: "answer later than the deadline", fault: vicc.FaultDelay, wait: 100 * time.Millisecond, is: device.ErrTimeout},
		// Noise in place of the answer: pcscd passes it on, and the host
		// reports the status word the noise ends with (here 4217, from
		// the seeded garbage) as the card's.
		{name: "answer garbled", fault: vicc.FaultGarbage, as: statusWord(0x4217)},
		// One byte is no response APDU: a protocol error. pcscd passes it
		// on as it is.
		{name: "answer cut short", fault: vicc.FaultTruncate, is: device.ErrProtocol, as: formatError},
		// Answers one byte at a time: every GET RESPONSE goes through
		// pcscd, and the host gets the whole answer.
		{name: "61xx storm", card: apdu.CardOptions{ChunkLimit: 1}},
		{name: "9100 storm, endless", card: apdu.CardOptions{UpdateStorm: -1}, wait: 200 * time.Millisecond, is: context.DeadlineExceeded, endless: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			use(tt.card)
			ch, err := pc.OpenChip(ctx, reader)
			if err != nil {
				t.Fatalf("OpenChip: %v", err)
			}
			defer ch.Close()
			plan.set(conn.Stats().APDUs+2, tt.fault, nil)
			wait := tt.wait
			if wait == 0 {
				wait = guard
			}
			cctx, ccancel := context.WithTimeout(ctx, wait)
			defer ccancel()
			att, err := ch.MakeCredential(cctx, registration())
			switch {
			case tt.is == nil && tt.as == nil:
				if err != nil || att.Format != ctap2.FormatPacked {
					t.Fatalf("MakeCredential: %v, want success", err)
				}
			case tt.is != nil && !errors.Is(err, tt.is), tt.as != nil && (err == nil || !tt.as(err)):
				t.Fatalf("MakeCredential: %v, want an error wrapping %v of the row's type", err, tt.is)
			}
			if tt.wait != 0 && cctx.Err() == nil {
				t.Fatalf("MakeCredential returned %v before its deadline", err)
			}
			if tt.card.ChunkLimit == 1 {
				if n := plan.count(apdu.INSGetResponse); n < 800 {
					t.Errorf("%d GET RESPONSE through pcscd, want one per answer byte", n)
				}
			}
			// The chip works on.
			if tt.endless {
				use(apdu.CardOptions{}) // unselected: the chip selects it again
			}
			plan.set(0, vicc.FaultNone, nil)
			if _, err := ch.Info(ctx); err != nil {
				t.Fatalf("Info after the fault: %v", err)
			}
		})
	}

	// Last, as the card stays out: the card is pulled while the request is
	// chained. vpcd reports the lost card and pcscd soon sees the reader
	// empty; the chip returns a *pcsc.Error that unwraps to
	// device.ErrRemoved, before its deadline, and keeps returning it.
	t.Run("card removed mid-command", func(t *testing.T) {
		use(apdu.CardOptions{})
		ch, err := pc.OpenChip(ctx, reader)
		if err != nil {
			t.Fatalf("OpenChip: %v", err)
		}
		defer ch.Close()
		plan.set(conn.Stats().APDUs+2, vicc.FaultRemove, vstop) // and no reconnection
		cctx, ccancel := context.WithTimeout(ctx, guard)
		defer ccancel()
		_, err = ch.MakeCredential(cctx, registration())
		var pe *pcsc.Error
		if !errors.Is(err, device.ErrRemoved) || !errors.As(err, &pe) || pe.Reader != reader {
			t.Fatalf("MakeCredential: %v, want a *pcsc.Error for %q wrapping device.ErrRemoved", err, reader)
		}
		if cctx.Err() != nil {
			t.Fatalf("the error came only at the deadline: %v", err)
		}
		if _, err := ch.Info(ctx); !errors.Is(err, device.ErrRemoved) {
			t.Fatalf("Info after the removal: %v", err)
		}
		waitCard(t, ctx, pc, reader, false)
	})
}

// waitCard waits until pcscd reports a card in reader (or none).
func waitCard(t *testing.T, ctx context.Context, pc *pcsc.Context, reader string, present bool) {
	t.Helper()
	if err := cardShows(ctx, pc, reader, present); err != nil {
		t.Fatalf("waiting for card present=%v in %q: %v", present, reader, err)
	}
}

// cardShows waits until reader's card is present (or absent).
func cardShows(ctx context.Context, pc *pcsc.Context, reader string, present bool) error {
	rs, err := pc.Readers(ctx)
	for {
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Name == reader && r.CardPresent == present {
				return nil
			}
		}
		rs, err = pc.Wait(ctx, rs)
	}
}
