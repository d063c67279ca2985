package ctaphid

import "time"

// DefaultMessageTimeout is how long a Reassembler waits for the next packet
// of a half-received message before it drops the message (CTAP 2.1
// §11.2.5.2, "Transaction timeout"). The spec leaves the value to the
// device; one second is well above what a working host needs between two
// packets of one message (it writes them back to back) and short enough that
// a host that crashed mid-message locks the others out only briefly.
const DefaultMessageTimeout = time.Second

// Reassembler joins packets into messages (CTAP 2.1 §11.2.4) and applies the
// packet-level rules of §11.2.5: one message is assembled at a time,
// continuation packets must arrive in order, and a message that stops
// arriving times out. The zero value is ready to use. A Reassembler is not
// safe for concurrent use.
//
// The rules, in the words of the device side (a host feeds it only packets
// of its own channel, so the channel rules never fire there):
//
//   - An initialization packet whose BCNT exceeds MaxMessageSize gives
//     ERR_INVALID_LEN on its channel.
//   - While a message on channel X is being assembled, an initialization
//     packet from another channel gives ERR_CHANNEL_BUSY on that channel,
//     except INIT and CANCEL requests that fit in one packet: they are
//     returned as messages and the pending message stays (allocating or
//     resynchronizing a channel is always possible, and CANCEL is never
//     answered).
//   - An initialization packet on channel X itself abandons the pending
//     message; when it is INIT or CANCEL it starts a new message, otherwise it
//     gives ERR_INVALID_SEQ on X (the host lost track of its own message).
//   - A continuation packet out of sequence gives ERR_INVALID_SEQ on its
//     channel and drops the pending message (§11.2.5.4).
//   - Continuation packets with no pending message on their channel are
//     ignored, as the spec asks for spurious continuation packets; this also
//     covers the rest of a message whose first packet was refused as busy.
//   - A pending message with no new packet for Timeout is dropped; Expire
//     reports it as ERR_MSG_TIMEOUT.
type Reassembler struct {
	// Timeout is the longest gap between two packets of one message;
	// zero means DefaultMessageTimeout.
	Timeout time.Duration

	active   bool
	msg      Message
	want     int
	seq      byte
	deadline time.Time
}

// Add feeds one packet received at time now. It returns the completed
// message, or nil when more packets are needed or the packet was ignored. A
// non-nil error is always an *Error naming the channel and the CTAPHID error
// code a device sends back (see the Reassembler rules); the packet is then
// consumed.
func (r *Reassembler) Add(p *Packet, now time.Time) (*Message, error) {
	if r.active && !now.Before(r.deadline) {
		r.reset() // timed out; Expire would have reported it
	}
	if !p.Init {
		return r.addContinuation(p, now)
	}
	if r.active {
		oneShot := (p.Cmd == CmdInit || p.Cmd == CmdCancel)
		if p.CID != r.msg.CID {
			if oneShot && int(p.Len) <= InitDataSize {
				return single(p), nil
			}
			return nil, &Error{CID: p.CID, Code: CodeChannelBusy}
		}
		r.reset()
		if !oneShot {
			return nil, &Error{CID: p.CID, Code: CodeInvalidSeq}
		}
	}
	if int(p.Len) > MaxMessageSize {
		return nil, &Error{CID: p.CID, Code: CodeInvalidLen}
	}
	if int(p.Len) <= InitDataSize {
		return single(p), nil
	}
	r.active = true
	r.want = int(p.Len)
	r.msg = Message{CID: p.CID, Cmd: p.Cmd, Data: make([]byte, 0, r.want)}
	r.msg.Data = appendPadded(r.msg.Data, p.Data, InitDataSize)
	r.seq = 0
	r.deadline = now.Add(r.timeout())
	return nil, nil
}

func (r *Reassembler) addContinuation(p *Packet, now time.Time) (*Message, error) {
	if !r.active || p.CID != r.msg.CID {
		return nil, nil
	}
	if p.Seq != r.seq {
		r.reset()
		return nil, &Error{CID: p.CID, Code: CodeInvalidSeq}
	}
	r.msg.Data = appendPadded(r.msg.Data, p.Data, min(ContDataSize, r.want-len(r.msg.Data)))
	if len(r.msg.Data) == r.want {
		m := r.msg
		r.reset()
		return &m, nil
	}
	r.seq++
	r.deadline = now.Add(r.timeout())
	return nil, nil
}

// Expire drops the pending message if no packet of it arrived for Timeout
// before now, and returns an *Error with ERR_MSG_TIMEOUT on its channel; it
// returns nil when nothing expired.
func (r *Reassembler) Expire(now time.Time) error {
	if !r.active || now.Before(r.deadline) {
		return nil
	}
	cid := r.msg.CID
	r.reset()
	return &Error{CID: cid, Code: CodeMsgTimeout}
}

// Deadline returns when the pending message times out, and false when no
// message is pending.
func (r *Reassembler) Deadline() (time.Time, bool) {
	return r.deadline, r.active
}

// Pending returns the channel of the message being assembled, and false when
// none is.
func (r *Reassembler) Pending() (uint32, bool) {
	return r.msg.CID, r.active
}

// Reset drops the pending message, if any.
func (r *Reassembler) Reset() { r.reset() }

func (r *Reassembler) reset() {
	r.active = false
	r.msg = Message{}
	r.want = 0
	r.seq = 0
	r.deadline = time.Time{}
}

func (r *Reassembler) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultMessageTimeout
}

// single returns the one-packet message in p.
func single(p *Packet) *Message {
	return &Message{CID: p.CID, Cmd: p.Cmd, Data: appendPadded(make([]byte, 0, p.Len), p.Data, int(p.Len))}
}

// appendPadded appends the first n bytes of src to dst, reading missing
// bytes as the zero padding a report carries.
func appendPadded(dst, src []byte, n int) []byte {
	if len(src) >= n {
		return append(dst, src[:n]...)
	}
	dst = append(dst, src...)
	for range n - len(src) {
		dst = append(dst, 0)
	}
	return dst
}
