package frametest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Step is one line of a transcript: bytes written (Write true) or read.
type Step struct {
	Write bool
	Data  []byte
}

func (s Step) String() string {
	if s.Write {
		return "> " + hex.EncodeToString(s.Data)
	}
	return "< " + hex.EncodeToString(s.Data)
}

// ParseTranscript parses the text format described in the package
// documentation. Errors name the line.
func ParseTranscript(b []byte) ([]Step, error) {
	var steps []Step
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] != '>' && line[0] != '<' {
			return nil, fmt.Errorf("frametest: transcript line %d: starts with %q, want '>', '<' or '#'", n, line[0])
		}
		data, err := hex.DecodeString(strings.Join(strings.Fields(line[1:]), ""))
		if err != nil {
			return nil, fmt.Errorf("frametest: transcript line %d: %v", n, err)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("frametest: transcript line %d: no bytes", n)
		}
		steps = append(steps, Step{Write: line[0] == '>', Data: data})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("frametest: transcript: %v", err)
	}
	return steps, nil
}

// FormatTranscript returns steps in the text format, after comment lines
// made from comment (which may be empty or hold several lines).
func FormatTranscript(comment string, steps []Step) []byte {
	var b bytes.Buffer
	if comment != "" {
		for line := range strings.SplitSeq(strings.TrimRight(comment, "\n"), "\n") {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
	}
	for _, s := range steps {
		b.WriteString(s.String() + "\n")
	}
	return b.Bytes()
}

// Recorder passes reads and writes through to a real stream and remembers
// them as transcript steps. It is safe for concurrent use.
type Recorder struct {
	rw    io.ReadWriter
	mu    sync.Mutex
	steps []Step
}

// Record returns a Recorder over rw.
func Record(rw io.ReadWriter) *Recorder { return &Recorder{rw: rw} }

// Read reads from the stream and records the bytes read, if any.
func (r *Recorder) Read(p []byte) (int, error) {
	n, err := r.rw.Read(p)
	if n > 0 {
		r.add(Step{Data: slices.Clone(p[:n])})
	}
	return n, err
}

// Write writes to the stream and records the bytes written, if any.
func (r *Recorder) Write(p []byte) (int, error) {
	n, err := r.rw.Write(p)
	if n > 0 {
		r.add(Step{Write: true, Data: slices.Clone(p[:n])})
	}
	return n, err
}

// SetReadDeadline passes the deadline on when the stream has
// SetReadDeadline, and fails with errors.ErrUnsupported otherwise.
func (r *Recorder) SetReadDeadline(t time.Time) error {
	if d, ok := r.rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return errors.ErrUnsupported
}

func (r *Recorder) add(s Step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

// Steps returns the steps recorded so far.
func (r *Recorder) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

// Save writes the transcript to path, with comment at the top.
func (r *Recorder) Save(path, comment string) error {
	return os.WriteFile(path, FormatTranscript(comment, r.Steps()), 0o644)
}

// Playback is a strict fake stream that plays a transcript back. Writes
// must equal the next write step exactly; a Read returns (part of) the next
// read step, waiting while the next step is a write; after the last step,
// Read returns io.EOF. The first mismatch fails that call, every later
// call, and Close. It is safe for concurrent use (a reader goroutine and a
// writer).
type Playback struct {
	mu     sync.Mutex
	steps  []Step
	next   int // index of the next step
	off    int // bytes of steps[next] already read
	err    error
	closed bool
	wake   chan struct{} // closed and replaced on every change
}

// NewPlayback returns a Playback of steps.
func NewPlayback(steps []Step) *Playback {
	return &Playback{steps: steps, wake: make(chan struct{})}
}

// Load reads and parses the transcript at path and returns its Playback.
func Load(path string) (*Playback, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("frametest: %w", err)
	}
	steps, err := ParseTranscript(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return NewPlayback(steps), nil
}

func (p *Playback) changed() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// fail records the first failure; p.mu is held.
func (p *Playback) fail(format string, args ...any) error {
	if p.err == nil {
		p.err = fmt.Errorf("frametest: playback step %d: "+format, append([]any{p.next + 1}, args...)...)
		p.changed()
	}
	return p.err
}

// Write checks p against the next step.
func (p *Playback) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err != nil:
		return 0, p.err
	case p.closed:
		return 0, io.ErrClosedPipe
	case p.next >= len(p.steps):
		return 0, p.fail("unexpected write after the end of the transcript:\n\tgot  > %x", b)
	}
	s := p.steps[p.next]
	switch {
	case !s.Write:
		return 0, p.fail("unexpected write while the transcript expects a read:\n\tgot  > %x\n\twant %v", b, s)
	case !bytes.Equal(b, s.Data):
		return 0, p.fail("write differs from the transcript:\n\tgot  > %x\n\twant > %x", b, s.Data)
	}
	p.next++
	p.off = 0
	p.changed()
	return len(b), nil
}

// Read returns bytes of the next read step, waiting while the next step is
// a write.
func (p *Playback) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.err != nil:
			return 0, p.err
		case p.closed:
			return 0, io.ErrClosedPipe
		case p.next >= len(p.steps):
			return 0, io.EOF
		}
		if s := p.steps[p.next]; !s.Write {
			n := copy(b, s.Data[p.off:])
			p.off += n
			if p.off == len(s.Data) {
				p.next++
				p.off = 0
			}
			p.changed()
			return n, nil
		}
		wake := p.wake
		p.mu.Unlock()
		<-wake
		p.mu.Lock()
	}
}

// Close ends the playback; reads waiting return. It returns the first
// failure, or an error naming the next step when steps are left.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.changed()
	}
	if p.err != nil {
		return p.err
	}
	if left := len(p.steps) - p.next; left > 0 {
		return fmt.Errorf("frametest: playback: %d of %d steps not played; next: %v", left, len(p.steps), p.steps[p.next])
	}
	return nil
}
