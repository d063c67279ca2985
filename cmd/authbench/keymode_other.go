//go:build !linux

package main

import (
	"errors"
	"os"
)

// keyMode is implemented for Linux terminals only; elsewhere a touch is a
// line on standard input.
func keyMode(f *os.File) (restore func(), err error) {
	return nil, errors.ErrUnsupported
}
