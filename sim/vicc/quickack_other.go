//go:build !linux

package vicc

import "net"

// quickAck is a no-op where TCP_QUICKACK does not exist.
func quickAck(c net.Conn) error { return nil }
