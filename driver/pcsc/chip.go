package pcsc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// Chip is a FIDO authenticator (a MitID chip) in a PC/SC reader: a contact
// card or an NFC token on a CCID reader, or a simulated card behind vpcd.
// It implements device.Chip, device.NextAssertioner, device.Resetter and
// device.Selector, and also the one-method messengers ctap2.Messenger (CBOR)
// and u2f.Messenger (APDU), through which every command goes.
//
// Each command (one CTAP2 request with all its APDUs: chaining, GET
// RESPONSE, 9100 keepalive polls; or one U2F APDU) runs inside a PC/SC
// transaction, so other programs sharing the card cannot slip an APDU in
// between. The transaction begins before the command's first APDU and ends
// when no command follows within Options.TxLinger (DefaultTxLinger), so
// that back-to-back commands share it, or, with a negative TxLinger, after
// each command's last APDU; with Options.Exclusive there is none, as no
// other program can reach the card. Commands are serialised; a Chip may be
// shared by goroutines.
//
// Deadlines: every method honours its context. A PC/SC call cannot be
// interrupted, so when ctx ends while an APDU is with pcscd, the method
// returns at once with an error wrapping the context's error (and
// device.ErrTimeout for a deadline), and the APDU stays with pcscd until the
// card answers or goes away; its answer is thrown away, then the transaction
// ends. The next command waits for that (within its own context) and
// selects the FIDO applet again before it starts, which makes a CTAP card
// drop what it was doing. If the card never answers, later commands fail
// with their own deadlines, and Close gives up after Options.CloseWait.
//
// U2F-only cards (the applet answers "U2F_V2" to SELECT and refuses a
// CTAP2 authenticatorGetInfo) are served through U2F, with the CTAP 2.1 §10
// translation of u2f.Chip: MakeCredential becomes U2F_REGISTER and returns
// a "fido-u2f" attestation, GetAssertion becomes U2F_AUTHENTICATE, and Info
// describes what such a card can do; see U2FOnly and Protocols.
type Chip struct {
	reader string
	opts   Options
	w      *worker
	sc     sysContext // the chip's own PC/SC context; used on w, except Cancel
	card   sysCard    // used on w only

	base     context.Context // ends when Close is called
	stopBase context.CancelCauseFunc
	sem      chan struct{} // held by one command, released on w after its transaction ended

	// Set while opening, read-only afterwards.
	atr       []byte
	version   string
	protocols device.Protocols
	u2fChip   *u2f.Chip // the CTAP 2.1 §10 translation, for a U2F-only card
	apduOpts  apdu.ClientOptions
	ctap      *ctap2.Client
	u2f       *u2f.Client

	// Guarded by sem.
	needSelect bool // the applet must be selected before the next command
	reused     bool // the command runs in the previous one's lingering transaction
	sent       int  // APDUs of the command that reached the card

	// Used on w only.
	inTx    bool   // a transaction is open
	periods uint64 // numbers the times a transaction was left open to linger

	// The period of the transaction left open after the last command (see
	// release), 0 when there is none. The next command claims it with a
	// compare-and-swap, without a trip to the worker; the end of the
	// period, on the worker, ends the transaction only if it claims it
	// first.
	lingering atomic.Uint64

	mu     sync.Mutex
	closed bool
	gone   error // the card, the reader or pcscd went away
}

var (
	_ device.Chip             = (*Chip)(nil)
	_ device.NextAssertioner  = (*Chip)(nil)
	_ device.Resetter         = (*Chip)(nil)
	_ device.Selector         = (*Chip)(nil)
	_ ctap2.Messenger         = (*Chip)(nil)
	_ u2f.Messenger           = (*Chip)(nil)
	_ device.ProtocolReporter = (*Chip)(nil)
)

// errChipClosed is the cause given to commands cut short by Close.
var errChipClosed = fmt.Errorf("chip closed: %w", device.ErrClosed)

