package voice

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrFormat is wrapped by DecodeWAV errors: the bytes are not a WAV file
// this package reads.
var ErrFormat = errors.New("voice: not a 16-bit mono PCM WAV file")

// WAV is a mono recording of 16-bit signed samples.
type WAV struct {
	SampleRate int     // samples per second, 1 to 2^31-1
	Samples    []int16 // one channel
}

const (
	wavHeaderLen = 44 // RIFF header + "fmt " chunk of 16 bytes + "data" chunk header
	formatPCM    = 1  // WAVE_FORMAT_PCM
)

// DecodeWAV parses a RIFF/WAVE file holding PCM, one channel, 16 bits per
// sample. Chunks other than "fmt " and "data" are skipped (each padded to an
// even length, as RIFF requires). The RIFF size must match len(b) exactly.
//
// It returns an error wrapping ErrFormat when b is not such a file: a short
// or inconsistent header, another encoding, more than one channel, a missing
// or repeated "fmt " or "data" chunk, or a chunk that runs past the end.
func DecodeWAV(b []byte) (*WAV, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: no RIFF/WAVE header", ErrFormat)
	}
	if size := binary.LittleEndian.Uint32(b[4:8]); uint64(size) != uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: RIFF size %d, file has %d bytes after it", ErrFormat, size, len(b)-8)
	}
	var (
		rate    uint32
		haveFmt bool
		data    []byte
		haveDat bool
	)
	rest := b[12:]
	for len(rest) > 0 {
		if len(rest) < 8 {
			return nil, fmt.Errorf("%w: truncated chunk header", ErrFormat)
		}
		id, n := string(rest[0:4]), uint64(binary.LittleEndian.Uint32(rest[4:8]))
		rest = rest[8:]
		if n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: chunk %q of %d bytes runs past the end", ErrFormat, id, n)
		}
		body := rest[:n]
		if pad := n + n&1; pad <= uint64(len(rest)) {
			rest = rest[pad:]
		} else {
			return nil, fmt.Errorf("%w: chunk %q lacks its pad byte", ErrFormat, id)
		}
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, fmt.Errorf("%w: two fmt chunks", ErrFormat)
			}
			haveFmt = true
			if len(body) < 16 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, len(body))
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels := binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			byteRate := binary.LittleEndian.Uint32(body[8:12])
			align := binary.LittleEndian.Uint16(body[12:14])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != formatPCM || channels != 1 || bits != 16 || align != 2 {
				return nil, fmt.Errorf("%w: format %d, %d channels, %d bits, block align %d", ErrFormat, format, channels, bits, align)
			}
			if rate == 0 || rate > 1<<31-1 || uint64(byteRate) != 2*uint64(rate) {
				return nil, fmt.Errorf("%w: sample rate %d, byte rate %d", ErrFormat, rate, byteRate)
			}
		case "data":
			if haveDat {
				return nil, fmt.Errorf("%w: two data chunks", ErrFormat)
			}
			haveDat = true
			if len(body)%2 != 0 {
				return nil, fmt.Errorf("%w: data chunk of odd length %d", ErrFormat, len(body))
			}
			data = body
		}
	}
	if !haveFmt || !haveDat {
		return nil, fmt.Errorf("%w: missing fmt or data chunk", ErrFormat)
	}
	w := &WAV{SampleRate: int(rate), Samples: make([]int16, len(data)/2)}
	for i := range w.Samples {
		w.Samples[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return w, nil
}

// Encode returns w as a canonical WAV file: a 44-byte header (RIFF, a
// 16-byte "fmt " chunk for PCM mono 16-bit, the "data" chunk header) followed
// by the samples. DecodeWAV of the result gives w back. It returns nil when
// w cannot be represented (a sample rate outside 1..2^31-1, or more samples
// than fit a 4 GiB RIFF file).
func (w *WAV) Encode() []byte {
	n := uint64(len(w.Samples)) * 2
	if w.SampleRate <= 0 || uint64(w.SampleRate) > 1<<31-1 || n > 1<<32-1-(wavHeaderLen-8) {
		return nil
	}
	b := make([]byte, wavHeaderLen, wavHeaderLen+int(n))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(wavHeaderLen-8+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], formatPCM)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(w.SampleRate))
	binary.LittleEndian.PutUint32(b[28:], 2*uint32(w.SampleRate))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	return append(b, PCM(w.Samples)...)
}

// PCM returns samples as s16le bytes (the form CDP/1 AUDIO carries).
func PCM(samples []int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}
