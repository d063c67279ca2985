package apdutest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/authbench/authbench/device/apdu"
)

// Exchange is one command APDU and the response APDU it got.
type Exchange struct {
	Command  []byte
	Response []byte
}

// Transcript is a conversation with a card, in order.
type Transcript []Exchange

// ParseTranscript reads the text form described in the package comment. It
// returns an error naming the line when a line is not a comment, "> hex" or
// "< hex", when hex is bad or empty, or when commands and responses do not
// alternate starting with a command.
func ParseTranscript(text []byte) (Transcript, error) {
	var tr Transcript
	var cmd []byte // command waiting for its response
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if len(line) < 2 || (line[0] != '>' && line[0] != '<') || line[1] != ' ' {
			return nil, fmt.Errorf("apdutest: line %d: want \"> hex\" or \"< hex\", got %q", n, line)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(line[2:], " ", ""))
		if err != nil {
			return nil, fmt.Errorf("apdutest: line %d: %v", n, err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("apdutest: line %d: empty APDU", n)
		}
		switch {
		case line[0] == '>' && cmd == nil:
			cmd = b
		case line[0] == '<' && cmd != nil:
			tr = append(tr, Exchange{Command: cmd, Response: b})
			cmd = nil
		case line[0] == '>':
			return nil, fmt.Errorf("apdutest: line %d: command without a response before it", n)
		default:
			return nil, fmt.Errorf("apdutest: line %d: response without a command", n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("apdutest: %v", err)
	}
	if cmd != nil {
		return nil, fmt.Errorf("apdutest: last command %x has no response", cmd)
	}
	return tr, nil
}

// MarshalText returns the transcript in its text form, lowercase hex, one
// exchange after the other. It never fails.
func (t Transcript) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	for _, e := range t {
		fmt.Fprintf(&b, "> %x\n< %x\n", e.Command, e.Response)
	}
	return b.Bytes(), nil
}

// Recorder is a Transmitter that passes every command to another Transmitter
// and records the exchange. It is safe for concurrent use.
type Recorder struct {
	t  apdu.Transmitter
	mu sync.Mutex
	tr Transcript
}

var _ apdu.Transmitter = (*Recorder)(nil)

// NewRecorder returns a Recorder in front of t.
func NewRecorder(t apdu.Transmitter) *Recorder { return &Recorder{t: t} }

// Transmit passes cmd on and records it with its response. Failed calls are
// not recorded; their error is returned as it is.
func (r *Recorder) Transmit(cmd []byte) ([]byte, error) {
	resp, err := r.t.Transmit(cmd)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.tr = append(r.tr, Exchange{Command: bytes.Clone(cmd), Response: bytes.Clone(resp)})
	r.mu.Unlock()
	return resp, nil
}

// Transcript returns a copy of what was recorded so far.
func (r *Recorder) Transcript() Transcript {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(Transcript, len(r.tr))
	for i, e := range r.tr {
		out[i] = Exchange{Command: bytes.Clone(e.Command), Response: bytes.Clone(e.Response)}
	}
	return out
}

// Playback is a Transmitter that answers from a Transcript, strictly in
// order. It is safe for concurrent use.
type Playback struct {
	mu   sync.Mutex
	tr   Transcript
	next int
	err  error // first mismatch, returned again by every later call
}

var _ apdu.Transmitter = (*Playback)(nil)

// NewPlayback returns a Playback of tr.
func NewPlayback(tr Transcript) *Playback { return &Playback{tr: tr} }

// Transmit returns the recorded response when cmd is the next recorded
// command. Otherwise it returns an error showing the expected and the actual
// command, and so does every later call and Close.
func (p *Playback) Transmit(cmd []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	if p.next >= len(p.tr) {
		p.err = fmt.Errorf("apdutest: unexpected command after all %d steps:\n  got  > %x", len(p.tr), cmd)
		return nil, p.err
	}
	e := p.tr[p.next]
	if !bytes.Equal(cmd, e.Command) {
		p.err = fmt.Errorf("apdutest: step %d of %d:\n  want > %x\n  got  > %x", p.next+1, len(p.tr), e.Command, cmd)
		return nil, p.err
	}
	p.next++
	return bytes.Clone(e.Response), nil
}

// Close returns the first mismatch, or an error when recorded steps were not
// played; nil when the transcript was played exactly.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.next < len(p.tr) {
		return fmt.Errorf("apdutest: %d of %d steps not played; next: > %x", len(p.tr)-p.next, len(p.tr), p.tr[p.next].Command)
	}
	return nil
}
