// Package sizedread reads a body whose length is declared before it, such
// as an HTTP request's or answer's, into one buffer of that length.
package sizedread

import "io"

// Read reads r to its end as io.ReadAll does, starting with room for size
// bytes (io.ReadAll starts with 512 and grows), so that a body of the
// length it declared is read without a copy. A size of 0 or less (none
// declared) is left to io.ReadAll. The body is read to its end whatever
// size says, so a wrong declaration costs only copies.
func Read(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	// One byte more, so that the read that finds the end needs no room.
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
