//go:build linux

package sqlite

import (
	"os"
	"syscall"
)

// fdatasync makes the data of f durable, and its size, without waiting for
// its timestamps (as SQLite commits in this process: useFdatasync).
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