// OpenChip connects to the card in reader (SCardConnect, shared unless
// Options.Exclusive, T=0 or T=1), selects the FIDO applet (CTAP 2.1
// §11.3.3) and, when the applet answers "U2F_V2", asks for
// authenticatorGetInfo to learn whether the card speaks CTAP2 (CTAP 2.1
// §10: if not, the chip is U2F-only). The Chip has a PC/SC context of its
// own; close it with Close.
//
// Errors:
//   - an *Error unwrapping to device.ErrNotFound when the reader does not
//     exist or holds no card, device.ErrBusy when another program holds the
//     card exclusively, ErrNoService when pcscd is gone;
//   - an error wrapping device.ErrNotFound and the card's *apdu.StatusError,
//     saying "card in READER is not a FIDO authenticator", when SELECT is
//     refused (6A82: no FIDO applet); an error wrapping
//     device.ErrNotSupported when the applet names an unknown version;
//   - errors wrapping device.ErrRemoved when the card leaves meanwhile,
//     device.ErrClosed after Close of c, and ctx's error (with
//     device.ErrTimeout for a deadline) when ctx ends first.
func (c *Context) OpenChip(ctx context.Context, reader string) (*Chip, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("pcsc: open chip on %q: context %w", reader, device.ErrClosed)
	}
	ch := &Chip{reader: reader, opts: c.opts, w: newWorker(), sem: make(chan struct{}, 1)}
	type conn struct {
		sc   sysContext
		card sysCard
		atr  []byte
	}
	var late *conn // worker only: a connection made after the caller gave up
	got, err := call(ctx, ch.w, opConnect, reader, func() (*conn, error) {
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
		if err != nil {
			card.Disconnect()
			sc.Release()
			return nil, err
		}
		late = &conn{sc, card, atr}
		return late, nil
	})
	if err != nil {
		ch.w.post(func() {
			if late != nil {
				late.card.Disconnect()
				late.sc.Release()
			}
		})
		ch.w.stop()
		return nil, err
	}
	ch.sc, ch.card, ch.atr = got.sc, got.card, got.atr
	ch.base, ch.stopBase = context.WithCancelCause(context.Background())
	ch.apduOpts = apdu.ClientOptions{Extended: c.opts.Extended, PollInterval: c.opts.PollInterval}
	ch.ctap = ctap2.NewClient(ch)
	ch.u2f = u2f.NewClient(ch, &u2f.Options{PollInterval: c.opts.U2FPollInterval})
	if err := ch.identify(ctx); err != nil {
		ch.Close()
		return nil, err
	}
	return ch, nil
}

// identify selects the applet and, for a "U2F_V2" applet, probes for CTAP2.
// Since CTAP 2.1 §11.3.3 asks every applet that implements U2F to answer
// "U2F_V2", also one that speaks CTAP2 too, only authenticatorGetInfo tells
// a U2F-only card from a dual-mode one.
func (ch *Chip) identify(ctx context.Context) error {
	_, err := ch.exchange(ctx, func(ctx context.Context, cl *apdu.Client) ([]byte, error) {
		v, err := cl.Select(ctx)
		ch.version = v
		return nil, err
	})
	var se *apdu.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("pcsc: card in %q is not a FIDO authenticator: %w (%w)", ch.reader, device.ErrNotFound, err)
	case err != nil && ch.version != "":
		return fmt.Errorf("pcsc: card in %q: %w", ch.reader, err)
	case err != nil:
		return err
	}
	if ch.version != apdu.VersionU2F {
		ch.protocols = device.ProfileCTAP2Only
		return nil
	}
	speaks, err := ch.probeCTAP2(ctx)
	if err != nil {
		return err
	}
	ch.protocols = device.ProfileFIDO2
	if !speaks {
		ch.protocols = device.ProfileU2FOnly
		ch.u2fChip = u2f.NewChip(ch.u2f)
		ch.opts.Logger.Debug("pcsc: U2F-only card", "reader", ch.reader)
	}
	return nil
}

