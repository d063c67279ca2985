package apdu

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// Handler is the authenticator behind a Card: device logic that answers CTAP2
// and U2F requests. A simulator provides both (ctap2.Handler and u2f.Handler
// combined).
//
// Both methods get a context that the card cancels when the host moves on
// (another command, a reset, Close). ServeCTAP2's context carries a keepalive
// function (ctap2.WithKeepalive): the handler reports
// ctap2.Keepalive(ctx, ctap2.StatusUPNeeded) while it waits for a touch, and
// answers CTAP2_ERR_KEEPALIVE_CANCEL (0x2D) when ctx is cancelled.
type Handler interface {
	ServeCTAP2(ctx context.Context, req []byte) []byte // command byte + CBOR -> status byte + CBOR
	ServeU2F(ctx context.Context, req []byte) []byte   // U2F request APDU -> response data + SW1 SW2
}

// Defaults of CardOptions.
const (
	DefaultStatusAfter = 100 * time.Millisecond
	DefaultMaxMessage  = 7609 // CTAP 2.1 §11.2.4: the largest CTAPHID message, used for NFC too
	DefaultCloseWait   = time.Second
	DefaultMaxWait     = 30 * time.Second
)

// CardOptions configures a Card. The zero value gives the defaults.
type CardOptions struct {
	// Protocols is what the applet implements; zero means what the Handler
	// reports through device.ProtocolReporter, and U2F and CTAP2 when it
	// reports nothing. It decides the answer to SELECT, as CTAP 2.1
	// §11.3.3 (Applet selection) asks: "U2F_V2" when the applet implements
	// U2F, whether or not it also implements CTAP2, and "FIDO_2_0" only
	// for a CTAP2-only applet (hosts then learn from authenticatorGetInfo
	// whether a "U2F_V2" applet speaks CTAP2, as python-fido2 does). Without
	// CTAP2, NFCCTAP_MSG and NFCCTAP_GETRESPONSE are answered 6D00, as by
	// a U2F-only card; without U2F, the U2F instructions are.
	Protocols device.Protocols
	// StatusAfter is how long NFCCTAP_MSG and NFCCTAP_GETRESPONSE wait for
	// the handler's answer before answering 9100 with the last keepalive
	// status (default 100 ms: quick operations answer at once, and a polling
	// host is held to about ten round trips a second).
	StatusAfter time.Duration
	// MaxMessage is the largest command data, after chaining is reassembled
	// (default 7609). Longer commands get 6700.
	MaxMessage int
	// CloseWait is how long Close waits for a cancelled handler to return
	// (default 1 s).
	CloseWait time.Duration
	// MaxWait bounds how long one command waits for the handler when the
	// card cannot answer 9100 (a host without NFCCTAP_GETRESPONSE, or U2F).
	// When it passes, the operation is cancelled and the handler's answer to
	// the cancellation (CTAP2_ERR_KEEPALIVE_CANCEL) is returned, so Process
	// never blocks for longer (default 30 s, the usual user-presence timeout).
	MaxWait time.Duration

	// The two storm knobs below make the card legal but tiresome, to test
	// that hosts cope with the long exchanges that ISO/IEC 7816-4 and
	// CTAP 2.1 §11.3 allow and stop when their context ends. 0 turns each
	// off.

	// ChunkLimit, when positive, caps every response at ChunkLimit data
	// bytes, even when the command's Le asked for more: the rest waits
	// behind 61xx for GET RESPONSE (ISO/IEC 7816-4 §7.6.1), which gets at
	// most ChunkLimit bytes again. A 2 KiB answer with ChunkLimit 1 takes
	// about 2000 GET RESPONSE commands: a 61xx storm.
	ChunkLimit int
	// UpdateStorm, when positive, makes NFCCTAP_MSG and NFCCTAP_GETRESPONSE
	// answer SW 9100 (CTAP 2.1 §11.3.4, with the last keepalive status,
	// PROCESSING unless the handler reported another) at least UpdateStorm
	// times for each request before its result, even when the handler has
	// already answered; a negative value answers 9100 forever, so a host
	// only gets out through its own deadline. While the handler has not
	// answered, each 9100 still waits up to StatusAfter as usual; after
	// that, storm updates come at once. It applies only to NFCCTAP_MSG with
	// P1 bit 0x80 set (a host that polls): a 9100 storm.
	UpdateStorm int
}

