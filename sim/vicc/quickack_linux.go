package vicc

import (
	"net"
	"syscall"
)

// quickAck turns on TCP_QUICKACK, which Linux clears after each ACK it sends:
// without it the vpcd driver waits for our delayed ACK on every APDU.
func quickAck(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return errNotTCP
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