// probeCTAP2 sends authenticatorGetInfo in NFCCTAP_MSG (CTAP 2.1 §11.3.7.1),
// allowing status updates, and reports whether the card speaks CTAP2: a
// getInfo answer, or a status update (9100: the card is working on it),
// says yes; a refusal (6D00 from a U2F-only card, or any other status word,
// or an answer that is not a getInfo answer) says no. After a status update
// the applet is selected again before the next command, which drops the
// getInfo the card is still working on. It returns transport errors only.
func (ch *Chip) probeCTAP2(ctx context.Context) (bool, error) {
	var yes bool
	_, err := ch.exchange(ctx, func(ctx context.Context, cl *apdu.Client) ([]byte, error) {
		resp, err := cl.Transceive(ctx, &apdu.Command{CLA: apdu.CLAProprietary, INS: apdu.INSNFCCTAPMsg,
			P1: apdu.P1GetResponseSupported, Data: []byte{ctap2.CmdGetInfo}, Ne: apdu.MaxShortNe})
		if err != nil {
			return nil, err
		}
		switch {
		case resp.SW == apdu.SWStatusUpdate:
			yes, ch.needSelect = true, true
		case resp.SW == apdu.SWOK && len(resp.Data) > 0 && resp.Data[0] == ctap2.CodeOK:
			_, derr := ctap2.DecodeInfo(resp.Data[1:])
			yes = derr == nil
		}
		return nil, nil
	})
	return yes, err
}

// Reader returns the name of the reader the card is in.
func (ch *Chip) Reader() string { return ch.reader }

// ATR returns the card's answer to reset, as read when the chip was opened.
func (ch *Chip) ATR() []byte { return append([]byte(nil), ch.atr...) }

// Version returns what the FIDO applet answered to SELECT: "U2F_V2",
// "FIDO_2_0", or another "FIDO_2_..." string.
func (ch *Chip) Version() string { return ch.version }

// U2FOnly reports whether the card speaks only U2F (CTAP1): its applet
// answered "U2F_V2" and it refused authenticatorGetInfo. The CTAP2 methods of
// such a chip are translated to U2F (CTAP 2.1 §10).
func (ch *Chip) U2FOnly() bool { return ch.u2fChip != nil }

// Protocols reports what the card speaks, as found when it was opened:
// device.ProfileU2FOnly, device.ProfileFIDO2 (a "U2F_V2" applet that
// answers getInfo) or device.ProfileCTAP2Only (a "FIDO_2_..." applet).
func (ch *Chip) Protocols() device.Protocols { return ch.protocols }

// DeviceInfo describes the chip: kind chip, transport "pcsc", the reader as
// Path, and as Model its profile, the applet's answer to SELECT and the
// card's ATR, e.g. "FIDO2 applet U2F_V2 (ATR 3B80800101)".
func (ch *Chip) DeviceInfo() device.Info {
	return device.Info{
		Kind:      device.KindChip,
		Transport: "pcsc",
		Path:      ch.reader,
		Model:     fmt.Sprintf("%s applet %s (ATR %X)", ch.protocols, ch.version, ch.atr),
	}
}

// U2F returns a U2F (CTAP1) client over this chip, for register,
// authenticate and version requests (FIDO U2F Raw Message Formats §4-§6).
// Cards that speak CTAP2 usually speak U2F too.
func (ch *Chip) U2F() *u2f.Client { return ch.u2f }

// Info sends authenticatorGetInfo (CTAP 2.1 §6.4). For a U2F-only chip it
// returns, without asking the card, what such a card offers: version
// "U2F_V2", a zero AAGUID, ES256, and the options up=true, rk=false.
//
// Errors: those of ctap2.Client, with the transport errors described on
// CBOR.
func (ch *Chip) Info(ctx context.Context) (*ctap2.Info, error) {
	if ch.u2fChip != nil {
		if err := ch.usable(); err != nil {
			return nil, err
		}
		return ch.u2fChip.Info(ctx)
	}
	return ch.ctap.Info(ctx)
}

// MakeCredential sends authenticatorMakeCredential (CTAP 2.1 §6.1), or
// U2F_REGISTER for a U2F-only chip (CTAP 2.1 §10.2; the attestation format
// is then "fido-u2f").
//
// Errors: those of ctap2.Client.MakeCredential, with the transport errors
// described on CBOR; for a U2F-only chip also ctap2.ErrUnsupportedAlgorithm
// (no ES256 in pubKeyCredParams), ctap2.ErrUnsupportedOption (rk or uv
// asked for) and ctap2.ErrCredentialExcluded.
func (ch *Chip) MakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*ctap2.Attestation, error) {
	if ch.u2fChip != nil {
		return ch.u2fChip.MakeCredential(ctx, req)
	}
	return ch.ctap.MakeCredential(ctx, req)
}