// Card is the device side of CTAP over ISO 7816 (CTAP 2.1 §11.3): a FIDO
// applet that takes command APDUs, from vpcd or from an in-process Client,
// and hands requests to a Handler.
//
// It implements:
//   - SELECT of FIDOAID (00 A4 04 00), answering the version that follows
//     from CardOptions.Protocols (CTAP 2.1 §11.3.3); another AID deselects
//     and gets 6A82. Before a successful SELECT every
//     other command gets 6D00, as on a card with no application that knows
//     the instruction; this answer cannot be mistaken for U2F's 6985 "touch
//     required".
//   - command chaining (CLA|0x10, ISO/IEC 7816-4 §5.4.1) reassembled up to
//     MaxMessage bytes; a command with another header abandons a chain.
//   - responses longer than Ne (256 when there is no Le) in pieces with 61xx
//     and GET RESPONSE, CLA 00 or 80 (ISO/IEC 7816-4 §7.6.1).
//   - extended APDUs, answered whole when Ne allows.
//   - NFCCTAP_MSG (80 10, CTAP 2.1 §11.3.4): ServeCTAP2 runs in its own
//     goroutine; if it has not answered within StatusAfter the card answers
//     9100 with one byte, the last keepalive status (PROCESSING until the
//     handler reports another), and NFCCTAP_GETRESPONSE (80 11) waits up to
//     StatusAfter again. With P1 bit 0x80 clear (a host that cannot poll) the
//     card waits for the answer.
//   - U2F register, authenticate and version (CLA 00, INS 01, 02, 03) go to
//     ServeU2F, re-encoded as one extended APDU with Ne = 65536.
//
// Every command other than NFCCTAP_GETRESPONSE cancels a running operation,
// so a host that gives up cancels by sending anything else, or by powering
// the card off (Reset). A Card is safe for concurrent use; commands are
// processed one at a time.
type Card struct {
	h    Handler
	opts CardOptions

	procMu sync.Mutex // held for the whole of one Process call

	mu        sync.Mutex // guards the fields below
	closed    bool
	selected  bool
	chain     *chain
	pending   []byte // response bytes awaiting GET RESPONSE
	pendingSW uint16
	op        *operation

	ops  sync.WaitGroup // handler goroutines
	base context.Context
	stop context.CancelFunc
}

type chain struct {
	hdr  [4]byte // CLA without the chaining bit, INS, P1, P2
	data []byte
}

type operation struct {
	cancel  context.CancelFunc
	done    chan struct{} // closed when result is set
	result  []byte
	status  atomic.Uint32 // last ctap2.KeepaliveStatus reported
	updates int           // 9100 answers given for it; guarded by Card.mu
}

// NewCard returns a powered, unselected card serving h.
func NewCard(h Handler, opts CardOptions) *Card {
	if opts.Protocols == 0 {
		opts.Protocols = device.ProfileFIDO2
		if r, ok := h.(device.ProtocolReporter); ok && r.Protocols() != 0 {
			opts.Protocols = r.Protocols()
		}
	}
	if opts.StatusAfter <= 0 {
		opts.StatusAfter = DefaultStatusAfter
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.CloseWait <= 0 {
		opts.CloseWait = DefaultCloseWait
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	base, stop := context.WithCancel(context.Background())
	return &Card{h: h, opts: opts, base: base, stop: stop}
}

var _ Transmitter = (*Card)(nil)

// Transmit processes one command APDU with a background context, so that a
// Client can talk to the card in-process. It returns an error wrapping
// device.ErrClosed after Close; any other answer, even to garbage, is a
// response APDU.
func (c *Card) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("apdu: transmit to card: %w", device.ErrClosed)
	}
	return c.Process(context.Background(), cmd), nil
}

