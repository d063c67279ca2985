package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Defaults of Options.
const (
	DefaultWaitSlice    = 250 * time.Millisecond
	DefaultRemovalCheck = time.Second
	DefaultCloseWait    = 2 * time.Second
	// DefaultTxLinger is how long a chip's PC/SC transaction stays open
	// after a command by default: long enough for the commands of one
	// ceremony or a burst to share it, short enough that another program
	// waiting for the card hardly notices.
	DefaultTxLinger = 50 * time.Millisecond
)

// Options configure a Context and the chips opened through it. The zero
// value gives the defaults.
type Options struct {
	// Exclusive connects to cards in exclusive mode (SCARD_SHARE_EXCLUSIVE),
	// so that no other program can talk to the card while a Chip is open,
	// and no transactions are needed. The default is shared mode, with
	// every command inside a PC/SC transaction.
	Exclusive bool
	// TxLinger keeps a chip's PC/SC transaction open for this long after a
	// command, so that a burst of back-to-back commands (the getInfo and
	// makeCredential of an enrolment, a benchmark) shares one transaction
	// instead of paying the SCardBeginTransaction and SCardEndTransaction
	// round trips to pcscd each time; the end is not on any command's path.
	// Other programs then wait up to TxLinger after the burst. A card reset
	// or another applet's selection while it lingers is recovered from as
	// after a fresh begin. 0 means DefaultTxLinger; a negative value ends
	// the transaction after every command.
	TxLinger time.Duration
	// Extended sends long commands as one extended-length APDU instead of
	// chaining, and asks for whole answers at once (apdu.ClientOptions).
	// Use it only with readers and cards that take extended APDUs.
	Extended bool
	// PollInterval is the pause between NFCCTAP_GETRESPONSE polls while the
	// card answers 9100 (0 means apdu.DefaultPollInterval).
	PollInterval time.Duration
	// U2FPollInterval is the pause between tries of a U2F request that the
	// card answered with "touch required" (0 means u2f.DefaultPollInterval).
	U2FPollInterval time.Duration
	// WaitSlice is the longest single SCardGetStatusChange in Wait; Wait also
	// cancels it when its context ends (0 means DefaultWaitSlice).
	WaitSlice time.Duration
	// RemovalCheck is how long a Chip waits, after an exchange with the card
	// failed without a clear reason, for pcscd to say whether the card has
	// gone (pcscd looks every 400 ms; 0 means DefaultRemovalCheck).
	RemovalCheck time.Duration
	// CloseWait is how long Close waits for a PC/SC call that is stuck in
	// pcscd (0 means DefaultCloseWait).
	CloseWait time.Duration
	// Logger receives debug events (reconnects, reselects, cleanup
	// failures); nil discards them.
	Logger *slog.Logger

	// sys replaces libpcsclite in tests.
	sys system
}