// GetAssertion sends authenticatorGetAssertion (CTAP 2.1 §6.2), or
// U2F_AUTHENTICATE for a U2F-only chip (CTAP 2.1 §10.3).
//
// Errors: those of ctap2.Client.GetAssertion, with the transport errors
// described on CBOR; for a U2F-only chip also ctap2.ErrNoCredentials (empty
// allowList, or no key handle known) and ctap2.ErrUnsupportedOption (uv).
func (ch *Chip) GetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.Assertion, error) {
	if ch.u2fChip != nil {
		return ch.u2fChip.GetAssertion(ctx, req)
	}
	return ch.ctap.GetAssertion(ctx, req)
}

// GetNextAssertion sends authenticatorGetNextAssertion (CTAP 2.1 §6.3).
//
// Errors: those of ctap2.Client; device.ErrNotSupported for a U2F-only chip.
func (ch *Chip) GetNextAssertion(ctx context.Context) (*ctap2.Assertion, error) {
	if ch.u2fChip != nil {
		return nil, ch.notU2F("authenticatorGetNextAssertion")
	}
	return ch.ctap.GetNextAssertion(ctx)
}

// Reset sends authenticatorReset (CTAP 2.1 §6.6), which destroys every
// credential on the card.
//
// Errors: those of ctap2.Client; device.ErrNotSupported for a U2F-only chip.
func (ch *Chip) Reset(ctx context.Context) error {
	if ch.u2fChip != nil {
		return ch.notU2F("authenticatorReset")
	}
	return ch.ctap.Reset(ctx)
}

// Selection sends authenticatorSelection (CTAP 2.1 §6.9).
//
// Errors: those of ctap2.Client; device.ErrNotSupported for a U2F-only chip.
func (ch *Chip) Selection(ctx context.Context) error {
	if ch.u2fChip != nil {
		return ch.notU2F("authenticatorSelection")
	}
	return ch.ctap.Selection(ctx)
}

func (ch *Chip) notU2F(what string) error {
	return fmt.Errorf("pcsc: %s on %q: U2F-only card: %w", what, ch.reader, device.ErrNotSupported)
}

// CBOR sends one CTAP2 request (command byte and CBOR parameters) in
// NFCCTAP_MSG, with chaining, GET RESPONSE and NFCCTAP_GETRESPONSE polling
// as CTAP 2.1 §11.3 describes, all inside one PC/SC transaction, and returns
// the answer (status byte and CBOR). Keepalives are reported through
// ctap2.Keepalive(ctx, ...). A card that answers 6D00 (the applet is no
// longer selected: another program selected something else) is selected
// again and the request sent once more; with Options.TxLinger, in a fresh
// transaction. Likewise a card found reset by another program
// (SCARD_W_RESET_CARD) before the command's first APDU reached it is
// reconnected, selected again and sent the request.
//
// Errors:
//   - *apdu.StatusError when the card refuses with a status word;
//   - *Error from PC/SC, unwrapping to device.ErrRemoved (card removed or
//     reset), device.ErrNotFound (reader gone), ErrNoService (pcscd gone),
//     device.ErrProtocol (the exchange failed and the card is still there);
//     once the card, the reader or pcscd has gone, every later call returns
//     that error again;
//   - errors wrapping ctx's error, and device.ErrTimeout for a deadline,
//     when ctx ends first (see Chip about what happens to the card);
//   - errors wrapping device.ErrClosed after Close.
func (ch *Chip) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	return ch.exchange(ctx, func(ctx context.Context, cl *apdu.Client) ([]byte, error) {
		resp, err := cl.CBOR(ctx, req)
		var se *apdu.StatusError
		if errors.As(err, &se) && se.SW == apdu.SWINSNotSupported && ch.u2fChip == nil {
			if ok, rerr := ch.reselect(ctx, cl); rerr != nil {
				return nil, rerr
			} else if ok {
				resp, err = cl.CBOR(ctx, req)
			}
		}
		return resp, err
	})
}

