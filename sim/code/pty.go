//go:build linux

package code

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/authbench/authbench/device/frame"
)

// PTY is a device served on a pseudo-terminal: a serial client (driver/serial,
// go.bug.st/serial, minicom, a Python script) opens Path as if it were the
// device's UART. Ptys ignore the baud rate, and they reject the DTR/RTS
// modem-line ioctls, so clients must not insist on those.
type PTY struct {
	// Path is the terminal end of the pty, such as /dev/pts/3.
	Path string

	server   *frame.Server
	master   *os.File
	tty      *os.File
	cancel   context.CancelFunc
	done     chan error
	closeErr error
	once     sync.Once
}

// ServePTY opens a new pty, puts its terminal end in raw mode (no echo, no
// line editing, no CR/LF translation: 8-bit clean, as a UART), and serves d
// on the other end until ctx ends or Close is called. Each call makes a new
// pty, so each device gets its own path.
//
// The PTY keeps the terminal end open itself, so that clients can come and
// go without the pty hanging up. It returns an error when no pty can be
// opened or configured.
func ServePTY(ctx context.Context, d *Device) (*PTY, error) {
	return ServePTYOptions(ctx, d, PTYOptions{})
}

// PTYOptions adjust ServePTYOptions. The zero value serves the device as
// ServePTY does.
type PTYOptions struct {
	// Handler, when not nil, answers the requests instead of the device
	// itself: a wrapper around it that injects faults, say.
	Handler frame.Handler
	// Wrap, when not nil, wraps the device's end of the pty: the device
	// reads and writes through the stream it returns (a fault injector
	// such as frametest.Faults). Reads keep the pty's read deadline, so the
	// device still stops promptly when ctx ends.
	Wrap func(io.ReadWriter) io.ReadWriter
}

// ServePTYOptions is ServePTY with options.
func ServePTYOptions(ctx context.Context, d *Device, o PTYOptions) (*PTY, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("code: open pty: %w", err)
	}
	if err := makeRaw(tty); err != nil {
		master.Close()
		tty.Close()
		return nil, fmt.Errorf("code: pty %s: raw mode: %w", tty.Name(), err)
	}
	m, err := pollable(master)
	master.Close()
	if err != nil {
		tty.Close()
		return nil, fmt.Errorf("code: pty %s: %w", tty.Name(), err)
	}
	master = m
	ctx, cancel := context.WithCancel(ctx)
	var h frame.Handler = d
	if o.Handler != nil {
		h = o.Handler
	}
	p := &PTY{
		Path:   tty.Name(),
		server: &frame.Server{Handler: h},
		master: master,
		tty:    tty,
		cancel: cancel,
		done:   make(chan error, 1),
	}
	var rw io.ReadWriter = master
	if o.Wrap != nil {
		rw = deadlineStream{o.Wrap(master), master}
	}
	go func() { p.done <- p.server.Serve(ctx, rw) }()
	return p, nil
}

// deadlineStream is a wrapped stream that keeps the read deadline of the
// stream under it.
type deadlineStream struct {
	io.ReadWriter
	under interface{ SetReadDeadline(time.Time) error }
}

func (s deadlineStream) SetReadDeadline(t time.Time) error { return s.under.SetReadDeadline(t) }

// pollable returns a new *os.File for f's descriptor that the Go runtime
// polls, so that SetReadDeadline interrupts a Read (frame.Server relies on
// that to stop when its context ends). creack/pty hands out a master whose
// descriptor it switched to blocking mode (by calling Fd), where deadlines
// are accepted but never interrupt a Read. The caller closes f.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("non-blocking mode: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// makeRaw sets the terminal as cfmakeraw(3) does, 8N1, reads returning
// after one byte.
func makeRaw(tty *os.File) error {
	fd := int(tty.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// ServerStats returns the device side's counters.
func (p *PTY) ServerStats() frame.ServerStats { return p.server.Stats() }

// Close stops serving, waits for the device side to return and closes the
// pty; clients then read EOF or an error. It returns the device side's
// error, if it failed; closing again returns the same.
func (p *PTY) Close() error {
	p.once.Do(func() {
		p.cancel()
		err := <-p.done
		p.master.Close()
		p.tty.Close()
		if errors.Is(err, fs.ErrClosed) || errors.Is(err, syscall.EIO) {
			err = nil // the pty went away under the reader
		}
		p.closeErr = err
	})
	return p.closeErr
}
