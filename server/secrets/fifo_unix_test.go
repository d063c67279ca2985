//go:build unix

package secrets

import "syscall"

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