// APDU sends one U2F request APDU (FIDO U2F Raw Message Formats §3) inside
// a PC/SC transaction and returns the response data followed by SW1 SW2,
// whatever the status word. A 6D00 answer makes it select the applet again
// and resend the request once, as CBOR does.
//
// Errors: *apdu.FormatError when req is not a command APDU, and the
// transport errors described on CBOR.
func (ch *Chip) APDU(ctx context.Context, req []byte) ([]byte, error) {
	return ch.exchange(ctx, func(ctx context.Context, cl *apdu.Client) ([]byte, error) {
		resp, err := cl.APDU(ctx, req)
		if err == nil && len(resp) >= 2 && resp[len(resp)-2] == 0x6D && resp[len(resp)-1] == 0x00 {
			if ok, rerr := ch.reselect(ctx, cl); rerr != nil {
				return nil, rerr
			} else if ok {
				resp, err = cl.APDU(ctx, req)
			}
		}
		return resp, err
	})
}

// usable returns the error that makes the chip unusable, if any.
func (ch *Chip) usable() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return fmt.Errorf("pcsc: chip on %q: %w", ch.reader, device.ErrClosed)
	}
	return ch.gone
}

// exchange runs one command inside a PC/SC transaction: it waits for the
// previous command to be over (on the card, not just for its caller), begins
// a transaction, selects the applet if needed, runs f with an apdu.Client
// whose Transmit honours ctx, and queues the end of the transaction.
//
// A command that carries on the previous one's lingering transaction
// (Options.TxLinger) and finds the card reset before any of its APDUs got
// through starts over as after a fresh begin: the transaction is ended, the
// card reconnected, a transaction begun, the applet selected and f run
// again. A command that fails other than with the card's status word ends
// its transaction at once instead of letting it linger.
func (ch *Chip) exchange(ctx context.Context, f func(context.Context, *apdu.Client) ([]byte, error)) ([]byte, error) {
	if err := ch.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ch.base, func() { cancel(errChipClosed) })
	defer stop()
	select {
	case ch.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxError("wait for the card", ch.reader, ctx)
	}
	clean := false // the command ended with the card's answer: its transaction may linger
	defer func() { ch.release(clean) }()
	if err := ch.usable(); err != nil {
		return nil, err
	}
	reused, err := ch.begin(ctx)
	if err != nil {
		return nil, ch.failed(ctx, err)
	}
	ch.reused, ch.sent = reused, 0
	cl := apdu.NewClient(transmitter{ch, ctx}, ch.apduOpts)
	resp, err := ch.run(ctx, cl, f)
	if err != nil && ch.reused && ch.sent == 0 && ctx.Err() == nil && isCode(err, CodeResetCard) {
		ch.opts.Logger.Debug("pcsc: card reset by another program while the transaction lingered", "reader", ch.reader, "err", err)
		if err = ch.renew(ctx, true); err == nil {
			resp, err = ch.run(ctx, cl, f)
		}
	}
	var se *apdu.StatusError
	clean = err == nil || (ctx.Err() == nil && errors.As(err, &se))
	if err != nil {
		return nil, ch.failed(ctx, err)
	}
	return resp, nil
}

// run selects the applet if needed, then runs f.
func (ch *Chip) run(ctx context.Context, cl *apdu.Client, f func(context.Context, *apdu.Client) ([]byte, error)) ([]byte, error) {
	if ch.needSelect {
		v, err := cl.Select(ctx)
		if err != nil {
			return nil, err
		}
		ch.opts.Logger.Debug("pcsc: applet selected again", "reader", ch.reader, "version", v)
		ch.needSelect = false
	}
	return f(ctx, cl)
}

// reselect selects the applet again after a 6D00 answer, in a fresh
// transaction when the command carried on a lingering one. It reports
// whether the applet is selected; the error is that of beginning the
// transaction, as the command's own.
func (ch *Chip) reselect(ctx context.Context, cl *apdu.Client) (bool, error) {
	if ch.reused {
		ch.opts.Logger.Debug("pcsc: applet deselected while the transaction lingered", "reader", ch.reader)
		if err := ch.renew(ctx, false); err != nil {
			return false, err
		}
	}
	if _, err := cl.Select(ctx); err != nil {
		return false, nil
	}
	ch.needSelect = false
	return true, nil
}

