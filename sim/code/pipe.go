package code

import (
	"context"
	"net"
	"sync"

	"github.com/authbench/authbench/device/frame"
)

// PipeHost is a frame.Host connected to a Device through an in-memory byte
// stream (net.Pipe) that carries real CDP/1 frames, CRCs and all. It is the
// in-process stand-in for a serial cable: everything a driver does over a
// UART can be tested through it. Close it when done.
type PipeHost struct {
	*frame.Host
	server   *frame.Server
	hostEnd  net.Conn
	devEnd   net.Conn
	cancel   context.CancelFunc
	done     chan error
	closeErr error
	once     sync.Once
}

// Pipe serves d over a fresh in-memory stream and returns the host end. opts
// configure the host (nil means frame's defaults).
func Pipe(d *Device, opts *frame.Options) *PipeHost {
	hostEnd, devEnd := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &PipeHost{
		Host:    frame.NewHost(hostEnd, opts),
		server:  &frame.Server{Handler: d},
		hostEnd: hostEnd,
		devEnd:  devEnd,
		cancel:  cancel,
		done:    make(chan error, 1),
	}
	go func() { p.done <- p.server.Serve(ctx, devEnd) }()
	return p
}

// ServerStats returns the device side's counters (requests, replays from
// the repeated-SEQ cache, parser statistics).
func (p *PipeHost) ServerStats() frame.ServerStats { return p.server.Stats() }

// Close closes the host, stops the device side and waits for it to return.
// It returns the device side's error, if it failed (frame.Server.Serve);
// closing again returns the same.
func (p *PipeHost) Close() error {
	p.once.Do(func() {
		p.Host.Close()
		p.cancel() // Serve returns nil once it sees ctx end
		p.closeErr = <-p.done
		p.hostEnd.Close()
		p.devEnd.Close()
	})
	return p.closeErr
}
