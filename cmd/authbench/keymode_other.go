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

// isTerminal reports whether r is a terminal; elsewhere than on Linux it
// says no, so that destructive commands need --yes.
func isTerminal(r any) bool { return false }