// release queues the end of the command behind whatever the worker still
// has to do for it: the end of the transaction (at once, or after
// Options.TxLinger if no command follows) and the release of sem.
//
// A command that did not end cleanly (see exchange) ends its transaction at
// once, lingering or not.
func (ch *Chip) release(clean bool) {
	ok := ch.w.post(func() {
		if ch.opts.TxLinger <= 0 || !clean {
			ch.endTx()
		} else if ch.inTx {
			ch.periods++
			p := ch.periods
			ch.lingering.Store(p)
			time.AfterFunc(ch.opts.TxLinger, func() {
				ch.w.post(func() {
					if ch.lingering.CompareAndSwap(p, 0) {
						ch.endTx()
					}
				})
			})
		}
		<-ch.sem
	})
	if !ok {
		<-ch.sem
	}
}

// endTx runs on the worker.
func (ch *Chip) endTx() {
	ch.lingering.Store(0)
	if !ch.inTx {
		return
	}
	ch.inTx = false
	if err := ch.card.End(); err != nil {
		ch.opts.Logger.Debug("pcsc: end transaction", "reader", ch.reader, "err", err)
	}
}

// begin starts the transaction, unless the previous command's transaction
// is still open (Options.TxLinger): then it reports reused, and takes no
// trip to the worker. A card that another program reset is reconnected
// (SCardReconnect) and its applet selected again.
func (ch *Chip) begin(ctx context.Context) (reused bool, err error) {
	if ch.opts.Exclusive {
		return false, nil // exclusive access needs no transaction
	}
	if p := ch.lingering.Load(); p != 0 && ch.lingering.CompareAndSwap(p, 0) {
		return true, nil
	}
	type result struct{ reused, reset bool }
	r, err := call(ctx, ch.w, opBegin, ch.reader, func() (result, error) {
		if ch.inTx {
			ch.lingering.Store(0)
			return result{reused: true}, nil
		}
		reset, err := ch.beginTx(false)
		return result{reset: reset}, err
	})
	if r.reset {
		ch.opts.Logger.Debug("pcsc: card was reset by another program; reconnected", "reader", ch.reader)
		ch.needSelect = true
	}
	return r.reused, err
}

// renew ends the lingering transaction the command carried on and begins a
// fresh one as begin does; reset says the card is known to have been reset,
// so it is reconnected without asking first. Later failures of the command
// are its own: no second renewal.
func (ch *Chip) renew(ctx context.Context, reset bool) error {
	ch.reused = false
	reset, err := call(ctx, ch.w, opBegin, ch.reader, func() (bool, error) {
		ch.endTx()
		return ch.beginTx(reset)
	})
	if reset {
		ch.opts.Logger.Debug("pcsc: card was reset by another program; reconnected", "reader", ch.reader)
		ch.needSelect = true
	}
	return err
}

// beginTx runs on the worker: SCardBeginTransaction, with SCardReconnect
// first when the card was reset (known before, or as Begin's answer). It
// reports whether the card was reset.
func (ch *Chip) beginTx(reset bool) (bool, error) {
	var err error
	if !reset {
		err = ch.card.Begin()
		reset = isCode(err, CodeResetCard)
	}
	if reset {
		if err = ch.card.Reconnect(ch.opts.Exclusive); err == nil {
			err = ch.card.Begin()
		}
	}
	if err == nil {
		ch.inTx = true
	}
	return reset, err
}

// failed looks at the error of a command and updates the chip: after a
// context end or a failed exchange the applet is selected again before the
// next command; when the card, the reader or pcscd has gone, the chip keeps
// returning that error. An empty answer (as vpcd gives when the card leaves
// mid-APDU) is such a removal at once. An exchange that failed without a
// clear reason (SCARD_E_NOT_TRANSACTED) is checked: if pcscd then reports
// the card gone, that is the error returned. A status word from the card
// needs none of this.
func (ch *Chip) failed(ctx context.Context, err error) error {
	var se *apdu.StatusError
	switch {
	case ctx.Err() != nil:
		ch.needSelect = true
		return err
	case errors.As(err, &se):
		return err
	}
	ch.needSelect = true
	if !fatal(err) && !errors.Is(err, device.ErrTimeout) && !errors.Is(err, device.ErrBusy) {
		if gone := ch.checkGone(ctx); gone != nil {
			err = fmt.Errorf("%w (after: %v)", gone, err)
		}
	}
	if fatal(err) {
		ch.mu.Lock()
		if ch.gone == nil {
			ch.gone = err
		}
		ch.mu.Unlock()
	}
	return err
}

