//go:build !unix

package secrets

import "errors"

func mkfifo(string) error { return errors.New("not supported") }
