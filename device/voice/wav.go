package voice

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/authbench/authbench/device"
)

// ErrFormat is wrapped by every *FormatError: the bytes are not a WAV file
// this package reads.
var ErrFormat = errors.New("voice: not a 16-bit mono PCM WAV file")

// FormatError says why bytes are not a RIFF/WAVE file of 16-bit mono PCM,
// and where the problem was found. It unwraps to ErrFormat.
type FormatError struct {
	Offset int    // byte offset of the offending field or chunk
	Reason string // what is wrong, in a few words
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("voice: bad WAV file at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

func formatErr(off int, format string, args ...any) error {
	return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Limits of the WAV files this package reads and writes.
const (
	// HeaderLen is the length of the canonical header EncodeWAV writes: the
	// RIFF header, a 16-byte "fmt " chunk and the "data" chunk header.
	HeaderLen = 44
	// MaxSampleRate is the highest sample rate accepted, 384 kHz.
	MaxSampleRate = 384000
	// MaxWAVSize bounds what ReadWAV reads (a RIFF file cannot be larger
	// than 4 GiB + 8 bytes, and recordings of a code are short).
	MaxWAVSize = 64 << 20
)

const formatPCM = 1 // WAVE_FORMAT_PCM (Microsoft RIFF "fmt " wFormatTag)

// ParseWAV decodes a RIFF/WAVE file (Microsoft/IBM "Multimedia Programming
// Interface and Data Specifications 1.0", RIFF and WAVE form) that holds
// PCM (format tag 1), one channel, 16 bits per sample, little-endian, as a
// device.Audio.
//
// Parsing is strict: the RIFF size must equal the file length minus 8, the
// "fmt " chunk must come before "data" and appear once, its block align must
// be 2 and its byte rate twice the sample rate (1 to MaxSampleRate), an
// 18-byte "fmt " chunk must have a zero cbSize, and "data" must appear once
// with an even length. Other chunks (LIST, fact, ...) are skipped, each with
// its pad byte when its length is odd, as RIFF requires.
//
// It returns nil and a *FormatError (unwrapping to ErrFormat) for anything
// else.
func ParseWAV(b []byte) (*device.Audio, error) {
	if len(b) < 12 {
		return nil, formatErr(0, "%d bytes, too short for a RIFF header", len(b))
	}
	if string(b[0:4]) != "RIFF" {
		return nil, formatErr(0, "no RIFF tag")
	}
	if size := binary.LittleEndian.Uint32(b[4:8]); uint64(size) != uint64(len(b)-8) {
		return nil, formatErr(4, "RIFF size %d, but %d bytes follow it", size, len(b)-8)
	}
	if string(b[8:12]) != "WAVE" {
		return nil, formatErr(8, "RIFF form is not WAVE")
	}
	var (
		rate    uint32
		haveFmt bool
		data    []byte
		haveDat bool
	)
	off := 12
	for off < len(b) {
		if len(b)-off < 8 {
			return nil, formatErr(off, "truncated chunk header")
		}
		id := string(b[off : off+4])
		n := uint64(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		body := off + 8
		if n > uint64(len(b)-body) {
			return nil, formatErr(off, "chunk %q of %d bytes runs past the end", printable(id), n)
		}
		end := body + int(n)
		next := end + int(n&1)
		if next > len(b) {
			return nil, formatErr(end, "chunk %q lacks its pad byte", printable(id))
		}
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, formatErr(off, "second fmt chunk")
			}
			haveFmt = true
			r, err := parseFmt(b[body:end], body)
			if err != nil {
				return nil, err
			}
			rate = r
		case "data":
			if !haveFmt {
				return nil, formatErr(off, "data chunk before the fmt chunk")
			}
			if haveDat {
				return nil, formatErr(off, "second data chunk")
			}
			haveDat = true
			if n%2 != 0 {
				return nil, formatErr(off+4, "data chunk of odd length %d", n)
			}
			data = b[body:end]
		}
		off = next
	}
	if !haveFmt {
		return nil, formatErr(len(b), "no fmt chunk")
	}
	if !haveDat {
		return nil, formatErr(len(b), "no data chunk")
	}
	return &device.Audio{SampleRate: int(rate), PCM: append([]byte{}, data...)}, nil
}

// parseFmt checks the body of a "fmt " chunk found at off and returns the
// sample rate.
func parseFmt(f []byte, off int) (uint32, error) {
	if len(f) != 16 && len(f) != 18 {
		return 0, formatErr(off-4, "fmt chunk of %d bytes, want 16 (or 18 with cbSize 0)", len(f))
	}
	format := binary.LittleEndian.Uint16(f[0:2])
	channels := binary.LittleEndian.Uint16(f[2:4])
	rate := binary.LittleEndian.Uint32(f[4:8])
	byteRate := binary.LittleEndian.Uint32(f[8:12])
	align := binary.LittleEndian.Uint16(f[12:14])
	bits := binary.LittleEndian.Uint16(f[14:16])
	switch {
	case format != formatPCM:
		return 0, formatErr(off, "format tag %d, want 1 (PCM)", format)
	case channels != 1:
		return 0, formatErr(off+2, "%d channels, want 1", channels)
	case rate == 0 || rate > MaxSampleRate:
		return 0, formatErr(off+4, "sample rate %d, want 1 to %d", rate, MaxSampleRate)
	case uint64(byteRate) != 2*uint64(rate):
		return 0, formatErr(off+8, "byte rate %d, want %d", byteRate, 2*uint64(rate))
	case align != 2:
		return 0, formatErr(off+12, "block align %d, want 2", align)
	case bits != 16:
		return 0, formatErr(off+14, "%d bits per sample, want 16", bits)
	case len(f) == 18 && binary.LittleEndian.Uint16(f[16:18]) != 0:
		return 0, formatErr(off+16, "cbSize %d, want 0", binary.LittleEndian.Uint16(f[16:18]))
	}
	return rate, nil
}

// printable returns a chunk ID fit for an error message.
func printable(id string) string {
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7E {
			return fmt.Sprintf("%x", id)
		}
	}
	return id
}

// EncodeWAV returns a as a canonical WAV file: the HeaderLen-byte header
// (RIFF, a 16-byte "fmt " chunk for PCM, one channel, 16 bits, the "data"
// chunk header) and the samples. ParseWAV of the result returns a again, and
// EncodeWAV of what ParseWAV returns gives this canonical form of any file
// it accepts.
//
// It returns a *FormatError (unwrapping to ErrFormat) when a is nil, its
// sample rate is outside 1 to MaxSampleRate, its PCM has an odd length, or
// it is too long for a RIFF file.
func EncodeWAV(a *device.Audio) ([]byte, error) {
	if a == nil {
		return nil, formatErr(0, "no audio")
	}
	if a.SampleRate <= 0 || a.SampleRate > MaxSampleRate {
		return nil, formatErr(24, "sample rate %d, want 1 to %d", a.SampleRate, MaxSampleRate)
	}
	n := uint64(len(a.PCM))
	if n%2 != 0 {
		return nil, formatErr(40, "PCM of odd length %d", n)
	}
	if n > math.MaxUint32-(HeaderLen-8) {
		return nil, formatErr(40, "%d bytes of PCM do not fit a RIFF file", n)
	}
	b := make([]byte, HeaderLen, HeaderLen+len(a.PCM))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(HeaderLen-8+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], formatPCM)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(a.SampleRate))
	binary.LittleEndian.PutUint32(b[28:], 2*uint32(a.SampleRate))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	return append(b, a.PCM...), nil
}