// Process takes one command APDU and returns the response APDU, always at
// least the two status bytes. It never panics on bad input: malformed APDUs
// get 6700, unknown classes 6E00, unknown instructions 6D00, bad P1 P2 6A86.
// ctx bounds only the wait for a running handler (the card then answers 9100,
// or 6F00 for U2F); the handler itself runs under the card's own context.
// After Close, Process answers 6F00.
func (c *Card) Process(ctx context.Context, raw []byte) []byte {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return sw(SWUnknown)
	}
	cmd, err := ParseCommand(raw)
	if err != nil || !(cmd.CLA == CLAProprietary && cmd.INS == INSNFCCTAPGetResponse) {
		c.cancelOp()
	}
	if err != nil {
		c.chain, c.pending = nil, nil
		return sw(SWWrongLength)
	}
	chained := cmd.CLA&CLAChaining != 0
	cla := cmd.CLA &^ CLAChaining
	if cla != 0x00 && cla != CLAProprietary {
		c.chain, c.pending = nil, nil
		return sw(SWCLANotSupported)
	}

	// GET RESPONSE: the next piece of a long answer.
	if cmd.INS == INSGetResponse {
		c.chain = nil
		switch {
		case chained:
			c.pending = nil
			return sw(SWChainingNotSupported)
		case cmd.P1 != 0 || cmd.P2 != 0:
			c.pending = nil
			return sw(SWIncorrectP1P2)
		case c.pending == nil:
			return sw(SWConditionsNotSatisfied)
		}
		data, status := c.pending, c.pendingSW
		c.pending = nil
		return c.respond(data, status, cmd.Ne)
	}
	c.pending = nil

	// Command chaining.
	hdr := [4]byte{cla, cmd.INS, cmd.P1, cmd.P2}
	if c.chain != nil && c.chain.hdr != hdr {
		c.chain = nil
	}
	if c.chain != nil || chained {
		if c.chain == nil {
			c.chain = &chain{hdr: hdr}
		}
		if len(c.chain.data)+len(cmd.Data) > c.opts.MaxMessage {
			c.chain = nil
			return sw(SWWrongLength)
		}
		c.chain.data = append(c.chain.data, cmd.Data...)
		if chained {
			return sw(SWOK)
		}
		cmd.Data, c.chain = c.chain.data, nil
	}
	if len(cmd.Data) > c.opts.MaxMessage {
		return sw(SWWrongLength)
	}
	cmd.CLA = cla

	switch {
	case cla == 0x00 && cmd.INS == INSSelect:
		return c.selectApplet(cmd)
	case !c.selected:
		return sw(SWINSNotSupported)
	case cla == CLAProprietary && (cmd.INS == INSNFCCTAPMsg || cmd.INS == INSNFCCTAPGetResponse):
		return c.nfcctap(ctx, cmd)
	case cla == 0x00 && cmd.INS >= 0x01 && cmd.INS <= 0x03 && c.opts.Protocols.Has(device.ProtocolU2F):
		return c.u2f(ctx, cmd)
	}
	return sw(SWINSNotSupported)
}

// SelectVersion returns what a FIDO applet implementing protocols answers to
// SELECT (CTAP 2.1 §11.3.3, Applet selection): VersionU2F when it
// implements U2F (CTAP1), also together with CTAP2, so that U2F-only hosts
// keep working; VersionFIDO2 only when it implements CTAP2 alone.
func SelectVersion(protocols device.Protocols) string {
	if protocols.Has(device.ProtocolU2F) {
		return VersionU2F
	}
	return VersionFIDO2
}

// selectApplet answers SELECT by DF name (ISO/IEC 7816-4 §11.1.1,
// CTAP 2.1 §11.3.3).
func (c *Card) selectApplet(cmd *Command) []byte {
	if cmd.P1 != 0x04 {
		return sw(SWIncorrectP1P2)
	}
	if !bytes.Equal(cmd.Data, FIDOAID[:]) {
		c.selected = false
		return sw(SWFileNotFound)
	}
	c.selected = true
	return c.respond([]byte(SelectVersion(c.opts.Protocols)), SWOK, cmd.Ne)
}

// nfcctap handles NFCCTAP_MSG and NFCCTAP_GETRESPONSE (CTAP 2.1 §11.3.4).
func (c *Card) nfcctap(ctx context.Context, cmd *Command) []byte {
	if !c.opts.Protocols.Has(device.ProtocolCTAP2) {
		return sw(SWINSNotSupported)
	}
	if cmd.INS == INSNFCCTAPGetResponse {
		if cmd.P1 != 0 || cmd.P2 != 0 {
			return sw(SWIncorrectP1P2)
		}
		if c.op == nil {
			return sw(SWConditionsNotSatisfied)
		}
		return c.await(ctx, c.op, true, SWOK, cmd.Ne)
	}
	if cmd.P1&^P1GetResponseSupported != 0 || cmd.P2 != 0 {
		return sw(SWIncorrectP1P2)
	}
	if len(cmd.Data) == 0 {
		return sw(SWWrongLength)
	}
	req := cmd.Data
	op := c.startOp(func(ctx context.Context) []byte { return c.h.ServeCTAP2(ctx, req) })
	return c.await(ctx, op, cmd.P1&P1GetResponseSupported != 0, SWOK, cmd.Ne)
}

// u2f hands a U2F request (FIDO U2F NFC Protocol §5) to the handler and waits
// for its answer.
func (c *Card) u2f(ctx context.Context, cmd *Command) []byte {
	full := &Command{CLA: cmd.CLA, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: cmd.Data, Ne: MaxExtendedNe}
	req, err := full.EncodeExtended()
	if err != nil { // cannot happen: Data ≤ MaxMessage was checked
		return sw(SWWrongLength)
	}
	op := c.startOp(func(ctx context.Context) []byte { return c.h.ServeU2F(ctx, req) })
	return c.await(ctx, op, false, 0, cmd.Ne)
}

