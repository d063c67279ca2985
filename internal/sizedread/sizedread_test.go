package sizedread

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// Read reads every byte whatever length was declared: the right one,
// less, more, or none, in one read or byte by byte; a read that fails is
// an error.
func TestRead(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, size := range []int64{-1, 0, 1, 511, 2999, 3000, 3001, 16 << 10} {
		for name, r := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return strings.NewReader(body) },
			"one-byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
			"data-eof": func() io.Reader { return iotest.DataErrReader(strings.NewReader(body)) },
		} {
			got, err := Read(r(), size)
			want, wantErr := io.ReadAll(r())
			if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
				t.Errorf("size %d, %s reader: %d bytes, %v; io.ReadAll: %d bytes, %v", size, name, len(got), err, len(want), wantErr)
			}
		}
		if _, err := Read(iotest.TimeoutReader(strings.NewReader(body)), size); err == nil {
			t.Errorf("size %d: a failing read was no error", size)
		}
	}
}
