package pcsc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Card is a raw connection to the card in a reader, for tools that send
// APDUs of their own (`authbench apdu`, as opensc-tool -s does): no applet is
// selected, no chaining, GET RESPONSE or keepalive polling is done, and the
// answers come back as the card gave them, status word included. The card
// is held in one PC/SC transaction from OpenCard to Close (unless
// Options.Exclusive), so that no other program slips an APDU in between.
type Card struct {
	reader string
	opts   Options
	w      *worker
	sc     sysContext
	card   sysCard
	atr    []byte

	mu     sync.Mutex
	closed bool
	gone   error
}

// OpenCard connects to the card in reader (SCardConnect, shared unless
// Options.Exclusive) and begins a transaction.
//
// Errors: an *Error unwrapping to device.ErrNotFound when the reader does
// not exist or holds no card, device.ErrBusy when another program holds the
// card, ErrNoService when pcscd is gone; ctx's error (with
// device.ErrTimeout for a deadline) when ctx ends first.
func (c *Context) OpenCard(ctx context.Context, reader string) (*Card, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("pcsc: open card in %q: context %w", reader, device.ErrClosed)
	}
	cd := &Card{reader: reader, opts: c.opts, w: newWorker()}
	type conn struct {
		sc   sysContext
		card sysCard
		atr  []byte
	}
	var late *conn
	got, err := call(ctx, cd.w, opConnect, reader, func() (*conn, error) {
		sc, err := c.sys.Establish()
		if err != nil {
			return nil, err
		}
		card, err := sc.Connect(reader, c.opts.Exclusive)
		if err != nil {
			sc.Release()
			return nil, err
		}
		atr, err := card.Status()
		if err == nil && !c.opts.Exclusive {
			err = card.Begin()
		}
		if err != nil {
			card.Disconnect()
			sc.Release()
			return nil, err
		}
		late = &conn{sc, card, atr}
		return late, nil
	})
	if err != nil {
		cd.w.post(func() {
			if late != nil {
				if !c.opts.Exclusive {
					late.card.End()
				}
				late.card.Disconnect()
				late.sc.Release()
			}
		})
		cd.w.stop()
		return nil, err
	}
	cd.sc, cd.card, cd.atr = got.sc, got.card, got.atr
	return cd, nil
}

// Reader returns the reader's name.
func (cd *Card) Reader() string { return cd.reader }

// ATR returns the card's answer to reset.
func (cd *Card) ATR() []byte { return append([]byte(nil), cd.atr...) }

// Transmit sends one command APDU as it is (SCardTransmit) and returns the
// card's answer: response data and status word.
//
// Errors: an *Error from PC/SC (device.ErrRemoved when the card left,
// also as an empty answer; once gone, every later call returns that);
// ctx's error (with device.ErrTimeout for a deadline) when ctx ends while
// the card has the APDU, which pcscd then keeps until the card answers;
// device.ErrClosed after Close.
func (cd *Card) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	cd.mu.Lock()
	closed, gone := cd.closed, cd.gone
	cd.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("pcsc: card in %q: %w", cd.reader, device.ErrClosed)
	case gone != nil:
		return nil, gone
	}
	cmd = append([]byte(nil), cmd...)
	resp, err := call(ctx, cd.w, opTransmit, cd.reader, func() ([]byte, error) {
		return cd.card.Transmit(cmd)
	})
	if err == nil && len(resp) == 0 {
		err = errEmptyAnswer(cd.reader)
	}
	if fatal(err) {
		cd.mu.Lock()
		cd.gone = err
		cd.mu.Unlock()
	}
	return resp, err
}

// Close ends the transaction and disconnects, leaving the card as it is
// (SCARD_LEAVE_CARD), then releases the PC/SC context. Calling Close again
// returns nil.
//
// Errors: an *Error from SCardDisconnect or SCardReleaseContext (a card
// already removed gives none); an error wrapping device.ErrTimeout when a
// PC/SC call was still stuck in pcscd after Options.CloseWait.
func (cd *Card) Close() error {
	cd.mu.Lock()
	if cd.closed {
		cd.mu.Unlock()
		return nil
	}
	cd.closed = true
	cd.mu.Unlock()
	var end func()
	if !cd.opts.Exclusive {
		end = func() { cd.card.End() }
	}
	return release(cd.w, cd.sc, func() sysCard { return cd.card }, end, cd.reader, cd.opts.CloseWait, "card")
}

// release ends the worker w of a card handle: on w it calls end (if any),
// disconnects the card that card returns there (if any; a card already gone
// or reset is no error) and releases sc, then waits at most wait for w to finish. what names the
// handle in the error of a PC/SC call that is still waiting in pcscd.
func release(w *worker, sc sysContext, card func() sysCard, end func(), reader string, wait time.Duration, what string) error {
	errc := make(chan error, 1)
	w.post(func() {
		c := card()
		if c == nil {
			errc <- nil
			return
		}
		if end != nil {
			end()
		}
		derr := c.Disconnect()
		if removed(wrapCode(opDisconnect, reader, derr)) || isCode(derr, CodeResetCard) {
			derr = nil
		}
		rerr := sc.Release()
		errc <- errors.Join(wrapCode(opDisconnect, reader, derr), wrapCode(opRelease, reader, rerr))
	})
	w.stop()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.done:
		return <-errc
	case <-t.C:
		return fmt.Errorf("pcsc: close %s on %q: a PC/SC call is still waiting in pcscd; the card is released when it returns: %w", what, reader, device.ErrTimeout)
	}
}