// startOp cancels any running operation and runs fn in a new goroutine.
// c.mu is held.
func (c *Card) startOp(fn func(context.Context) []byte) *operation {
	c.cancelOp()
	ctx, cancel := context.WithCancel(c.base)
	op := &operation{cancel: cancel, done: make(chan struct{})}
	op.status.Store(uint32(ctap2.StatusProcessing))
	ctx = ctap2.WithKeepalive(ctx, func(s ctap2.KeepaliveStatus) { op.status.Store(uint32(s)) })
	c.op = op
	c.ops.Add(1)
	go func() {
		defer c.ops.Done()
		defer cancel()
		op.result = fn(ctx)
		close(op.done)
	}()
	return op
}

// cancelOp cancels the running operation, if any. c.mu is held.
func (c *Card) cancelOp() {
	if c.op != nil {
		c.op.cancel()
		c.op = nil
	}
}

// await waits for op with c.mu released: up to StatusAfter when update is
// set, else until it ends. A finished CTAP2 answer (okSW != 0) is returned
// with status word okSW, unless an UpdateStorm still owes updates; a
// finished U2F answer (okSW == 0) carries its own. c.mu is held on entry and
// on return.
func (c *Card) await(ctx context.Context, op *operation, update bool, okSW uint16, ne int) []byte {
	if update && c.storming(op) {
		select {
		case <-op.done:
			op.updates++
			return append([]byte{byte(op.status.Load())}, sw(SWStatusUpdate)...)
		default:
		}
	}
	wait := c.opts.MaxWait
	if update {
		wait = c.opts.StatusAfter
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	c.mu.Unlock()
	select {
	case <-op.done:
	case <-t.C:
		if !update {
			// No way to tell the host to poll: give up on the operation
			// and answer what the handler says to the cancellation.
			op.cancel()
			cw := time.NewTimer(c.opts.CloseWait)
			select {
			case <-op.done:
			case <-cw.C:
			}
			cw.Stop()
		}
	case <-ctx.Done():
	}
	c.mu.Lock()
	if c.op != op { // reset, closed or replaced while we waited
		return sw(SWUnknown)
	}
	finished := false
	select {
	case <-op.done:
		finished = true
	default:
	}
	switch {
	case !finished && okSW == 0: // U2F has no status updates
		return sw(SWUnknown)
	case !finished || update && c.storming(op):
		op.updates++
		return append([]byte{byte(op.status.Load())}, sw(SWStatusUpdate)...)
	}
	c.op = nil
	res := op.result
	if okSW == 0 {
		if len(res) < 2 {
			return sw(SWUnknown)
		}
		n := len(res) - 2
		return c.respond(res[:n], binary.BigEndian.Uint16(res[n:]), ne)
	}
	if len(res) == 0 {
		return sw(SWUnknown)
	}
	return c.respond(res, okSW, ne)
}

// storming reports whether UpdateStorm still owes op a 9100 answer.
// c.mu is held.
func (c *Card) storming(op *operation) bool {
	n := c.opts.UpdateStorm
	return n < 0 || op.updates < n
}

// respond returns at most ne bytes of data (256 when ne is 0; at most
// ChunkLimit when set) with status status, keeping the rest for GET
// RESPONSE behind 61xx. c.mu is held.
func (c *Card) respond(data []byte, status uint16, ne int) []byte {
	limit := ne
	if limit == 0 {
		limit = MaxShortNe
	}
	if c.opts.ChunkLimit > 0 {
		limit = min(limit, c.opts.ChunkLimit)
	}
	if len(data) <= limit {
		return binary.BigEndian.AppendUint16(append([]byte(nil), data...), status)
	}
	c.pending, c.pendingSW = data[limit:], status
	out := append([]byte(nil), data[:limit]...)
	return append(out, byte(SWBytesRemaining>>8), byte(min(len(c.pending), MaxShortNe))) // 256 or more: 6100
}

func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

// Reset powers the card off and on: it cancels a running operation and
// forgets the selection, a partial command chain and undelivered response
// bytes. It does not wait for the handler to return.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelOp()
	c.selected = false
	c.chain, c.pending = nil, nil
}

// Close cancels a running operation and waits up to CloseWait for every
// handler goroutine to return. It returns an error wrapping device.ErrBusy if
// one is still running (a handler that ignores its context). Calling Close
// again waits again.
func (c *Card) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cancelOp()
	c.chain, c.pending = nil, nil
	c.mu.Unlock()
	c.stop()
	done := make(chan struct{})
	go func() {
		c.ops.Wait()
		close(done)
	}()
	t := time.NewTimer(c.opts.CloseWait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("apdu: card closed but a handler still runs %v after cancel: %w", c.opts.CloseWait, device.ErrBusy)
	}
}