func (o Options) withDefaults() Options {
	if o.TxLinger == 0 {
		o.TxLinger = DefaultTxLinger
	}
	if o.WaitSlice <= 0 {
		o.WaitSlice = DefaultWaitSlice
	}
	if o.RemovalCheck <= 0 {
		o.RemovalCheck = DefaultRemovalCheck
	}
	if o.CloseWait <= 0 {
		o.CloseWait = DefaultCloseWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Context is a connection to the PC/SC resource manager (an SCARDCONTEXT):
// it lists readers, watches them, and opens chips. Its methods may be called
// from several goroutines; the PC/SC calls behind them run one at a time.
// Chips have PC/SC contexts of their own, so a Wait in progress never holds
// up a command to a chip, and a Chip stays usable after its Context closed.
type Context struct {
	opts Options
	sys  system
	w    *worker
	sc   sysContext // used on w, except Cancel

	mu     sync.Mutex
	closed bool
}

// Open connects to pcscd (SCardEstablishContext).
//
// Errors: an error wrapping device.ErrNotSupported when the binary was built
// without cgo; an *Error unwrapping to ErrNoService when pcscd is not
// running; an error wrapping ctx's error (and device.ErrTimeout for a
// deadline) when ctx ends first.
func Open(ctx context.Context, opts Options) (*Context, error) {
	opts = opts.withDefaults()
	sys := opts.sys
	if sys == nil {
		var err error
		if sys, err = defaultSystem(); err != nil {
			return nil, err
		}
	}
	w := newWorker()
	var late sysContext // worker only: a context established after the caller gave up
	sc, err := call(ctx, w, opEstablish, "", func() (sysContext, error) {
		sc, err := sys.Establish()
		late = sc
		return sc, err
	})
	if err != nil {
		w.post(func() {
			if late != nil {
				late.Release()
			}
		})
		w.stop()
		return nil, err
	}
	return &Context{opts: opts, sys: sys, w: w, sc: sc}, nil
}

// Reader is one PC/SC reader as pcscd saw it at one moment.
type Reader struct {
	Name        string
	CardPresent bool   // a card is in the reader (and powered or powerable)
	ATR         []byte // the card's answer to reset, when CardPresent
	InUse       bool   // some program (perhaps this one) is connected to the card
	Exclusive   bool   // some program holds the card exclusively
	Mute        bool   // a card is there but does not answer

	state uint32 // pcsc-lite's event state, with its event counter
}

// counter is pcsc-lite's per-reader card event counter.
func (r *Reader) counter() uint32 { return r.state >> 16 }

// Readers lists the readers and what is in them (SCardListReaders and
// SCardGetStatusChange). No readers is an empty list, not an error.
//
// Errors: *Error (ErrNoService when pcscd went away), an error wrapping
// device.ErrClosed after Close, and an error wrapping ctx's error when ctx
// ends first.
func (c *Context) Readers(ctx context.Context) ([]Reader, error) {
	return call(ctx, c.w, opList, "", c.snapshot)
}

// snapshot runs on the worker.
func (c *Context) snapshot() ([]Reader, error) {
	for attempt := 0; ; attempt++ {
		names, err := c.sc.ListReaders()
		if isCode(err, CodeNoReaders) {
			return []Reader{}, nil
		}
		if err != nil {
			return nil, err
		}
		states := make([]readerState, len(names))
		for i, n := range names {
			states[i] = readerState{Reader: n, Current: stateUnaware}
		}
		err = c.sc.GetStatusChange(states, 0)
		if isCode(err, CodeUnknownReader) && attempt < 3 {
			continue // a reader left between the two calls
		}
		if err != nil && !isCode(err, CodeTimeout) {
			return nil, err
		}
		out := make([]Reader, len(states))
		for i, st := range states {
			out[i] = readerFromState(st)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
}

func readerFromState(st readerState) Reader {
	ev := st.Event &^ stateChanged
	r := Reader{
		Name:        st.Reader,
		CardPresent: ev&statePresent != 0 && ev&stateEmpty == 0,
		InUse:       ev&stateInUse != 0,
		Exclusive:   ev&stateExclusive != 0,
		Mute:        ev&stateMute != 0,
		state:       ev,
	}
	if r.CardPresent && len(st.ATR) > 0 {
		r.ATR = append([]byte(nil), st.ATR...)
	}
	return r
}

func isCode(err error, c Code) bool {
	var code Code
	if errors.As(err, &code) {
		return code == c
	}
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

// Wait blocks until the readers differ from known — a card arrived or left,
// a card was swapped, a reader was plugged in or unplugged — and returns the
// new list (as Readers would). Pass the result of Readers or of the previous
// Wait as known; Diff tells what changed. Changes of InUse or Exclusive alone
// do not end the wait.
//
// Wait calls SCardGetStatusChange for at most Options.WaitSlice at a time and
// cancels it (SCardCancel) when ctx ends, so it returns promptly then. Note
// that pcscd notices a card leaving only when it next polls the reader
// (every 400 ms with pcsc-lite).
//
// Errors: those of Readers.
func (c *Context) Wait(ctx context.Context, known []Reader) ([]Reader, error) {
	stop := context.AfterFunc(ctx, func() { c.sc.Cancel() })
	defer stop()
	states := make([]readerState, 0, len(known)+1)
	for _, r := range known {
		cur := r.state
		if cur == 0 {
			cur = stateEmpty
			if r.CardPresent {
				cur = statePresent
			}
		}
		states = append(states, readerState{Reader: r.Name, Current: cur})
	}
	states = append(states, readerState{Reader: pnpReader, Current: uint32(len(known)) << 16})
	for {
		next, err := call(ctx, c.w, opStatus, "", func() ([]Reader, error) {
			return c.waitOnce(states, known)
		})
		if err != nil || next != nil {
			return next, err
		}
	}
}

// waitOnce runs on the worker: one bounded SCardGetStatusChange, then a
// fresh snapshot if pcscd reported anything. It returns nil, nil when
// nothing that matters changed; states then hold what pcscd reported, for
// the next round.
func (c *Context) waitOnce(states []readerState, known []Reader) ([]Reader, error) {
	err := c.sc.GetStatusChange(states, c.opts.WaitSlice)
	switch {
	case err == nil, isCode(err, CodeUnknownReader):
	case isCode(err, CodeTimeout), isCode(err, CodeCancelled):
		return nil, nil
	default:
		return nil, err
	}
	now, err := c.snapshot()
	if err != nil {
		return nil, err
	}
	if !sameReaders(now, known) {
		return now, nil
	}
	byName := make(map[string]uint32, len(now))
	for _, r := range now {
		byName[r.Name] = r.state
	}
	for i := range states {
		if states[i].Reader == pnpReader {
			states[i].Current = uint32(len(now)) << 16
			continue
		}
		states[i].Current = byName[states[i].Reader]
	}
	return nil, nil
}

// sameReaders reports whether a and b have the same readers with the same
// cards in them.
func sameReaders(a, b []Reader) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]Reader, len(b))
	for _, r := range b {
		m[r.Name] = r
	}
	for _, r := range a {
		o, ok := m[r.Name]
		if !ok || r.CardPresent != o.CardPresent || !bytes.Equal(r.ATR, o.ATR) {
			return false
		}
		if r.CardPresent && r.state != 0 && o.state != 0 && r.counter() != o.counter() {
			return false // the card was swapped between two looks
		}
	}
	return true
}

// EventKind says what changed in a reader.
type EventKind int

// Kinds of Event.
const (
	ReaderAdded EventKind = iota + 1
	ReaderRemoved
	CardInserted
	CardRemoved
)

func (k EventKind) String() string {
	switch k {
	case ReaderAdded:
		return "reader added"
	case ReaderRemoved:
		return "reader removed"
	case CardInserted:
		return "card inserted"
	case CardRemoved:
		return "card removed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change between two lists of readers.
type Event struct {
	Kind   EventKind
	Reader string
	ATR    []byte // the inserted card's ATR (CardInserted only)
}

func (e Event) String() string { return fmt.Sprintf("%s: %s", e.Reader, e.Kind) }

// Diff returns what changed from old to new, ordered by reader name: a
// reader that left with a card in it gives CardRemoved then ReaderRemoved;
// a new reader with a card gives ReaderAdded then CardInserted; a card
// swapped between the two looks gives CardRemoved then CardInserted.
func Diff(old, new []Reader) []Event {
	before := make(map[string]Reader, len(old))
	for _, r := range old {
		before[r.Name] = r
	}
	after := make(map[string]Reader, len(new))
	names := make([]string, 0, len(old)+len(new))
	for _, r := range new {
		after[r.Name] = r
		if _, ok := before[r.Name]; !ok {
			names = append(names, r.Name)
		}
	}
	for _, r := range old {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	var ev []Event
	for _, n := range names {
		o, had := before[n]
		r, has := after[n]
		switch {
		case had && !has:
			if o.CardPresent {
				ev = append(ev, Event{Kind: CardRemoved, Reader: n})
			}
			ev = append(ev, Event{Kind: ReaderRemoved, Reader: n})
		case !had && has:
			ev = append(ev, Event{Kind: ReaderAdded, Reader: n})
			if r.CardPresent {
				ev = append(ev, Event{Kind: CardInserted, Reader: n, ATR: r.ATR})
			}
		case o.CardPresent && !r.CardPresent:
			ev = append(ev, Event{Kind: CardRemoved, Reader: n})
		case !o.CardPresent && r.CardPresent:
			ev = append(ev, Event{Kind: CardInserted, Reader: n, ATR: r.ATR})
		case o.CardPresent && r.CardPresent && !sameReaders([]Reader{o}, []Reader{r}):
			ev = append(ev, Event{Kind: CardRemoved, Reader: n}, Event{Kind: CardInserted, Reader: n, ATR: r.ATR})
		}
	}
	return ev
}

// Close releases the PC/SC context (SCardReleaseContext) after cancelling a
// Wait in progress. Later calls return errors wrapping device.ErrClosed.
// Chips opened through c are not affected; close them yourself. Calling
// Close again returns nil.
//
// Errors: an *Error from SCardReleaseContext; an error wrapping
// device.ErrTimeout when a PC/SC call was still stuck in pcscd after
// Options.CloseWait (the context is then released when that call returns).
func (c *Context) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.sc.Cancel()
	errc := make(chan error, 1)
	c.w.post(func() { errc <- wrapCode(opRelease, "", c.sc.Release()) })
	c.w.stop()
	t := time.NewTimer(c.opts.CloseWait)
	defer t.Stop()
	select {
	case <-c.w.done:
		return <-errc
	case <-t.C:
		return fmt.Errorf("pcsc: close: a PC/SC call is still waiting in pcscd; the context is released when it returns: %w", device.ErrTimeout)
	}
}
