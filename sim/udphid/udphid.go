// Package udphid carries 64-byte CTAPHID reports in UDP datagrams, the
// stand-in for USB HID on machines without USB: the simulated chip listens on
// 127.0.0.1:8111 and sends its reports to port 7112, where the host listens.
// One datagram is one report, with no report-ID byte, just as a libusb
// interrupt transfer.
//
// Both ends are io.ReadWriteClosers, the report transport device/ctaphid
// expects, so the same ctaphid host and device code runs over UDP, over an
// in-memory pipe and, in driver/usb, over a real interrupt endpoint.
package udphid

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Default ports.
const (
	DefaultDeviceAddr = "127.0.0.1:8111" // where the simulated chip listens
	DefaultHostAddr   = "127.0.0.1:7112" // where the host listens for answers
)

// ReportSize is the size of one CTAPHID report.
const ReportSize = 64

// Conn is one end of a UDP HID link.
type Conn struct {
	pc   net.PacketConn
	mu   sync.Mutex
	peer net.Addr
}

// Listen opens the device end: it receives reports on addr ("" means
// DefaultDeviceAddr) and sends its reports to peer ("" means
// DefaultHostAddr). If a report arrives from another address, later reports
// go there instead, so a host on any port is answered.
func Listen(addr, peer string) (*Conn, error) {
	if addr == "" {
		addr = DefaultDeviceAddr
	}
	if peer == "" {
		peer = DefaultHostAddr
	}
	return open(addr, peer)
}

// Dial opens the host end: it sends reports to dev ("" means
// DefaultDeviceAddr) and receives on local ("" means DefaultHostAddr; use
// "127.0.0.1:0" for any free port, the device then answers to it).
func Dial(dev, local string) (*Conn, error) {
	if dev == "" {
		dev = DefaultDeviceAddr
	}
	if local == "" {
		local = DefaultHostAddr
	}
	return open(local, dev)
}

func open(local, peer string) (*Conn, error) {
	pa, err := net.ResolveUDPAddr("udp", peer)
	if err != nil {
		return nil, fmt.Errorf("udphid: peer %q: %w", peer, err)
	}
	pc, err := net.ListenPacket("udp", local)
	if err != nil {
		return nil, fmt.Errorf("udphid: listen %s: %w", local, err)
	}
	return &Conn{pc: pc, peer: pa}, nil
}

// LocalAddr returns the address this end receives on.
func (c *Conn) LocalAddr() net.Addr { return c.pc.LocalAddr() }

// Read reads one report into p (which must hold ReportSize bytes) and
// returns ReportSize. Datagrams of another size are dropped. After Close it
// returns an error wrapping device.ErrClosed.
func (c *Conn) Read(p []byte) (int, error) {
	var buf [ReportSize + 1]byte
	for {
		n, from, err := c.pc.ReadFrom(buf[:])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return 0, fmt.Errorf("udphid: %w", device.ErrTimeout)
			}
			return 0, fmt.Errorf("udphid: %w: %v", device.ErrClosed, err)
		}
		if n != ReportSize {
			continue
		}
		c.mu.Lock()
		c.peer = from
		c.mu.Unlock()
		return copy(p, buf[:ReportSize]), nil
	}
}

// Write sends p (exactly ReportSize bytes) as one datagram to the peer.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) != ReportSize {
		return 0, fmt.Errorf("udphid: report of %d bytes, want %d", len(p), ReportSize)
	}
	c.mu.Lock()
	peer := c.peer
	c.mu.Unlock()
	n, err := c.pc.WriteTo(p, peer)
	if err != nil {
		return n, fmt.Errorf("udphid: write: %w", err)
	}
	return n, nil
}

// SetReadDeadline bounds the next Read.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket; a blocked Read returns.
func (c *Conn) Close() error { return c.pc.Close() }
