//go:build !unix

package sqlite

import "os"

// lockFile is a no-op where flock is not available: run one writing
// process per database there.
func lockFile(*os.File) error { return nil }