// WriteWAV writes a to w as EncodeWAV does. It returns EncodeWAV's errors or
// w's error.
func WriteWAV(w io.Writer, a *device.Audio) error {
	b, err := EncodeWAV(a)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("voice: write WAV: %w", err)
	}
	return nil
}

// ReadWAV reads r to its end and parses it with ParseWAV. It returns
// ParseWAV's errors, a *FormatError when r holds more than MaxWAVSize bytes,
// or r's error.
func ReadWAV(r io.Reader) (*device.Audio, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxWAVSize+1))
	if err != nil {
		return nil, fmt.Errorf("voice: read WAV: %w", err)
	}
	if len(b) > MaxWAVSize {
		return nil, formatErr(MaxWAVSize, "file larger than %d bytes", MaxWAVSize)
	}
	return ParseWAV(b)
}

// Samples returns s16le PCM bytes (device.Audio.PCM, what CDP/1 AUDIO
// carries) as samples. It returns a *FormatError for an odd length.
func Samples(pcm []byte) ([]int16, error) {
	if len(pcm)%2 != 0 {
		return nil, formatErr(len(pcm)-1, "PCM of odd length %d", len(pcm))
	}
	s := make([]int16, len(pcm)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(pcm[2*i:]))
	}
	return s, nil
}

// PCM returns samples as s16le bytes, the inverse of Samples.
func PCM(samples []int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, v := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}
