//go:build !linux

package sqlite

import "os"

// fdatasync makes the data of f durable: fsync where there is no
// fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