// checkGone asks pcscd whether the card is still there, waiting up to
// Options.RemovalCheck for pcscd's next look at the reader. It returns an
// *Error (unwrapping to device.ErrRemoved, ErrNotFound or ErrNoService) when
// the card, reader or pcscd is gone, and nil when the card is still there
// or ctx ended.
func (ch *Chip) checkGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ch.opts.RemovalCheck)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ch.sc.Cancel() })
	defer stop()
	gone, _ := call(ctx, ch.w, opCardStatus, ch.reader, func() (*Error, error) {
		if _, err := ch.card.Status(); err != nil {
			return asError(opCardStatus, ch.reader, err), nil
		}
		st := []readerState{{Reader: ch.reader, Current: stateUnaware}}
		if err := ch.sc.GetStatusChange(st, 0); err != nil {
			return asError(opStatus, ch.reader, err), nil
		}
		st[0].Current = st[0].Event &^ stateChanged
		deadline, _ := ctx.Deadline()
		for ctx.Err() == nil {
			err := ch.sc.GetStatusChange(st, time.Until(deadline))
			switch {
			case isCode(err, CodeTimeout), isCode(err, CodeCancelled):
				return nil, nil
			case err != nil:
				return asError(opStatus, ch.reader, err), nil
			}
			ev := st[0].Event
			if ev&(stateEmpty|stateUnknown|stateUnavailable) == 0 && ev>>16 == st[0].Current>>16 {
				st[0].Current = ev &^ stateChanged
				continue // some other change (a program connected); keep waiting
			}
			if _, err := ch.card.Status(); err != nil {
				return asError(opCardStatus, ch.reader, err), nil
			}
			return nil, nil
		}
		return nil, nil
	})
	if gone != nil && fatal(gone) {
		return gone
	}
	return nil
}

// transmitter is the apdu.Transmitter of one command: it runs Transmit on
// the worker and gives up when the command's context ends.
type transmitter struct {
	ch  *Chip
	ctx context.Context
}

func (t transmitter) Transmit(cmd []byte) ([]byte, error) {
	cmd = append([]byte(nil), cmd...)
	resp, err := call(t.ctx, t.ch.w, opTransmit, t.ch.reader, func() ([]byte, error) {
		return t.ch.card.Transmit(cmd)
	})
	if err == nil && len(resp) == 0 {
		// No card answers with nothing; vpcd does when its card left
		// mid-command, also when it is back before pcscd's next look.
		return nil, errEmptyAnswer(t.ch.reader)
	}
	if err == nil {
		t.ch.sent++
	}
	return resp, err
}

// errEmptyAnswer is the error of an SCardTransmit that succeeded with no
// bytes: the card went away during the command (see Error).
func errEmptyAnswer(reader string) *Error {
	return &Error{Op: opTransmit, Reader: reader, Code: CodeRemovedCard,
		Detail: "the reader returned an empty answer: the card left during the command"}
}

// Close ends the chip: commands in progress give up at once (with errors
// wrapping device.ErrClosed), then the card is disconnected
// (SCardDisconnect, leaving the card as it is) and the chip's PC/SC context
// released. Calling Close again returns nil.
//
// Errors: an *Error from SCardDisconnect or SCardReleaseContext (a card
// already removed gives none); an error wrapping device.ErrTimeout when a
// PC/SC call was still stuck in pcscd after Options.CloseWait: the card is
// then disconnected, and the worker goroutine ends, as soon as pcscd
// returns from that call.
func (ch *Chip) Close() error {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return nil
	}
	ch.closed = true
	ch.mu.Unlock()
	if ch.stopBase != nil {
		ch.stopBase(errChipClosed)
	}
	if ch.sc != nil {
		ch.sc.Cancel() // wakes a removal check in progress
	}
	// ch.card is read on w only, where release calls the function.
	return release(ch.w, ch.sc, func() sysCard { return ch.card }, ch.endTx, ch.reader, ch.opts.CloseWait, "chip")
}
