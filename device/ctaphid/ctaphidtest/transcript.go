package ctaphidtest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Step is one report of a transcript.
type Step struct {
	Write  bool   // true: written to the transport ("> "); false: read from it ("< ")
	Report []byte // the report as it crossed the transport
}

// ParseTranscript decodes a transcript (see the package documentation). Hex
// digits may be separated by spaces and may be upper or lower case. It
// returns an error wrapping device.ErrProtocol, naming the line, for a line
// that is neither a comment nor a step, and for a step without any bytes.
func ParseTranscript(b []byte) ([]Step, error) {
	var steps []Step
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var s Step
		switch line[0] {
		case '>':
			s.Write = true
		case '<':
		default:
			return nil, fmt.Errorf("ctaphidtest: %w: transcript line %d starts with %q, want '>' or '<'", device.ErrProtocol, i+1, line[0])
		}
		digits := strings.Join(strings.Fields(line[1:]), "")
		r, err := hex.DecodeString(digits)
		if err != nil {
			return nil, fmt.Errorf("ctaphidtest: %w: transcript line %d: %v", device.ErrProtocol, i+1, err)
		}
		if len(r) == 0 {
			return nil, fmt.Errorf("ctaphidtest: %w: transcript line %d has no report", device.ErrProtocol, i+1)
		}
		s.Report = r
		steps = append(steps, s)
	}
	return steps, nil
}

// FormatTranscript encodes steps as a transcript, one line per step with
// lower-case hex and no comments: the canonical form ParseTranscript reads
// back to the same steps.
func FormatTranscript(steps []Step) []byte {
	var b bytes.Buffer
	for _, s := range steps {
		if s.Write {
			b.WriteString("> ")
		} else {
			b.WriteString("< ")
		}
		b.WriteString(hex.EncodeToString(s.Report))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// Recorder wraps a real report transport and writes down every report that
// crosses it, in the order the Reads and Writes completed. It is safe for
// concurrent use.
type Recorder struct {
	rw    io.ReadWriter
	mu    sync.Mutex
	steps []Step
}

// NewRecorder returns a Recorder around rw.
func NewRecorder(rw io.ReadWriter) *Recorder { return &Recorder{rw: rw} }

// Read reads one report from the transport and records it. Errors are the
// transport's, unchanged.
func (r *Recorder) Read(b []byte) (int, error) {
	n, err := r.rw.Read(b)
	if err == nil {
		r.add(Step{Report: append([]byte(nil), b[:n]...)})
	}
	return n, err
}

// Write writes one report to the transport and records it. Errors are the
// transport's, unchanged. The report is recorded before any answer to it can
// be: a Read that completes during the Write is recorded after it.
func (r *Recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.rw.Write(b)
	if err == nil {
		r.steps = append(r.steps, Step{Write: true, Report: append([]byte(nil), b...)})
	}
	return n, err
}

func (r *Recorder) add(s Step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

// Steps returns a copy of what has been recorded so far.
func (r *Recorder) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Step(nil), r.steps...)
}

// Transcript returns what has been recorded so far, formatted by
// FormatTranscript.
func (r *Recorder) Transcript() []byte { return FormatTranscript(r.Steps()) }

// Close closes the transport when it is an io.Closer and returns its error;
// otherwise it returns nil.
func (r *Recorder) Close() error {
	if c, ok := r.rw.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// SetReadDeadline passes t on to the transport; it returns an error wrapping
// device.ErrNotSupported when the transport has no read deadline.
func (r *Recorder) SetReadDeadline(t time.Time) error {
	if d, ok := r.rw.(readDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return fmt.Errorf("ctaphidtest: read deadline: %w", device.ErrNotSupported)
}
