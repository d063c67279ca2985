//go:build cgo

package pcsc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/sim/vicc"
)

// daemon starts (once per test process) the private pcscd. It must run
// before the first PC/SC call of the process: libpcsclite reads
// PCSCLITE_CSOCK_NAME once.
func daemon(t testing.TB) *pcscdtest.Daemon {
	t.Helper()
	return pcscdtest.Start(t)
}

// pcscdTest starts the daemon and then checks the test for goroutine leaks
// (the daemon's own goroutine is there for good).
func pcscdTest(t testing.TB) *pcscdtest.Daemon {
	t.Helper()
	d := daemon(t)
	noLeaks(t)
	return d
}

// openContext opens a Context on the private pcscd, closed at cleanup.
func openContext(t testing.TB, opts Options) *Context {
	t.Helper()
	d := daemon(t)
	pc, err := Open(testCtx(t), opts)
	if err != nil {
		t.Fatalf("Open: %v; %s", err, d.Report())
	}
	t.Cleanup(func() {
		if err := pc.Close(); err != nil {
			t.Errorf("Context.Close: %v", err)
		}
	})
	return pc
}

// slot is a simulated card in one of the vpcd readers.
type slot struct {
	t      testing.TB
	pc     *Context
	reader string
	card   *apdu.Card
	conn   *vicc.Conn
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// insert connects a card serving h to reader i of the private pcscd and
// waits until PC/SC reports it present. The card is removed at cleanup (or
// earlier with remove), and the test then waits until PC/SC reports the
// reader empty, so the next test starts from a clean reader.
func insert(t testing.TB, pc *Context, i int, h apdu.Handler, co apdu.CardOptions, vo vicc.Options) *slot {
	t.Helper()
	d := daemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &slot{t: t, pc: pc, reader: pcscdtest.Readers[i], card: apdu.NewCard(h, co), cancel: cancel, done: make(chan error, 1)}
	s.conn = vicc.New(d.Addrs[i], s.card, vo)
	go func() { s.done <- s.conn.Run(ctx) }()
	t.Cleanup(s.remove)
	select {
	case <-s.conn.Ready():
	case <-time.After(guard):
		t.Fatalf("vpcd never spoke to the card on %s; %s", d.Addrs[i], d.Report())
	}
	waitFor(t, pc, s.reader, true)
	return s
}

// remove disconnects the card from vpcd and waits until PC/SC sees it gone.
func (s *slot) remove() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.card.Close()
		waitFor(s.t, s.pc, s.reader, false)
	})
}

// waitFor waits with Wait until PC/SC reports a card in reader (or none).
func waitFor(t testing.TB, pc *Context, reader string, present bool) []Reader {
	t.Helper()
	ctx := testCtx(t)
	rs, err := pc.Readers(ctx)
	for {
		if err != nil {
			t.Fatalf("waiting for card present=%v in %q: %v", present, reader, err)
		}
		for _, r := range rs {
			if r.Name == reader && r.CardPresent == present {
				return rs
			}
		}
		rs, err = pc.Wait(ctx, rs)
	}
}
