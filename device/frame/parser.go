package frame

import (
	"bytes"
	"encoding/binary"
)

// Parser finds frames in a byte stream (CDP/1 §2.1: a receiver skips
// bytes until A5 and a frame whose CRC checks). Feed it bytes with Write as
// they arrive, in pieces of any size, then call Next until it reports false.
//
// Resynchronisation: a candidate frame starts at every A5. A candidate whose
// LEN exceeds MaxPayload, or whose CRC does not check, is not a frame: the
// parser drops only its A5 and scans again from the next byte, so a real
// frame hidden behind a false A5 is still found. Bad-CRC frames are dropped
// silently; Stats counts them.
//
// A false A5 with a large LEN would make the parser wait for bytes that a
// quiet line never sends. Idle tells it the line has gone quiet: candidates
// that started before the call and are still incomplete are given up.
//
// The parser never holds more than one incomplete candidate (at most
// MaxFrame-1 bytes) plus what was written since the last Next. Its zero
// value is ready to use; it is not safe for concurrent use.
type Parser struct {
	buf   []byte
	off   int // buf[off:] is unprocessed
	stale int // the first stale bytes of buf[off:] arrived before the last Idle
	stats Stats
}

// Stats counts what a Parser saw. The counters only grow.
type Stats struct {
	Frames  uint64 // frames whose CRC checked
	BadCRC  uint64 // candidates (A5 with LEN ≤ MaxPayload) whose CRC did not check
	BadLen  uint64 // candidates whose LEN exceeded MaxPayload
	Stale   uint64 // incomplete candidates given up after Idle
	Skipped uint64 // bytes discarded outside any frame (noise, false A5s)
}

// Add returns the sum of s and t, counter by counter.
func (s Stats) Add(t Stats) Stats {
	return Stats{
		Frames:  s.Frames + t.Frames,
		BadCRC:  s.BadCRC + t.BadCRC,
		BadLen:  s.BadLen + t.BadLen,
		Stale:   s.Stale + t.Stale,
		Skipped: s.Skipped + t.Skipped,
	}
}

// Write appends b to the bytes waiting to be parsed. It never fails; it
// implements io.Writer.
func (p *Parser) Write(b []byte) (int, error) {
	if p.off > 0 {
		n := copy(p.buf, p.buf[p.off:])
		p.buf = p.buf[:n]
		p.off = 0
	}
	p.buf = append(p.buf, b...)
	return len(b), nil
}

// Buffered returns the number of bytes written but not yet consumed as a
// frame or skipped.
func (p *Parser) Buffered() int { return len(p.buf) - p.off }

// Stats returns the counters so far.
func (p *Parser) Stats() Stats { return p.stats }

// Idle marks every byte buffered so far as old: a candidate frame that
// starts in them and is not complete will not be waited for. Call it when
// the line has been quiet for longer than a frame takes to arrive.
func (p *Parser) Idle() { p.stale = p.Buffered() }

// Reset discards buffered bytes (counting them as skipped). The counters
// stay.
func (p *Parser) Reset() { p.skip(p.Buffered()) }

// Next returns the next frame whose CRC checks, and true; or false when the
// buffered bytes hold no complete frame yet. The frame's Payload is a copy.
func (p *Parser) Next() (Frame, bool) {
	for {
		b := p.buf[p.off:]
		i := bytes.IndexByte(b, SOF)
		if i < 0 {
			p.skip(len(b))
			return Frame{}, false
		}
		p.skip(i)
		b = b[i:]
		if len(b) >= 3 {
			n := int(binary.BigEndian.Uint16(b[1:3]))
			if n > MaxPayload {
				p.stats.BadLen++
				p.skip(1)
				continue
			}
			if total := n + Overhead; len(b) >= total {
				if binary.BigEndian.Uint16(b[total-2:total]) != CRC16(b[1:total-2]) {
					p.stats.BadCRC++
					p.skip(1)
					continue
				}
				f := Frame{Seq: b[3], Cmd: b[4], Payload: append([]byte{}, b[HeaderLen:HeaderLen+n]...)}
				p.consume(total)
				p.stats.Frames++
				return f, true
			}
		}
		// Incomplete candidate.
		if p.stale > 0 {
			p.stats.Stale++
			p.skip(1)
			continue
		}
		return Frame{}, false
	}
}

// skip discards n bytes as noise.
func (p *Parser) skip(n int) {
	p.stats.Skipped += uint64(n)
	p.consume(n)
}

func (p *Parser) consume(n int) {
	p.off += n
	p.stale = max(p.stale-n, 0)
	if p.off == len(p.buf) {
		p.buf = p.buf[:0]
		p.off = 0
	}
}
