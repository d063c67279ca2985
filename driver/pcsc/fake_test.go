package pcsc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
)

// The fake seam: readers holding in-process cards (apdu.Card), with a log of
// every PC/SC call and hooks to block or fail them. It lets the logic of this
// package run without pcscd, also in a build without cgo.

type fakeSystem struct {
	mu       sync.Mutex
	readers  map[string]*fakeReader
	log      []string
	changed  chan struct{} // closed and replaced on every reader change
	contexts int           // established and not released
	cards    int           // connected and not disconnected

	// Hooks, called without mu held. A hook returning a non-nil error makes
	// the call fail with it.
	onTransmit func(reader string, cmd []byte) error
	onBegin    func(reader string) error
}

// errEmptyAnswerFake, returned by an onTransmit hook, makes the transmit
// succeed with no bytes, as vpcd's does when its card leaves mid-APDU.
var errEmptyAnswerFake = errors.New("fake: empty answer")

type fakeReader struct {
	card    apdu.Transmitter
	atr     []byte
	present bool
	counter uint32
	resets  int // resets of the card by "another program"
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{readers: map[string]*fakeReader{}, changed: make(chan struct{})}
}

func (s *fakeSystem) record(format string, args ...any) {
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// calls returns the log and clears it.
func (s *fakeSystem) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log
	s.log = nil
	return l
}

func (s *fakeSystem) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeSystem) addReader(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readers[name] = &fakeReader{}
	s.notify()
}

func (s *fakeSystem) removeReader(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.readers, name)
	s.notify()
}

func (s *fakeSystem) insert(name string, card apdu.Transmitter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.readers[name]
	r.card, r.atr, r.present = card, []byte{0x3B, 0x80, 0x80, 0x01, 0x01}, true
	r.counter++
	s.notify()
}

func (s *fakeSystem) eject(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.readers[name]
	r.card, r.atr, r.present = nil, nil, false
	r.counter++
	s.notify()
}

// resetCard plays another program that resets the card in reader name.
func (s *fakeSystem) resetCard(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readers[name].resets++
}

func (s *fakeSystem) open() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contexts, s.cards
}

func (s *fakeSystem) Establish() (sysContext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contexts++
	return &fakeContext{s: s, cancel: make(chan struct{}, 1)}, nil
}

type fakeContext struct {
	s      *fakeSystem
	cancel chan struct{}
}

func (c *fakeContext) ListReaders() ([]string, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if len(c.s.readers) == 0 {
		return nil, CodeNoReaders
	}
	var names []string
	for n := range c.s.readers {
		names = append(names, n)
	}
	return names, nil
}

func (c *fakeContext) GetStatusChange(states []readerState, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c.s.mu.Lock()
		changed := c.s.changed
		any := false
		for i := range states {
			st := &states[i]
			var ev uint32
			if st.Reader == pnpReader {
				ev = uint32(len(c.s.readers)) << 16
			} else if r, ok := c.s.readers[st.Reader]; !ok {
				c.s.mu.Unlock()
				if st.Current == stateUnaware {
					return CodeUnknownReader
				}
				st.Event = stateUnknown | stateChanged
				return nil
			} else {
				ev = r.counter<<16 | stateEmpty
				st.ATR = nil
				if r.present {
					ev = r.counter<<16 | statePresent
					st.ATR = append([]byte(nil), r.atr...)
				}
			}
			if ev != st.Current&^stateChanged {
				ev |= stateChanged
				any = true
			}
			st.Event = ev
		}
		c.s.mu.Unlock()
		if any || states[0].Current == stateUnaware {
			return nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return CodeTimeout
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-c.cancel:
			t.Stop()
			return CodeCancelled
		case <-t.C:
			return CodeTimeout
		}
		t.Stop()
	}
}

func (c *fakeContext) Cancel() error {
	select {
	case c.cancel <- struct{}{}:
	default:
	}
	return nil
}

func (c *fakeContext) Release() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.contexts--
	return nil
}

func (c *fakeContext) Connect(reader string, exclusive bool) (sysCard, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	r, ok := c.s.readers[reader]
	switch {
	case !ok:
		return nil, CodeUnknownReader
	case !r.present:
		return nil, CodeNoSmartcard
	}
	c.s.cards++
	c.s.log = append(c.s.log, "connect")
	return &fakeCard{s: c.s, reader: reader, counter: r.counter, resets: r.resets}, nil
}

type fakeCard struct {
	s       *fakeSystem
	reader  string
	counter uint32 // the insertion this handle belongs to
	resets  int    // the resets this handle knows about
}

// card returns the card this handle talks to, or the code for its absence
// or for a reset the handle has not acknowledged (with Reconnect).
func (c *fakeCard) card() (apdu.Transmitter, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	r, ok := c.s.readers[c.reader]
	switch {
	case !ok:
		return nil, CodeReaderUnavailable
	case !r.present || r.counter != c.counter:
		return nil, CodeRemovedCard
	case r.resets != c.resets:
		return nil, CodeResetCard
	}
	return r.card, nil
}

func (c *fakeCard) Transmit(cmd []byte) ([]byte, error) {
	c.s.record("transmit %02X %02X", cmd[0], cmd[1])
	if h := c.s.onTransmit; h != nil {
		if err := h(c.reader, cmd); err == errEmptyAnswerFake {
			return []byte{}, nil
		} else if err != nil {
			return nil, err
		}
	}
	card, err := c.card()
	if err != nil {
		return nil, err
	}
	return card.Transmit(cmd)
}

func (c *fakeCard) Begin() error {
	c.s.record("begin")
	if h := c.s.onBegin; h != nil {
		if err := h(c.reader); err != nil {
			return err
		}
	}
	_, err := c.card()
	return err
}

func (c *fakeCard) End() error {
	c.s.record("end")
	_, err := c.card()
	return err
}

func (c *fakeCard) Status() ([]byte, error) {
	if _, err := c.card(); err != nil {
		return nil, err
	}
	return []byte{0x3B, 0x80, 0x80, 0x01, 0x01}, nil
}

func (c *fakeCard) Reconnect(exclusive bool) error {
	c.s.record("reconnect")
	c.s.mu.Lock()
	if r, ok := c.s.readers[c.reader]; ok {
		c.resets = r.resets
	}
	c.s.mu.Unlock()
	_, err := c.card()
	return err
}

func (c *fakeCard) Disconnect() error {
	c.s.mu.Lock()
	c.s.cards--
	c.s.mu.Unlock()
	c.s.record("disconnect")
	return nil
}

// Helpers shared by the fake tests and the pcscd tests.

const guard = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// noLeaks fails the test if, after its cleanups, more goroutines run than
// before it.
func noLeaks(t testing.TB) {
	t.Helper()
	n := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > n {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines left over (had %d):\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// joined returns the calls as one string, for comparisons.
func joined(calls []string) string { return strings.Join(calls, ", ") }
